"""Lexical diversity over fixed-size windows of words, and the templates documents repeat.

A set's value for a window measure is the mean over consecutive windows of ``window`` words of
the set's documents (shuffled once, with a fixed seed): distinct-n and n-gram entropy depend on
how many words they see, so every set, and the real pages' baseline, is measured on windows of
the same size. Hashes mix the window number into each n-gram, so one ``unique`` over all
windows does the counting of every window at once.
"""

from __future__ import annotations

import lzma
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from itertools import islice

import numpy as np

from studio.diversity.tokens import Tokens, ngram_keys, unique

REPEAT_N = 5  # cross-document repetition counts shared word 5-grams, as MinHash dedup does
COMPRESS_WINDOWS = 16  # xz is the slowest measure: it sees at most this many windows of a set
MAX_WINDOWS = 32  # a set's mean over 32 windows of its shuffled words is as good as over all
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _mix(keys: np.ndarray, other: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = other.astype(np.uint64) * _MIX
        h ^= h >> np.uint64(29)
        return keys ^ h


def window_measures(
    tokens: Tokens, window: int, words: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per window: distinct-1/2/3, bigram entropy (bits), cross-document repetition, and with
    ``words`` (id -> word) the xz and gzip compression ratios of the window's words."""
    n_windows = min(int(tokens.offsets[-1] // window) if window > 0 else 0, MAX_WINDOWS)
    if n_windows == 0:
        return {}
    # only the words of the windows measured are read (documents arrive shuffled)
    docs_needed = int(np.searchsorted(tokens.offsets, n_windows * window, side="left"))
    tokens = tokens.subset(np.arange(min(docs_needed + 1, len(tokens))))
    out: dict[str, np.ndarray] = {}
    for n in (1, 2, 3):
        keys, _doc = ngram_keys(tokens, n)
        pos = _positions(tokens, n)
        w = pos // window
        keep = w < n_windows
        mixed, w = _mix(keys[keep], w[keep]), w[keep]
        _, first, counts = unique(mixed, index=True, counts=True)
        total = np.bincount(w, minlength=n_windows).astype(np.float64)
        distinct = np.bincount(w[first], minlength=n_windows)
        out[f"distinct_{n}"] = distinct / np.maximum(total, 1)
        if n == 2:
            wc = w[first]
            plogp = np.bincount(wc, weights=counts * np.log2(counts), minlength=n_windows)
            out["entropy_2"] = np.log2(np.maximum(total, 1)) - plogp / np.maximum(total, 1)
    out["cross_doc_repetition"] = _repetition(tokens, window, n_windows)
    if words is not None:
        xz, gz = [], []
        for j in range(min(n_windows, COMPRESS_WINDOWS)):
            raw = " ".join(words[tokens.ids[j * window : (j + 1) * window]]).encode()
            xz.append(len(lzma.compress(raw, preset=0)) / max(len(raw), 1))
            gz.append(len(zlib.compress(raw, 6)) / max(len(raw), 1))
        out["compression_xz"] = np.asarray(xz)
        out["compression_gzip"] = np.asarray(gz)
    return out


def _positions(tokens: Tokens, n: int) -> np.ndarray:
    """The start position of every n-gram :func:`ngram_keys` returns, in the same order."""
    total = len(tokens.ids)
    if total < n:
        return np.zeros(0, dtype=np.int64)
    doc = tokens.doc_index()
    pos = np.arange(total - n + 1, dtype=np.int64)
    return pos[doc[: total - n + 1] == doc[n - 1 :]]


def _in_docs(keys: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """For each occurrence of a key: in how many different documents the key occurs."""
    _, inverse = unique(keys, inverse=True)
    pairs = unique(inverse.astype(np.int64) * (int(doc.max()) + 1) + doc)[0]
    n_docs = np.bincount(pairs // (int(doc.max()) + 1), minlength=int(inverse.max()) + 1)
    return n_docs[inverse]


def _repetition(tokens: Tokens, window: int, n_windows: int) -> np.ndarray:
    """Per window: the share of word 5-grams that also occur in another document of the window."""
    keys, doc = ngram_keys(tokens, REPEAT_N)
    w = _positions(tokens, REPEAT_N) // window
    keep = w < n_windows
    keys, doc, w = keys[keep], doc[keep], w[keep]
    if not len(keys):
        return np.zeros(n_windows)
    shared = _in_docs(_mix(keys, w), doc) >= 2
    total = np.bincount(w, minlength=n_windows)
    hits = np.bincount(w, weights=shared, minlength=n_windows)
    return hits / np.maximum(total, 1)


# -- templates: openings and outline shapes --------------------------------------------------------

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")
LIST_ITEM = re.compile(r"^\s*([-*+\u2022]|\d{1,3}[.)])\s+")
CODE = re.compile(r"^(\s{4,}|\t)\S|^\s*```")
WORDS = re.compile(r"\w+")
OPENING_WORDS = 5
OUTLINE_LENGTH = 12


def opening(text: str) -> str:
    """The first words of the first sentence-like line (8+ words): titles and headings differ
    from page to page even when the body follows one template, so they are skipped."""
    for line in text.splitlines():
        if HEADING.match(line):
            continue
        words = _first_words(line, 8)
        if len(words) >= 8:
            return " ".join(words[:OPENING_WORDS])
    return ""


def _first_words(line: str, n: int) -> list[str]:
    """The first ``n`` words of the lower-cased line: a paragraph is not read to its end."""
    return [m.group() for m in islice(WORDS.finditer(line.lower()), n)]


def outline(text: str) -> str:
    """The page's shape: headings (with their first two words), paragraphs, lists and code, each
    run of the same kind written once, e.g. ``# introduction | P | # key ideas | L | P``."""
    shape: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = HEADING.match(line)
        if m:
            part = "# " + " ".join(_first_words(m.group(1), 2))
        elif CODE.match(line):
            part = "C"
        elif LIST_ITEM.match(line):
            part = "L"
        elif line.rstrip()[-1:] not in ".:;,!?" and len(words := _first_words(line, 9)) <= 8:
            part = "# " + " ".join(words[:2])
        else:
            part = "P"
        if not shape or shape[-1] != part:
            shape.append(part)
        if len(shape) >= OUTLINE_LENGTH:
            break
    return " | ".join(shape) if len(shape) >= 3 else ""  # one paragraph or two: no shape


def repeated_share(labels: Sequence[str], blocks: np.ndarray) -> np.ndarray:
    """Per block: the share of its documents whose label (opening, outline) another document of
    the same block shares. Empty labels never count as shared."""
    n_blocks = int(blocks.max()) + 1 if len(blocks) else 0
    if n_blocks == 0:
        return np.zeros(0)
    index: dict[str, int] = {}
    ids = np.asarray([index.setdefault(s, len(index)) if s else -1 for s in labels])
    key = blocks * (len(index) + 1) + ids + 1
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    shared = (counts[inverse] >= 2) & (ids >= 0)
    sizes = np.bincount(blocks, minlength=n_blocks)
    return np.bincount(blocks, weights=shared, minlength=n_blocks) / np.maximum(sizes, 1)


def top_labels(
    labels: Sequence[str], doc_ids: Sequence[int], k: int = 5, examples: int = 5
) -> list[dict[str, object]]:
    """The ``k`` most frequent non-empty labels with their count, share and example documents."""
    counts = Counter(s for s in labels if s)
    out: list[dict[str, object]] = []
    n = max(len(labels), 1)
    for text, count in counts.most_common(k):
        if count < 2:
            break
        docs = [d for d, s in zip(doc_ids, labels, strict=True) if s == text][:examples]
        out.append({"text": text, "count": count, "share": count / n, "examples": docs})
    return out


# -- a page's own words ----------------------------------------------------------------------------

SHARED_SHARE = 0.05  # a 5-gram in at least this share of a block's documents is template text
SHARED_MIN_DOCS = 3


def shared_spans(tokens: Tokens) -> np.ndarray:
    """Per token: True when it lies in a word 5-gram that many documents of ``tokens`` share
    (at least 3 of them and 5 %): the text of a template, not of the page."""
    covered = np.zeros(len(tokens.ids), dtype=bool)
    keys, doc = ngram_keys(tokens, REPEAT_N)
    if not len(keys):
        return covered
    starts = _positions(tokens, REPEAT_N)
    need = max(SHARED_MIN_DOCS, int(np.ceil(SHARED_SHARE * len(tokens))))
    shared = _in_docs(keys, doc) >= need
    for k in range(REPEAT_N):
        covered[starts[shared] + k] = True
    return covered
