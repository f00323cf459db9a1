"""An LSH index of MinHash signatures: which stored texts a new text nearly duplicates.

A signature of ``bands * rows`` values is cut into ``bands`` bands; two texts become candidates
when all ``rows`` values of one band agree, which happens with probability ``1 - (1 - J**rows) **
bands`` for Jaccard similarity J (14 x 8: 5% at J = 0.5, 50% at 0.72, 95% at 0.85). Candidates
are then kept when their estimated Jaccard (the share of equal signature values) reaches the
threshold. Texts whose whitespace-normalised text is identical are exact duplicates (1.0) whatever
the signature says.

Bulk-loaded bands are sorted numpy arrays (a million documents cost a few sorts, not millions of
dict entries); texts added one at a time go to small dicts that fold into the arrays as they grow.

Example::

    index = NearDuplicateIndex()
    index.add(1, page_one)
    index.query(new_page)            # [(1, 0.83)]: key 1, estimated Jaccard 0.83
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from studio.dedup.minhash import EMPTY, NGRAM, SEED, is_empty, method, signatures

if TYPE_CHECKING:
    from studio.progress import Task
    from studio.store import Store

BANDS, ROWS = 14, 8
MAX_HASHES = 4096  # bands x rows: MinHash values a page (16 KB of signature a page)
THRESHOLD = 0.7  # about where 14 x 8 bands start to find pairs (the S-curve's midpoint is 0.685)
_BAND_MUL = np.random.default_rng(0xBA4D).integers(1, 1 << 63, 64, dtype=np.uint64) | np.uint64(1)


def text_hash(text: str) -> str:
    """What makes two texts exact duplicates: their words, whitespace aside."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()


def lsh_reach(bands: int, rows: int, threshold: float) -> tuple[float, float]:
    """(the similarity at which a pair becomes a candidate half the time; the chance that a
    pair right at ``threshold`` is compared at all). A pair of Jaccard similarity s is compared
    with probability 1 - (1 - s^r)^b; the half-way point solves it for 1/2 exactly (the usual
    (1/b)^(1/r) is only its rough place: 0.72 for 14 x 8, where it is 0.685)."""
    knee = (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)
    return knee, 1.0 - (1.0 - threshold**rows) ** bands


