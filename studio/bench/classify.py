"""Benchmark: the classifier's whole scoring step beside its bare feature extractor, same pages,
same run.

For each feature set (by default the fast ones, ``FEATURE_SETS``; the transformer sets
``minilm`` and ``tfidf+minilm`` when named) the chosen model kind is fitted on the project's
labels (extractors fitted without labels on a corpus sample, as training does; no version is
written), then two things are timed over the same documents, in batches as
:func:`studio.classify.score.score_documents` scores them:

- *full*: load the batch's texts from the store, compute the features, predict and decide
  (everything scoring does except writing the scores);
- *bare*: the feature extractor alone on the already-loaded texts.

Both run without the feature cache (``store=None``), so every page's features are computed,
as for pages never scored before; nothing is written to the project. Fitting reads cached
vectors but writes none; a transformer set is fitted on at most ``EMBED_FIT_PAGES`` labelled
pages (the fit does not change the speed, and embedding every label would take minutes).

Beside the transformer sets, the reference tool: sentence-transformers' ``encode`` with the same
model, device and batch size, twice: on the same windows the studio cuts (decoded back to text:
the same work, so the two rates compare the encoders), and on the pages as they are (it reads
only their first 256 tokens: what covering the whole page costs). Each is run ``repeats``
times and the best (lowest) time is kept, wall clock (``time.perf_counter``) and process CPU time
(``time.process_time``) each. The overhead is full time over bare time, minus one.

Targets printed beside the figures: overhead < 15 %, and the default choice (the feature set of
the project's latest classifier version, else ``tfidf``) scores at least 200 full pages/s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from studio.classify.features import EMBEDDING_SETS, FEATURE_SETS, FeatureSet, load_docs
from studio.classify.models import KINDS, new_model
from studio.classify.score import BATCH
from studio.classify.train import corpus_sample, labelled_set
from studio.classify.versions import latest_choice
from studio.project import Project
from studio.store import Store

Progress = Callable[[int, int, str], None]

OVERHEAD_TARGET = 0.15  # the scoring step may cost at most 15 % more than the bare extractor
SPEED_TARGET = 200.0  # full pages per wall second for the default choice
DEFAULT_FEATURES, DEFAULT_MODEL = "tfidf", "logistic"
EMBED_FIT_PAGES = 100
REFERENCE_TOKENS = 256  # sentence-transformers' window for all-MiniLM-L6-v2


class _ReadOnlyCache:
    """The project's feature cache, read but never written (the bench writes nothing)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def cached_features(self, name: str, version: str, doc_ids: list[int]) -> dict[int, bytes]:
        return self.store.cached_features(name, version, doc_ids)

    def cache_features(self, name: str, version: str, vectors: dict[int, bytes]) -> None:
        """Dropped: nothing is written."""


def defaults(store: Store) -> tuple[str, str]:
    """(feature set, model kind) of the latest version, or the studio's defaults without one."""
    return latest_choice(store) or (DEFAULT_FEATURES, DEFAULT_MODEL)


