"""Benchmark: MinHash signatures per second, the studio beside datasketch and rensa, on the same
texts in the same run.

Texts: deterministic pseudo-English documents of ``words`` words (a Zipf-distributed vocabulary
of 30,000 words, sentences with capitals and punctuation). Every method makes 112-value signatures
of word 5-gram shingles (14 bands x 8 rows). Rows:

- *studio*: :func:`studio.dedup.signatures` (numpy shingle hashing, rensa minima);
- *studio shingles only* and *rensa minima only*: its two stages apart;
- *studio + numpy minima*: the same shingle hashes, minima taken by vectorised numpy
  (``(a * x + b) mod 2**64``, high 32 bits: the multiply-add-shift family), the all-numpy option;
- *rensa, Python shingles*: rensa's own bulk path on shingle strings made in Python;
- *datasketch*: ``MinHash.update_batch`` per document, on ``reference_docs`` documents (slow).

Each is timed ``repeats`` times; the best wall time counts. The error column is the mean absolute
difference between each method's estimated Jaccard and the exact Jaccard of the shingle sets, on
pairs of a document and a copy with a share of its words replaced.

Target: at least 20,000 documents/s for 300-word documents on this 2-core machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from studio.dedup.minhash import (
    NGRAM,
    NUM_PERM,
    SEED,
    batch_stops,
    min_hashes,
    shingle_hashes,
    signatures,
)

Progress = Callable[[int, int, str], None]
TARGET = 20_000.0  # documents per second, 300-word documents
PAIRS = 200


def synthetic_texts(n: int, words: int, seed: int = 0) -> list[str]:
    """``n`` deterministic pseudo-English documents of ``words`` words each."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    freq = np.array(
        [
            12,
            9,
            8,
            7.5,
            7,
            6.7,
            6.3,
            6,
            6,
            4.3,
            4,
            2.8,
            2.8,
            2.4,
            2.4,
            2.2,
            2,
            2,
            1.9,
            1.5,
            1,
            0.8,
            0.15,
            0.15,
            0.1,
            0.07,
        ]
    )
    lengths = np.clip(rng.poisson(4.5, 30_000), 1, 14)
    vocab = ["".join(rng.choice(letters, k, p=freq / freq.sum())) for k in lengths]
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    picks = rng.choice(len(vocab), size=(n, words), p=zipf / zipf.sum())
    ends = rng.random((n, words)) < 1 / 14  # a sentence ends about every 14 words
    out = []
    for row, stops in zip(picks, ends, strict=True):
        parts, capital = [], True
        for w, stop in zip(row.tolist(), stops.tolist(), strict=True):
            word = vocab[w].capitalize() if capital else vocab[w]
            parts.append(word + ("." if stop else ""))
            capital = stop
        out.append(" ".join(parts))
    return out


def mutated_pairs(texts: Sequence[str], n: int, seed: int = 1) -> list[tuple[str, str]]:
    """Pairs of a text and a copy with 2-20 % of its words replaced."""
    rng = np.random.default_rng(seed)
    pairs = []
    for t in texts[:n]:
        ws = t.split()
        share = rng.uniform(0.02, 0.2)
        for i in rng.choice(len(ws), max(1, int(share * len(ws))), replace=False).tolist():
            ws[i] = f"z{rng.integers(1 << 30)}"
        pairs.append((t, " ".join(ws)))
    return pairs


def numpy_min_hashes(
    hashes: np.ndarray, offsets: np.ndarray, num_perm: int = NUM_PERM, seed: int = SEED
) -> np.ndarray:
    """Minima by vectorised numpy: ``(a_k * x + b_k) mod 2**64`` for each permutation k, the min
    over each text's shingles, its high 32 bits. A few thousand shingles at a time (in cache)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 63, num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 1 << 63, num_perm, dtype=np.uint64)
    n = len(offsets) - 1
    out = np.full((n, num_perm), np.uint64(0xFFFFFFFFFFFFFFFF), np.uint64)
    step, i = 4096, 0
    while i < n:
        j = max(i + 1, min(n, int(np.searchsorted(offsets, offsets[i] + step, "right")) - 1))
        lo, hi = int(offsets[i]), int(offsets[j])
        if hi > lo:
            buf = hashes[lo:hi, None] * a
            buf += b
            starts = offsets[i:j] - lo
            has = offsets[i + 1 : j + 1] > offsets[i:j]
            mins = np.minimum.reduceat(buf, np.minimum(starts, hi - lo - 1), axis=0)
            out[i:j][has] = mins[has]
        i = j
    return (out >> np.uint64(32)).astype(np.uint32)


def _python_shingles(text: str, ngram: int = NGRAM) -> list[str]:
    ws = text.lower().split()
    if len(ws) < ngram:
        return [" ".join(ws)] if ws else []
    return [" ".join(ws[i : i + ngram]) for i in range(len(ws) - ngram + 1)]


def _rensa(texts: Sequence[str]) -> np.ndarray:
    import rensa

    sets = [_python_shingles(t) for t in texts]
    matrix = rensa.RMinHash.digest_matrix_from_token_sets(sets, NUM_PERM, SEED)
    return np.array(matrix.to_rows(), dtype=np.uint32)


def _datasketch(texts: Sequence[str]) -> np.ndarray:
    from datasketch import MinHash

    out = np.empty((len(texts), NUM_PERM), np.uint64)
    for i, t in enumerate(texts):
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        m.update_batch([s.encode("utf-8") for s in _python_shingles(t)])
        out[i] = m.hashvalues
    return out


def _shingles_batched(texts: Sequence[str]) -> None:
    """The shingle hashing of :func:`signatures`, in its batches, without the minima."""
    start = 0
    for stop in batch_stops(texts):
        shingle_hashes(texts[start:stop])
        start = stop


def _studio_numpy(texts: Sequence[str]) -> np.ndarray:
    parts, start = [], 0
    for stop in batch_stops(texts):
        parts.append(numpy_min_hashes(*shingle_hashes(texts[start:stop])))
        start = stop
    return np.concatenate(parts)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best wall seconds, CPU seconds of that run, the result)."""
    best, cpu, result = float("inf"), 0.0, None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        if w < best:
            best, cpu = w, c
    return best, cpu, result


