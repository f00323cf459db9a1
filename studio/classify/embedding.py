"""Embed pages with the transformer ahead of training or scoring, in resumable batches.

The vectors land in the project's feature cache under the model's fingerprint; training then
compares the transformer feature sets without being asked (every labelled page is cached),
and scoring reads them instead of computing them again.

Example::

    with project.store() as store:
        print(embed_pages(store, every=False)["text"])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from studio.classify.features import EmbeddingFeatures, load_docs
from studio.progress import Task
from studio.store import Store


def embed_pages(
    store: Store,
    *,
    every: bool = False,
    embedding: str | Path | None = None,
    batch: int = 256,
    task: Task | None = None,
) -> dict[str, Any]:
    """Embed the labelled pages (every page with ``every``) not cached yet for the model."""
    task = task or Task()
    extractor = EmbeddingFeatures(embedding)
    ref = extractor.embedder.ref  # an unusable model fails here, before any work
    ids = store.document_ids() if every else [t[0] for t in store.label_targets()]
    cached = set(store.cached_features(extractor.name, extractor.cache_version, ids))
    todo = [i for i in ids if i not in cached]
    t0 = time.perf_counter()
    for start in range(0, len(todo), batch):
        part = task.part(len(cached) + start, len(ids), f"embedding with {ref.name}")
        extractor.transform(load_docs(store, todo[start : start + batch]), store, part)
    seconds = time.perf_counter() - t0
    task.progress(len(ids), len(ids), "done")
    what = "pages" if every else "labelled pages"
    rate = f" ({len(todo) / seconds:.1f} pages/s)" if todo and seconds > 0 else ""
    return {
        "model": extractor.describe(),
        "pages": len(ids),
        "embedded": len(todo),
        "cached_before": len(cached),
        "seconds": round(seconds, 2),
        "text": f"{len(todo)} {what} embedded with {ref.name}{rate}, "
        f"{len(cached)} were cached before; {len(ids)} in all",
    }
