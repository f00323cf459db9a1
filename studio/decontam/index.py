"""Which benchmark items a text overlaps: shared word n-grams (13 by default, as GPT-3 and Phi-1
decontaminated), with an allow-list of common phrases that never count.

Words are runs of letters and digits, lower-cased (punctuation, underscores and spacing aside), so
``has_close_elements(numbers, threshold)`` and ``has close elements numbers threshold`` match.
Overlapping matching n-grams of one item merge into one :class:`Hit`: the longest shared span,
with its character offsets in the text and in the item, for a side-by-side view.

Example::

    index = BenchmarkIndex.load(["gsm8k"], n=13)
    for hit in index.hits(page):
        print(hit.benchmark, hit.item_id, hit.ngram)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from studio.decontam.benchmarks import Benchmark, Item, load_benchmarks, shipped_names

N = 13
# the fewest words a curator may ask for: shorter n-grams match ordinary prose ("at the end of
# the day"), so nearly every page would be marked and its spans stored by the million
MIN_N = 8
# phrases that many unrelated texts share word for word: never a sign of contamination
DEFAULT_ALLOW: tuple[str, ...] = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    "software and associated documentation files (the Software), to deal in the Software "
    "without restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the Software",
    "THE SOFTWARE IS PROVIDED AS IS, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING "
    "BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND "
    "NONINFRINGEMENT",
    "Licensed under the Apache License, Version 2.0 (the License); you may not use this file "
    "except in compliance with the License. You may obtain a copy of the License at",
    "This program is free software: you can redistribute it and/or modify it under the terms of "
    "the GNU General Public License as published by the Free Software Foundation, either version "
    "3 of the License, or (at your option) any later version.",
)
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The text's words, lower-cased, and each one's character span."""
    low = text.lower()
    if len(low) == len(text):  # one character for one: the spans hold in the text too
        found = list(_WORD.finditer(low))
        return [m.group() for m in found], [m.span() for m in found]
    found = list(_WORD.finditer(text))  # "İ" lowers to two characters: word by word
    return [m.group().lower() for m in found], [m.span() for m in found]


def word_list(text: str) -> list[str]:
    """``words(text)[0]``, without the spans (the fast path: most texts have no hit)."""
    low = text.lower()
    if len(low) == len(text):
        return _WORD.findall(low)
    return [w.lower() for w in _WORD.findall(text)]


@dataclass(frozen=True, slots=True)
class Hit:
    """One span a text shares with a benchmark item."""

    benchmark: str
    item_id: str
    ngram: str  # the shared words as the text has them
    text_span: tuple[int, int]  # character offsets in the text
    item_span: tuple[int, int]  # character offsets in item_text
    item_text: str
    words: int  # how many words the shared span has (at least n)

    def to_dict(self) -> dict[str, object]:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "ngram": self.ngram,
            "text_span": list(self.text_span),
            "item_span": list(self.item_span),
            "words": self.words,
        }


