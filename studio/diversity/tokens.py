"""Words as integer ids: every lexical measure and the reference model read the same tokens.

A document is lower-cased and split into runs of letters and digits; the ids of all documents lie
in one flat array with an offsets array, so measures over thousands of documents are numpy
operations rather than Python loops.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WORD = re.compile(r"\w+", re.UNICODE)


class Vocabulary:
    """word -> id, growing as documents are read (ids are dense, from 0)."""

    def __init__(self, words: Sequence[str] = ()) -> None:
        self.ids: dict[str, int] = {}
        for w in words:
            self.ids.setdefault(w, len(self.ids))

    def __len__(self) -> int:
        return len(self.ids)

    def words(self) -> list[str]:
        out = [""] * len(self.ids)
        for w, i in self.ids.items():
            out[i] = w
        return out

    def encode(self, texts: Sequence[str]) -> Tokens:
        ids = self.ids
        add = ids.setdefault
        lengths = np.zeros(len(texts), dtype=np.int64)
        chunks: list[list[int]] = []
        for i, text in enumerate(texts):
            # len(ids) is read before the insertion: a new word gets the next free id
            row = [add(w, len(ids)) for w in WORD.findall(text.lower())]
            lengths[i] = len(row)
            chunks.append(row)
        flat = np.fromiter((t for row in chunks for t in row), dtype=np.int64, count=lengths.sum())
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return Tokens(flat, offsets)


@dataclass(slots=True)
class Tokens:
    """The token ids of several documents: document i is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def doc_index(self) -> np.ndarray:
        """For every token, the index of its document."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths())

    def positions(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Where the tokens of documents ``rows`` (in that order) lie in ``ids``."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths()[rows]
        ends = np.cumsum(lengths)
        # each document's tokens: a run of consecutive positions from its offset
        shift = np.repeat(ends - lengths - self.offsets[rows], lengths)
        return np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) - shift

    def subset(self, rows: Sequence[int] | np.ndarray) -> Tokens:
        """The documents ``rows`` (in that order) as their own :class:`Tokens`."""
        rows = np.asarray(rows, dtype=np.int64)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(self.lengths()[rows], out=offsets[1:])
        return Tokens(self.ids[self.positions(rows)], offsets)


def ngram_keys(tokens: Tokens, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(hash of each n-gram that lies inside one document, its document index), as uint64.

    Hash collisions are possible in principle (64 bits) and harmless for counting shares.
    """
    ids = tokens.ids.astype(np.uint64)
    total = len(ids)
    if total < n:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    keys = ids[: total - n + 1].copy()
    prime = np.uint64(1_000_003)
    with np.errstate(over="ignore"):  # wrapping multiplication is the hash
        for k in range(1, n):
            keys = keys * prime + ids[k : total - n + 1 + k]
    doc = tokens.doc_index()
    # an n-gram starting at p lies in one document when p and p + n - 1 share it
    inside = doc[: total - n + 1] == doc[n - 1 :]
    return keys[inside], doc[: total - n + 1][inside]


def unique(
    keys: np.ndarray, *, index: bool = False, inverse: bool = False, counts: bool = False
) -> tuple[np.ndarray, ...]:
    """``np.unique(keys, return_index=index, return_inverse=inverse, return_counts=counts)``,
    the same arrays in the same order, from one unstable sort.

    numpy 2's ``unique`` hashes (or, asked for indices, sorts stably): on the 10^5 to 10^6
    integer keys of a block or window that is 5 to 50 times slower than an unstable sort, and
    these calls were half the time of a diversity measurement. The first occurrence of each
    value is the smallest index among its equals, whatever order the sort left them in.
    """
    n = len(keys)
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    out: list[np.ndarray] = [ordered[starts]]
    if index:
        out.append(np.minimum.reduceat(order, starts) if n else np.zeros(0, dtype=np.intp))
    if inverse:
        groups = np.empty(n, dtype=np.intp)
        groups[order] = np.cumsum(new) - 1
        out.append(groups)
    if counts:
        out.append(np.diff(np.append(starts, n)))
    return tuple(out)