def _error(make: Callable[[Sequence[str]], np.ndarray], pairs: list[tuple[str, str]]) -> float:
    """Mean |estimated - exact| Jaccard over the pairs (exact: of the studio's shingle sets)."""
    flat = [t for pair in pairs for t in pair]
    sigs = make(flat)
    hashes, offsets = shingle_hashes(flat)
    errs = []
    for k in range(len(pairs)):
        a = set(hashes[offsets[2 * k] : offsets[2 * k + 1]].tolist())
        b = set(hashes[offsets[2 * k + 1] : offsets[2 * k + 2]].tolist())
        exact = len(a & b) / len(a | b) if a | b else 0.0
        errs.append(abs(float((sigs[2 * k] == sigs[2 * k + 1]).mean()) - exact))
    return float(np.mean(errs))


def run(
    *,
    docs: int = 20_000,
    words: int = 300,
    repeats: int = 3,
    reference_docs: int = 2000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    texts = synthetic_texts(docs, words)
    ref = texts[: min(reference_docs, docs)]
    pairs = mutated_pairs(texts, PAIRS)
    hashes, offsets = shingle_hashes(texts)
    methods: list[tuple[str, Sequence[str], Callable[[], Any], Any]] = [
        ("studio", texts, lambda: signatures(texts), signatures),
        ("studio shingles only", texts, lambda: _shingles_batched(texts), None),
        ("rensa minima only", texts, lambda: min_hashes(hashes, offsets), None),
        ("studio + numpy minima", texts, lambda: _studio_numpy(texts), _studio_numpy),
        ("rensa, Python shingles", texts, lambda: _rensa(texts), _rensa),
        ("datasketch", ref, lambda: _datasketch(ref), _datasketch),
    ]
    rows = []
    for k, (name, batch, fn, make) in enumerate(methods):
        if progress is not None:
            progress(k, len(methods), name)
        wall, cpu, _ = _timed(fn, repeats)
        rows.append(
            {
                "method": name,
                "documents": len(batch),
                "seconds": wall,
                "docs_per_second": len(batch) / wall,
                "docs_per_cpu_second": len(batch) / cpu if cpu > 0 else None,
                "jaccard_error": _error(make, pairs) if make is not None else None,
            }
        )
    studio = rows[0]["docs_per_second"]
    reference = rows[-1]["docs_per_second"]
    return {
        "documents": docs,
        "words": words,
        "num_perm": NUM_PERM,
        "ngram": NGRAM,
        "repeats": repeats,
        "rows": rows,
        "speedup_vs_datasketch": studio / reference,
        "target": {"docs_per_second": TARGET, "met": studio >= TARGET},
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['documents']:,} documents of {result['words']} words, {result['num_perm']} "
        f"hashes of word {result['ngram']}-grams, best of {result['repeats']}",
        "",
        f"{'method':26}{'docs':>8}{'docs/s':>11}{'docs/cpu-s':>12}{'|J err|':>9}",
    ]
    for r in result["rows"]:
        cpu = f"{r['docs_per_cpu_second']:,.0f}" if r["docs_per_cpu_second"] else "-"
        err = f"{r['jaccard_error']:.3f}" if r["jaccard_error"] is not None else "-"
        lines.append(
            f"{r['method']:26}{r['documents']:>8,}{r['docs_per_second']:>11,.0f}{cpu:>12}{err:>9}"
        )
    t = result["target"]
    lines += [
        "",
        f"studio is {result['speedup_vs_datasketch']:.1f}x datasketch; target "
        f">= {t['docs_per_second']:,.0f} docs/s: {'met' if t['met'] else 'NOT met'}",
    ]
    return "\n".join(lines)