class BenchmarkIndex:
    """The word n-grams of benchmark items, to find them in other texts."""

    def __init__(
        self, benchmarks: Sequence[Benchmark], *, n: int = N, allow: Iterable[str] = DEFAULT_ALLOW
    ) -> None:
        if n < 1:
            raise ValueError("n-grams have at least one word")
        self.n = n
        self.benchmarks = list(benchmarks)
        self._items: list[tuple[str, Item, list[tuple[int, int]]]] = []
        allowed = {g for phrase in allow for g in _grams(words(phrase)[0], n)}
        self.allowed = len(allowed)
        self._grams: dict[tuple[str, ...], list[tuple[int, int]]] = {}
        self._vocab: dict[str, int] = {}
        hashes: list[np.ndarray] = []
        for bench in self.benchmarks:
            for item in bench.items:
                ws, spans = words(item.text)
                k = len(self._items)
                self._items.append((bench.name, item, spans))
                if len(ws) < n:
                    continue
                ids = np.array([self._vocab.setdefault(w, len(self._vocab)) for w in ws])
                keep = np.ones(len(ws) - n + 1, bool)
                for j, g in enumerate(_grams(ws, n)):
                    # numbers alone ("1 2 3 4 5 6 7 8 9", the primes) are in any maths page
                    if g in allowed or all(w.isdigit() for w in g):
                        keep[j] = False
                    else:
                        self._grams.setdefault(g, []).append((k, j))
                hashes.append(_gram_hashes(ids, n)[keep])
        self._hashes = np.unique(np.concatenate(hashes)) if hashes else np.empty(0, np.uint64)

    @classmethod
    def load(
        cls,
        names: Sequence[str] | None = None,
        files: Sequence[Path | str] = (),
        n: int = N,
        allow: Iterable[str] = DEFAULT_ALLOW,
    ) -> BenchmarkIndex:
        """Shipped benchmarks by name (None: all of them) and curators' files; raises
        :class:`~studio.decontam.benchmarks.BenchmarkError` for one that cannot be read."""
        chosen = shipped_names() if names is None else list(names)
        return cls(load_benchmarks([*chosen, *map(str, files)]), n=n, allow=allow)

    def _candidates(self, ws: list[str]) -> np.ndarray:
        """Where an n-gram of the benchmarks may start: every word known to them and the
        n-gram's hash among theirs (a few numpy passes; the dict then decides)."""
        n = self.n
        if len(ws) < n or not len(self._hashes):
            return np.empty(0, np.int64)
        ids = np.fromiter(map(self._vocab.get, ws, repeat(-1)), np.int64, len(ws))
        unknown = np.concatenate([[0], np.cumsum(ids < 0)])
        h = _gram_hashes(ids, n)
        known = unknown[n:] == unknown[:-n]
        pos = np.searchsorted(self._hashes, h)
        found = self._hashes[np.minimum(pos, len(self._hashes) - 1)] == h
        return np.flatnonzero(known & found)

    @property
    def items(self) -> int:
        return len(self._items)

    @property
    def ngrams(self) -> int:
        return len(self._grams)

    def hits(self, text: str) -> list[Hit]:
        """Every span the text shares with a benchmark item, in the text's order."""
        n = self.n
        ws = word_list(text)
        starts = self._candidates(ws)
        if not len(starts):
            return []
        ws, spans = words(text)
        # (item, diagonal, text word, item word) of each matching n-gram: a shared span is a
        # run of consecutive text words on one item's diagonal
        matches = sorted(
            (k, i - j, i, j)
            for i in starts.tolist()
            for k, j in self._grams.get(tuple(ws[i : i + n]), ())
        )
        out: list[Hit] = []
        run: list[tuple[int, int, int, int]] = []
        for m in matches:
            if run and (m[0], m[1], m[2]) != (run[-1][0], run[-1][1], run[-1][2] + 1):
                out.append(self._hit(text, spans, run[0], run[-1]))
                run = []
            run.append(m)
        if run:
            out.append(self._hit(text, spans, run[0], run[-1]))
        return _outermost(out)

    def _hit(
        self,
        text: str,
        spans: list[tuple[int, int]],
        first: tuple[int, int, int, int],
        last: tuple[int, int, int, int],
    ) -> Hit:
        bench, item, item_spans = self._items[first[0]]
        n = self.n
        t0, t1 = spans[first[2]][0], spans[last[2] + n - 1][1]
        i0, i1 = item_spans[first[3]][0], item_spans[last[3] + n - 1][1]
        return Hit(
            benchmark=bench,
            item_id=item.id,
            ngram=text[t0:t1],
            text_span=(t0, t1),
            item_span=(i0, i1),
            item_text=item.text,
            words=last[2] - first[2] + n,
        )


def _outermost(hits: list[Hit]) -> list[Hit]:
    """The hits in the text's order, less those inside a longer hit of the same item (an answer
    that repeats part of its question matches the question twice)."""
    kept: dict[tuple[str, str], list[Hit]] = {}
    for h in sorted(hits, key=lambda h: -h.words):
        same = kept.setdefault((h.benchmark, h.item_id), [])
        a, b = h.text_span
        if not any(k.text_span[0] <= a and b <= k.text_span[1] for k in same):
            same.append(h)
    out = [h for group in kept.values() for h in group]
    return sorted(out, key=lambda h: (h.text_span, h.benchmark, h.item_id))


_MUL = np.random.default_rng(0xDEC0).integers(1, 1 << 63, 256, dtype=np.uint64) | np.uint64(1)


def _gram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash of each run of ``n`` word ids (wrapping arithmetic)."""
    ids = ids.astype(np.uint64)
    h = np.zeros(len(ids) - n + 1, np.uint64)
    for k in range(n):
        h += ids[k : k + len(h)] * _MUL[k % len(_MUL)] + np.uint64(k)
        h ^= h >> np.uint64(29)
    return h


def _grams(ws: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(ws[i : i + n]) for i in range(len(ws) - n + 1)]