def suggested_lsh(threshold: float, hashes: int = 128) -> tuple[int, int]:
    """Bands and rows for ``threshold`` within ``hashes`` a page: among the pairs that compare
    a pair right at the threshold at least half the time (what the studio warns about), the
    one that minimises the pairs missed above the threshold plus those compared below it,
    equally weighted (the rule datasketch's ``MinHashLSH`` uses; unconstrained, at 0.7 it gives
    14 x 9, which compares pairs at 0.7 only 44 % of the time)."""
    below, above = np.linspace(0, threshold, 201), np.linspace(threshold, 1, 201)
    best = (np.inf, BANDS, ROWS)
    for b in range(1, hashes + 1):
        for r in range(1, hashes // b + 1):
            if lsh_reach(b, r, threshold)[1] < 0.5:
                continue
            compared = np.trapezoid(1 - (1 - below**r) ** b, below)
            missed = np.trapezoid((1 - above**r) ** b, above)
            best = min(best, (compared + missed, b, r))
    return best[1], best[2]


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit hash per band of each signature: ``(n, bands)``."""
    cut = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    h = (cut * _BAND_MUL[:rows]).sum(axis=2, dtype=np.uint64)
    return h ^ (h >> np.uint64(31))


class NearDuplicateIndex:
    """Texts under integer keys, queried for near-duplicates of another text."""

    def __init__(
        self,
        bands: int = BANDS,
        rows: int = ROWS,
        ngram: int = NGRAM,
        *,
        threshold: float = THRESHOLD,
        seed: int = SEED,
    ) -> None:
        if bands < 1 or rows < 1 or bands * rows > MAX_HASHES:
            raise ValueError(
                f"bands and rows must be at least 1 (and bands * rows at most {MAX_HASHES})"
            )
        if not 0.0 < threshold <= 1.0:
            raise ValueError("the threshold is a Jaccard similarity in (0, 1]")
        self.bands, self.rows, self.ngram = bands, rows, ngram
        self.threshold, self.seed = threshold, seed
        self._keys: list[int] = []
        self._sigs = np.empty((0, self.num_perm), np.uint32)  # rows beyond len(keys): room
        self._exact: dict[str, list[int]] = {}  # text hash -> positions
        self._sorted: list[tuple[np.ndarray, np.ndarray]] = []  # per band: (hashes, positions)
        self._recent: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        self._n_sorted = 0

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def params(self) -> dict[str, object]:
        return {
            "method": method(),
            "bands": self.bands,
            "rows": self.rows,
            "ngram": self.ngram,
            "threshold": self.threshold,
            "seed": self.seed,
        }

    def __len__(self) -> int:
        return len(self._keys)

    # -- adding --------------------------------------------------------------------------------

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        return signatures(texts, num_perm=self.num_perm, ngram=self.ngram, seed=self.seed)

    def add(self, key: int, text: str) -> None:
        self.add_many([key], [text])

    def add_many(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        if len(keys) != len(texts):
            raise ValueError("one key per text")
        self.add_signatures(keys, self.signatures(texts), [text_hash(t) for t in texts])

    def add_signatures(
        self, keys: Sequence[int], sigs: np.ndarray, hashes: Sequence[str] | None = None
    ) -> None:
        """Add precomputed signatures (and the texts' :func:`text_hash`, for exact matches)."""
        if sigs.shape != (len(keys), self.num_perm):
            raise ValueError(f"expected {len(keys)} signatures of {self.num_perm} values")
        base = len(self._keys)
        self._keys.extend(int(k) for k in keys)
        self._append(np.asarray(sigs, np.uint32))
        empty = is_empty(np.asarray(sigs))
        for i, h in enumerate(hashes or ()):
            if not empty[i]:  # texts without words are nobody's duplicates
                self._exact.setdefault(h, []).append(base + i)
        if len(self._keys) - self._n_sorted > max(1000, self._n_sorted // 8):
            self._rebuild()  # many added since the last fold: fold them all into the arrays
        else:
            for i, row in enumerate(band_hashes(sigs, self.bands, self.rows).tolist()):
                if not is_empty(sigs[i]):
                    for band, h in zip(self._recent, row, strict=True):
                        band.setdefault(h, []).append(base + i)

    def _append(self, sigs: np.ndarray) -> None:
        """Copy rows in after the last one, doubling the room when it runs out (adding pages
        one by one stays linear)."""
        end = len(self._keys)  # keys are already extended
        if end > len(self._sigs):
            room = np.empty((max(end, 2 * len(self._sigs), 64), self.num_perm), np.uint32)
            room[: end - len(sigs)] = self._sigs[: end - len(sigs)]
            self._sigs = room
        self._sigs[end - len(sigs) : end] = sigs

    def _stack(self) -> np.ndarray:
        return self._sigs[: len(self._keys)]

    def _rebuild(self) -> None:
        """Fold everything into the sorted per-band arrays."""
        sigs = self._stack()
        live = np.flatnonzero(~is_empty(sigs))
        bh = band_hashes(sigs[live], self.bands, self.rows)
        self._sorted = []
        for b in range(self.bands):
            order = np.argsort(bh[:, b], kind="stable")
            self._sorted.append((bh[order, b], live[order]))
        self._recent = [{} for _ in range(self.bands)]
        self._n_sorted = len(sigs)

    # -- querying ------------------------------------------------------------------------------

    def query(self, text: str) -> list[tuple[int, float]]:
        """The keys whose text this one nearly duplicates, with the estimated Jaccard, best
        first (exact duplicates count 1.0)."""
        return self.query_many([text])[0]

    def query_many(self, texts: Sequence[str]) -> list[list[tuple[int, float]]]:
        sigs = self.signatures(texts)
        return [self.query_signature(sig, text_hash(t)) for sig, t in zip(sigs, texts, strict=True)]

    def query_signature(self, sig: np.ndarray, exact: str | None = None) -> list[tuple[int, float]]:
        """Like :meth:`query`, for a signature made with this index's parameters."""
        sigs = self._stack()
        found: dict[int, float] = {}
        if is_empty(sig):
            return []
        for pos in self._exact.get(exact, ()) if exact else ():
            found[pos] = 1.0
        cands = self._candidates(sig)
        if len(cands):
            sims = (sigs[cands] == sig).mean(axis=1)
            for pos, s in zip(cands.tolist(), sims.tolist(), strict=True):
                if s >= self.threshold and pos not in found:
                    found[pos] = s
        best: dict[int, float] = {}
        for pos, s in found.items():
            key = self._keys[pos]
            best[key] = max(s, best.get(key, 0.0))
        return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))

    def _candidates(self, sig: np.ndarray) -> np.ndarray:
        row = band_hashes(sig[None, :], self.bands, self.rows)[0]
        parts: list[Iterable[int]] = []
        for b, h in enumerate(row.tolist()):
            if self._sorted:
                hashes, positions = self._sorted[b]
                key = np.uint64(h)
                lo = int(np.searchsorted(hashes, key, "left"))
                hi = int(np.searchsorted(hashes, key, "right"))
                parts.append(positions[lo:hi].tolist())
            parts.append(self._recent[b].get(h, ()))
        merged = {p for part in parts for p in part}
        return np.fromiter(merged, np.int64, len(merged))

    def pairs(self, task: Task | None = None) -> list[tuple[int, int, float]]:
        """Every pair of positions that are near or exact duplicates: ``(i, j, similarity)``
        with ``i < j``; positions are the order of adding (see :attr:`keys`)."""
        sigs = self._stack()
        if len(sigs) != self._n_sorted or any(self._recent):
            self._rebuild()
        found: dict[tuple[int, int], float] = {}
        for positions in self._exact.values():
            for j in positions[1:]:
                found[(positions[0], j)] = 1.0
        checked: set[tuple[int, int]] = set()  # a pair sharing several bands: compared once
        for b, (hashes, positions) in enumerate(self._sorted):
            if task is not None:
                task.check()
                task.progress(b, self.bands, "comparing candidates")
            for pair in _same_runs(hashes, positions):
                if pair not in found and pair not in checked:
                    checked.add(pair)
                    s = float((sigs[pair[0]] == sigs[pair[1]]).mean())
                    if s >= self.threshold:
                        found[pair] = s
        return [(i, j, s) for (i, j), s in found.items()]

    @property
    def keys(self) -> list[int]:
        """The keys in the order they were added (a position in :meth:`pairs` indexes this)."""
        return self._keys

    @property
    def signature_matrix(self) -> np.ndarray:
        """Every added signature, in the order of :attr:`keys`."""
        return self._stack()

    # -- from a project ------------------------------------------------------------------------

    @classmethod
    def from_store(
        cls,
        store: Store,
        bands: int = BANDS,
        rows: int = ROWS,
        ngram: int = NGRAM,
        *,
        threshold: float = THRESHOLD,
        seed: int = SEED,
        save: bool = True,
        task: Task | None = None,
    ) -> NearDuplicateIndex:
        """An index of every document's main text under its document id. Signatures are read
        from the project's cache; those missing are computed (and saved, if ``save``)."""
        from studio.dedup.store import load_signatures

        index = cls(bands, rows, ngram, threshold=threshold, seed=seed)
        ids, sigs, hashes = load_signatures(store, index, save=save, task=task)
        index.add_signatures(ids, sigs, hashes)
        if len(ids) and not index._sorted:
            index._rebuild()
        return index


ALL_PAIRS = 32  # a band bucket up to this size is checked pair by pair; a larger one (shared
# boilerplate) only along its sorted order and against its first member, to stay linear


def _same_runs(hashes: np.ndarray, positions: np.ndarray) -> Iterable[tuple[int, int]]:
    """Pairs of positions that share a band hash (``hashes`` sorted), smaller position first."""
    if len(hashes) < 2:
        return
    same = hashes[1:] == hashes[:-1]
    if not same.any():
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[False], same, [False]]).astype(np.int8)))
    for start, stop in zip(edges[0::2].tolist(), (edges[1::2] + 1).tolist(), strict=True):
        run = sorted(positions[start:stop].tolist())
        if len(run) <= ALL_PAIRS:
            yield from ((a, b) for k, a in enumerate(run) for b in run[k + 1 :])
        else:
            yield from zip(run, run[1:], strict=False)
            yield from ((run[0], b) for b in run[2:])


__all__ = ["BANDS", "EMPTY", "ROWS", "THRESHOLD", "NearDuplicateIndex", "band_hashes", "text_hash"]
