"""Benchmark: every diversity measure over N documents, and MinHash signatures beside datasketch.

Documents are passages (about 200 words, cut at paragraph ends) of a WCXB-style corpus's main
texts, or, without one, Python's own documentation pages (:func:`simulate.library_pages`); the
real pages are passages of other pages, so the set is measured against a baseline it does not
contain. Timed, wall clock (``time.perf_counter``), in one run:

- fitting the reference model on the real passages (done once per project, then loaded);
- embedding every passage with the static model (done once per page: the project caches it);
- each stage of :func:`studio.diversity.analysis.measure` (the figure the target is about:
  every measure, for all N documents, given their embeddings);
- MinHash signatures of the same N texts: the studio's (``studio.dedup.signatures``) and
  datasketch's ``MinHash`` (112 permutations over the same word 5-grams), as documents per second.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.progress import Task

TARGET_SECONDS = 10.0  # every measure for 10,000 documents
PASSAGE_WORDS = 200
DATASKETCH_SAMPLE = 2_000  # datasketch is slow: it hashes this many texts and is scaled per doc


def passages(corpus: Path, words: int = PASSAGE_WORDS) -> list[tuple[int, str]]:
    """(page number, passage) for every passage of every page's main text."""
    out = []
    for page, path in enumerate(sorted((corpus / "ground-truth").glob("*.json"))):
        try:
            text = json.loads(path.read_text("utf-8"))["ground_truth"].get("main_content") or ""
        except (OSError, ValueError, KeyError):
            continue
        chunk: list[str] = []
        count = 0
        for para in text.split("\n"):
            if not para.strip():
                continue
            chunk.append(para)
            count += len(para.split())
            if count >= words:
                out.append((page, "\n\n".join(chunk)))
                chunk, count = [], 0
        if count >= words // 2:
            out.append((page, "\n\n".join(chunk)))
    return out


def _datasketch_rate(texts: list[str]) -> float:
    from datasketch import MinHash

    word = re.compile(r"[a-z0-9]+|[^\x00-\x7f]+")
    sample = texts[:DATASKETCH_SAMPLE]
    start = time.perf_counter()
    for text in sample:
        tokens = word.findall(text.lower())
        shingles = {" ".join(tokens[i : i + 5]).encode() for i in range(max(1, len(tokens) - 4))}
        m = MinHash(num_perm=112, seed=1)
        m.update_batch(list(shingles))
    return len(sample) / (time.perf_counter() - start)


def library_passages() -> list[tuple[int, str]]:
    """(page number, passage) of Python's documentation: its pages are passages already."""
    from studio.diversity.simulate import library_pages

    return list(enumerate(library_pages(PASSAGE_WORDS)))


def run(
    corpus: Path | None, *, n_docs: int = 10_000, n_real: int = 2_000, task: Task | None = None
) -> dict:
    """``corpus``: a WCXB-style folder, or None for Python's documentation pages."""
    from studio.classify.features import StaticFeatures
    from studio.dedup import signatures
    from studio.diversity.analysis import Documents, measure
    from studio.diversity.reference import HOLDOUT, ReferenceModel

    task = task or Task()
    found = passages(corpus) if corpus is not None else library_passages()
    if len(found) < 200:
        source = corpus or "Python's documentation"
        raise ValueError(f"{source} holds {len(found)} passages: too few to benchmark")
    # real passages from every HOLDOUT-th page, the set from the others (cycled to N)
    real = [t for page, t in found if page % 5 == 0][:n_real]
    rest = [t for page, t in found if page % 5 != 0]
    texts = [
        rest[i % len(rest)] + ("" if i < len(rest) else f"\n\n({i // len(rest)})")
        for i in range(n_docs)
    ]
    rows: list[dict[str, Any]] = []

    def timed(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        value = fn()
        rows.append({"step": name, "seconds": round(time.perf_counter() - start, 3)})
        return value

    task.progress(0, 4, "reference model")
    real_ids = np.arange(len(real))
    fit_rows = real_ids[real_ids % HOLDOUT != 0]
    model = timed(
        "fit the reference model (once per project)",
        lambda: ReferenceModel.fit([real[i] for i in fit_rows]),
    )
    task.progress(1, 4, "embedding")
    embedder = StaticFeatures()
    embedder.encoder()
    everything = real + texts
    X = timed(
        f"embed {len(everything):,} passages (once per page: cached)",
        lambda: embedder.embed(everything),
    )
    ids = np.arange(len(everything))
    docs = Documents(
        ids=ids,
        texts=everything,
        embeddings=X,
        real=ids < len(real),
        fitted=np.isin(ids, fit_rows),
    )
    task.progress(2, 4, "measuring")
    start, cpu = time.perf_counter(), time.process_time()
    report = measure(
        docs,
        [(f"{n_docs:,} passages", np.arange(len(real), len(everything)), None)],
        np.arange(len(real)),
        model,
        by="bench",
        embed=embedder.embed,
    )
    total = time.perf_counter() - start
    cpu = time.process_time() - cpu
    rows.extend(
        {"step": f"  measure: {k}", "seconds": round(v, 3)} for k, v in report.timings.items()
    )
    rows.append(
        {
            "step": f"every measure, {n_docs:,} documents (target < {TARGET_SECONDS:.0f} s)",
            "seconds": round(total, 3),
        }
    )
    # on a shared machine wall time includes waiting for a core: CPU time says what it cost
    rows.append({"step": "  the same, process CPU time", "seconds": round(cpu, 3)})
    task.progress(3, 4, "MinHash")
    start = time.perf_counter()
    signatures(texts)
    studio_rate = len(texts) / (time.perf_counter() - start)
    datasketch_rate = _datasketch_rate(texts)
    task.progress(4, 4, "done")
    return {
        "corpus": str(corpus) if corpus is not None else "Python's documentation pages",
        "documents": n_docs,
        "real": len(real),
        "block": report.block,
        "window": report.window,
        "rows": rows,
        "measure_seconds": round(total, 3),
        "measure_cpu_seconds": round(cpu, 3),
        "target_seconds": TARGET_SECONDS,
        "meets_target": total < TARGET_SECONDS * n_docs / 10_000,
        "minhash": {
            "studio_docs_per_s": round(studio_rate, 1),
            "datasketch_docs_per_s": round(datasketch_rate, 1),
            "datasketch_sample": min(len(texts), DATASKETCH_SAMPLE),
        },
        "alarms": len(report.alarms),
    }


def format_table(result: dict) -> str:
    width = max(len(r["step"]) for r in result["rows"]) + 2
    lines = [
        f"{result['documents']:,} documents against {result['real']:,} real passages "
        f"(blocks of {result['block']}, windows of {result['window']:,} words) "
        f"from {result['corpus']}",
        f"{'step':<{width}}{'seconds':>9}",
        "-" * (width + 9),
    ]
    lines += [f"{r['step']:<{width}}{r['seconds']:>9.2f}" for r in result["rows"]]
    mh = result["minhash"]
    lines += [
        "",
        f"{'MinHash signatures (112 hashes, word 5-grams)':<{width}}{'docs/s':>9}",
        f"{'  studio.dedup.signatures':<{width}}{mh['studio_docs_per_s']:>9,.0f}",
        f"{'  datasketch MinHash (first ' + str(mh['datasketch_sample']) + ' docs)':<{width}}"
        f"{mh['datasketch_docs_per_s']:>9,.0f}",
        "",
        "target met" if result["meets_target"] else "TARGET MISSED",
    ]
    return "\n".join(lines)