def run(
    project: Project,
    store: Store,
    *,
    model: str | None = None,
    features: list[str] | None = None,
    embedding: str | None = None,
    limit: int | None = None,
    repeats: int = 3,
    threshold: float = 3.0,
    sample: int = 3000,
    batch: int = BATCH,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure every feature set; returns a JSON-ready dict (see :func:`format_table`)."""
    default_features, default_model = defaults(store)
    names = list(features or FEATURE_SETS)
    for name in names:
        FeatureSet(name, embedding=embedding)  # an unknown name fails before any work
    kind = model or default_model
    if kind not in KINDS:
        raise ValueError(f"unknown model {kind} (known: {', '.join(KINDS)})")
    labels = labelled_set(store)
    y = labels.targets
    if len(y) < 2 or (y >= threshold).all() or not (y >= threshold).any():
        raise ValueError(
            f"the bench fits a model on the labels: it needs labelled pages on both sides of "
            f"{threshold:g} ({len(y)} labelled)"
        )
    ids = store.document_ids()
    ids = ids[:limit] if limit else ids
    sample_docs = load_docs(store, corpus_sample(store, labels.doc_ids, sample, seed))
    labelled_docs = sample_docs[: len(labels.doc_ids)]
    rows = []
    cache = _ReadOnlyCache(store)
    for n, name in enumerate(names):
        if progress:
            progress(n, len(names), f"fitting {name}")
        features = FeatureSet(name, embedding=embedding).fit(sample_docs, None)
        fit_docs, fit_y = labelled_docs, y
        if name in EMBEDDING_SETS and len(y) > EMBED_FIT_PAGES:
            pick = sorted(random.Random(seed).sample(range(len(y)), EMBED_FIT_PAGES))
            fit_docs, fit_y = [labelled_docs[i] for i in pick], y[pick]
        X = features.transform(fit_docs, cache)
        fitted = new_model(kind).fit(X, fit_y, threshold, seed)
        docs = load_docs(store, ids)

        def full(features: FeatureSet = features, fitted: Any = fitted) -> None:
            for start in range(0, len(ids), batch):
                chunk = load_docs(store, ids[start : start + batch])
                fitted.decide(fitted.predict(features.transform(chunk, None)))

        def bare(features: FeatureSet = features, docs: list = docs) -> None:
            for start in range(0, len(docs), batch):
                features.transform(docs[start : start + batch], None)

        steps: list[tuple[str, Callable[[], None]]] = [("full", full), ("bare", bare)]
        if name in EMBEDDING_SETS:
            windows, firsts = _references(features, docs, batch)
            steps += [("reference", windows), ("reference_first", firsts)]
        if progress:
            progress(n, len(names), f"timing {name}")
        # interleaved repeats: a slow moment of the machine hits both, not one
        timings: dict[str, list[tuple[float, float]]] = {what: [] for what, _ in steps}
        for _ in range(max(1, repeats)):
            for what, fn in steps:
                timings[what].append(_timed(fn))
        rows.append(_row(name, len(ids), timings))
    if progress:
        progress(len(names), len(names), "done")
    default_row = next((r for r in rows if r["features"] == default_features), None)
    return {
        "project": str(project.root),
        "pages": len(ids),
        "labels": len(y),
        "model": kind,
        "threshold": threshold,
        "embedding": embedding,
        "batch": batch,
        "repeats": max(1, repeats),
        "speed": "pages per second, best of the repeats; wall (perf_counter) and CPU "
        "(process_time); no feature cache, nothing written",
        "rows": rows,
        "default": default_features,
        "targets": {
            "overhead": f"overhead < {OVERHEAD_TARGET:.0%}",
            "speed": f"default choice \u2265 {SPEED_TARGET:.0f} full pages/s",
            "overhead_met": all(r["overhead"] < OVERHEAD_TARGET for r in rows),
            # None: the default set was not among those measured
            "speed_met": None
            if default_row is None
            else bool(default_row["full_pages_per_second"] >= SPEED_TARGET),
        },
    }


def _references(
    features: FeatureSet, docs: list, batch: int
) -> tuple[Callable[[], None], Callable[[], None]]:
    """sentence-transformers' encode of the studio's windows, and of the pages as they are."""
    from sentence_transformers import SentenceTransformer

    embedder = next(ex for ex in features.extractors if ex.name == "minilm").embedder.load()
    folder = embedder.ref.path
    reference = SentenceTransformer(str(folder), device=embedder.device, local_files_only=True)
    reference.max_seq_length = embedder.chunk_tokens
    decode = embedder._tokenizer.decode
    windows = [
        [decode(w) for w in embedder.windows(ids)]
        for ids in embedder._token_ids([d.text for d in docs])
    ]

    def encode(texts: list[str]) -> None:
        reference.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)

    def same_windows() -> None:
        for start in range(0, len(windows), batch):
            encode([w for page in windows[start : start + batch] for w in page])

    def first_tokens() -> None:
        for start in range(0, len(docs), batch):
            encode([d.text for d in docs[start : start + batch]])

    return same_windows, first_tokens


def _verdict(met: bool | None) -> str:
    return "not measured here" if met is None else "met" if met else "NOT met"


def _timed(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _row(name: str, pages: int, timings: dict[str, list[tuple[float, float]]]) -> dict[str, Any]:
    best = {what: (min(t[0] for t in ts), min(t[1] for t in ts)) for what, ts in timings.items()}

    def rate(seconds: float) -> float:
        return round(pages / seconds, 1) if seconds > 0 else float("inf")

    (full_wall, full_cpu), (bare_wall, bare_cpu) = best["full"], best["bare"]
    reference, first = best.get("reference"), best.get("reference_first")
    return {
        "reference_pages_per_second": rate(reference[0]) if reference else None,
        "reference_pages_per_cpu_second": rate(reference[1]) if reference else None,
        "reference_first_window_pages_per_second": rate(first[0]) if first else None,
        "features": name,
        "full_seconds": round(full_wall, 4),
        "bare_seconds": round(bare_wall, 4),
        "full_pages_per_second": rate(full_wall),
        "bare_pages_per_second": rate(bare_wall),
        "full_pages_per_cpu_second": rate(full_cpu),
        "bare_pages_per_cpu_second": rate(bare_cpu),
        "overhead": round(full_wall / bare_wall - 1.0, 4) if bare_wall > 0 else 0.0,
        "overhead_cpu": round(full_cpu / bare_cpu - 1.0, 4) if bare_cpu > 0 else 0.0,
    }


def format_table(result: dict[str, Any]) -> str:
    """The result as a small text table, one row per feature set, targets beside it."""
    t = result["targets"]
    lines = [
        f"project {result['project']}: {result['pages']} pages scored, model {result['model']} "
        f"fitted on {result['labels']} labels (keep\u2265{result['threshold']:g}), "
        f"batches of {result['batch']}, best of {result['repeats']}",
        f"speed: {result['speed']}",
        "",
        f"{'features':12}{'full p/s':>10}{'bare p/s':>10}{'overhead':>10}"
        f"{'full p/cpu-s':>14}{'bare p/cpu-s':>14}{'overhead cpu':>14}",
    ]
    for r in result["rows"]:
        mark = " *" if r["features"] == result["default"] else ""
        lines.append(
            f"{r['features']:12}{r['full_pages_per_second']:>10.1f}"
            f"{r['bare_pages_per_second']:>10.1f}{r['overhead']:>10.1%}"
            f"{r['full_pages_per_cpu_second']:>14.1f}{r['bare_pages_per_cpu_second']:>14.1f}"
            f"{r['overhead_cpu']:>14.1%}{mark}"
        )
    references = [r for r in result["rows"] if r.get("reference_pages_per_second")]
    if references:
        lines.append("")
    for r in references:
        lines.append(
            f"reference for {r['features']}: sentence-transformers encode, same model: "
            f"{r['reference_pages_per_second']:.1f} pages/s, "
            f"{r['reference_pages_per_cpu_second']:.1f} pages/cpu-s on the same windows (bare: "
            f"{r['bare_pages_per_second']:.1f}, {r['bare_pages_per_cpu_second']:.1f}); "
            f"{r['reference_first_window_pages_per_second']:.1f} pages/s reading only the first "
            f"{REFERENCE_TOKENS} tokens of each page"
        )
    lines += [
        "",
        f"* default choice: {result['default']}",
        f"target: {t['overhead']} ({'met' if t['overhead_met'] else 'NOT met'}); "
        f"{t['speed']} ({_verdict(t['speed_met'])})",
    ]
    return "\n".join(lines)
