"""The reference model of the real pages: an interpolated Kneser-Ney word trigram model in numpy.

The tails of a set (how many of its pages are surprising, how many rare words it uses) are read
against this model. It is fitted on the project's real (non-synthetic) pages, except one page in
four (``doc_id % HOLDOUT == 0``): those are the real baseline, scored by a model that never saw
them, as a new synthetic page is. A page the model saw would look less surprising than it is.

Counts live in sorted int64 key arrays; a lookup is ``np.searchsorted``, so scoring a million
words is a handful of vectorised passes. The model is saved in the project as ``.npz`` plus the
vocabulary as JSON (no pickle) and refitted when the real pages change.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from studio.diversity.tokens import Tokens, Vocabulary, unique

HOLDOUT = 4  # pages with doc_id % HOLDOUT == 0 are held out of fitting
DISCOUNT = 0.75  # the usual Kneser-Ney discount
MIN_COUNT = 2  # rarer words become <unk>, so the model has seen unknown words
RARE_COUNT = 3  # a word is rare when the real pages use it at most this often (or never)
MAX_VOCAB = 1_000_000  # keeps vocab**3 inside int64
BOS, UNK, EOS = 0, 1, 2
VERSION = "1"


def held_out(doc_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(doc_ids, dtype=np.int64) % HOLDOUT == 0


def fingerprint(doc_ids: Sequence[int]) -> str:
    """Names the set of pages a model was fitted on: a changed real corpus means a refit."""
    ids = np.sort(np.asarray(doc_ids, dtype=np.int64))
    return hashlib.blake2b(ids.tobytes(), digest_size=12).hexdigest()


def _lookup(keys: np.ndarray, query: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """For each of ``values``: values[key] for each query key, 0 where the key is absent.
    ``query`` is sorted, so the binary searches walk ``keys`` in order (4x faster than random
    probes at this size)."""
    if not len(keys):
        return [np.zeros(len(query)) for _ in values]
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    found = keys[at] == query
    return [np.where(found, v[at], 0) for v in values]


def _grouped(keys: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Sorted unique keys with their count (or summed weight) and number of entries."""
    uniq, inverse, types = unique(keys, inverse=True, counts=True)
    total = np.bincount(inverse, weights=weights) if weights is not None else types
    return uniq, np.asarray(total, dtype=np.float64), types.astype(np.float64)


# the arrays a fitted model holds besides the word counts (see _kneser_ney)
ARRAYS = ("k3", "c3", "ctx", "ctx_total", "ctx_types", "k2", "n2", "mid_total", "mid_types", "p1")


class ReferenceModel:
    """Interpolated Kneser-Ney trigram probabilities of words, given the real pages."""

    def __init__(self, words: list[str], counts: np.ndarray, arrays: dict[str, np.ndarray]):
        self.words = words
        self.vocab = {w: i for i, w in enumerate(words)}
        self.counts = counts  # training count of every word id (unk and markers included)
        self.a = arrays
        self.fingerprint = ""
        self.documents = 0

    @property
    def size(self) -> int:
        return len(self.words)

    # -- fitting --------------------------------------------------------------------------------

    @classmethod
    def fit(cls, texts: Sequence[str]) -> ReferenceModel:
        raw = Vocabulary()
        tokens = raw.encode(texts)
        freq = np.bincount(tokens.ids, minlength=len(raw)) if len(tokens.ids) else np.zeros(0)
        order = np.argsort(-freq, kind="stable")
        kept = order[freq[order] >= MIN_COUNT][: MAX_VOCAB - 3]
        raw_words = raw.words()
        words = ["<s>", "<unk>", "</s>", *(raw_words[i] for i in kept)]
        remap = np.full(max(len(raw), 1), UNK, dtype=np.int64)
        remap[kept] = np.arange(3, 3 + len(kept))
        ids = _with_markers(Tokens(remap[tokens.ids], tokens.offsets))
        counts = np.bincount(ids, minlength=len(words)).astype(np.float64)
        return cls(words, counts, _kneser_ney(ids, len(words)))

    # -- scoring --------------------------------------------------------------------------------

    def map_ids(self, vocab_words: Sequence[str]) -> np.ndarray:
        """For a :class:`Vocabulary`'s words (in id order), this model's id of each."""
        get = self.vocab.get
        n = len(vocab_words)
        return np.fromiter((get(w, UNK) for w in vocab_words), dtype=np.int64, count=n)

    def rare(self, vocab_words: Sequence[str]) -> np.ndarray:
        """For a vocabulary's words: True where the real pages use the word rarely or never."""
        mapped = self.map_ids(vocab_words)
        return (mapped == UNK) | (self.counts[mapped] <= RARE_COUNT)

    def token_log_probs(self, tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
        """(ln P of every word, aligned with ``tokens.ids``; ln P of each document's end).
        ``tokens`` must hold this model's ids (see :meth:`map_ids`)."""
        if not len(tokens):
            return np.zeros(0), np.zeros(0)
        ids = _with_markers(tokens)
        logp = np.log(self.probabilities(ids))
        # each document is <s> <s> words </s>: the <s> are context, never predicted
        sizes = tokens.lengths() + 3
        ends = np.cumsum(sizes) - 1
        is_word = np.ones(len(ids), dtype=bool)
        is_word[ends] = is_word[ends - sizes + 1] = is_word[ends - sizes + 2] = False
        return logp[is_word], logp[ends]

    def log_perplexity(self, tokens: Tokens) -> np.ndarray:
        """Per document, the mean negative log-probability of its words and end (nats)."""
        words, ends = self.token_log_probs(tokens)
        if not len(ends):
            return ends
        sums = np.bincount(tokens.doc_index(), weights=words, minlength=len(tokens))
        return -(sums + ends) / (tokens.lengths() + 1)

    def probabilities(self, ids: np.ndarray) -> np.ndarray:
        """P(w_i | w_i-2, w_i-1) at every position (the first two are padding)."""
        a, D = self.a, DISCOUNT
        u = np.concatenate([[BOS, BOS], ids[:-2]])
        v = np.concatenate([[BOS], ids[:-1]])
        w = ids
        p1 = a["p1"][w]
        mid_total, mid_types = a["mid_total"][v], a["mid_types"][v]
        n2, c_ctx, t_ctx, c3 = self._counts(u, v, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            p2 = np.where(
                mid_total > 0,
                (np.maximum(n2 - D, 0) + D * mid_types * p1) / np.maximum(mid_total, 1),
                p1,
            )
            p3 = np.where(
                c_ctx > 0, (np.maximum(c3 - D, 0) + D * t_ctx * p2) / np.maximum(c_ctx, 1), p2
            )
        return np.clip(p3, 1e-12, 1.0)

    def _counts(self, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
        """At every position: the continuation count of the bigram (v, w), the total count and
        number of followers of the context (u, v), and the count of the trigram (u, v, w).

        One sort serves every lookup: sorting the trigram keys sorts their contexts (a context is
        its trigram's key // V), and the bigram (v, w) at position i is the context at position
        i + 1, so one extra key whose context is the last bigram makes every bigram a context.
        """
        a, V, n = self.a, self.size, len(w)
        if not n:
            return tuple(np.zeros(0) for _ in range(4))
        trigram = np.empty(n + 1, dtype=np.int64)
        trigram[:n] = (u * V + v) * V + w
        trigram[n] = (v[-1] * V + w[-1]) * V
        order = np.argsort(trigram)
        keys = trigram[order]
        context = keys // V
        own = order != n  # the keys of positions 0..n-1 (not the extra one)
        at = order[own]
        c3, c_ctx, t_ctx, n2 = (np.zeros(n) for _ in range(4))
        (c3[at],) = _lookup(a["k3"], keys[own], a["c3"])
        c_ctx[at], t_ctx[at] = _lookup(a["ctx"], context[own], a["ctx_total"], a["ctx_types"])
        nxt = order != 0  # position i + 1's context is position i's bigram
        (n2[order[nxt] - 1],) = _lookup(a["k2"], context[nxt], a["n2"])
        return n2, c_ctx, t_ctx, c3

    # -- storing --------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # each file whole or not at all: a run killed mid-save leaves the earlier model
        arrays = folder / "reference.npz.tmp"
        with arrays.open("wb") as f:
            np.savez_compressed(f, counts=self.counts, **self.a)
        arrays.replace(folder / "reference.npz")
        meta = {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "documents": self.documents,
            "words": self.words,
        }
        tmp = folder / "reference.json.tmp"
        tmp.write_text(json.dumps(meta), "utf-8")
        tmp.replace(folder / "reference.json")

    @classmethod
    def load(cls, folder: Path) -> ReferenceModel | None:
        """The saved model, or None when there is none, it is from another version, or its
        files are damaged (it is a cache: the caller fits it again)."""
        try:
            meta = json.loads((folder / "reference.json").read_text("utf-8"))
            if not isinstance(meta, dict) or meta.get("version") != VERSION:
                return None
            with np.load(folder / "reference.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            counts = arrays.pop("counts")
            if set(arrays) != set(ARRAYS):
                return None
            self = cls(meta["words"], counts, arrays)
            self.fingerprint, self.documents = meta["fingerprint"], meta["documents"]
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error):
            return None
        return self


def _with_markers(tokens: Tokens) -> np.ndarray:
    """Each document as <s> <s> words </s>, all documents one after the other."""
    n = len(tokens)
    sizes = tokens.lengths() + 3
    out = np.empty(int(sizes.sum()), dtype=np.int64)
    word = np.ones(len(out), dtype=bool)
    if n:
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(sizes[:-1], out=starts[1:])
        word[starts] = word[starts + 1] = word[starts + sizes - 1] = False
        out[starts] = out[starts + 1] = BOS
        out[starts + sizes - 1] = EOS
    out[word] = tokens.ids
    return out


def _kneser_ney(ids: np.ndarray, V: int) -> dict[str, np.ndarray]:
    """The count tables of an interpolated Kneser-Ney trigram model over marked documents."""
    D = DISCOUNT
    u, v, w = ids[:-2], ids[1:-1], ids[2:]
    predicted = w != BOS  # a trigram predicting <s> crosses from one document into the next
    u, v, w = u[predicted], v[predicted], w[predicted]
    k3, c3, _ = _grouped((u * V + v) * V + w)
    # the trigram's context (u, v): its total count and how many different words follow it
    ctx, ctx_total, ctx_types = _grouped(k3 // V, c3)
    # continuation counts: in how many different contexts u does the bigram (v, w) appear
    k2, n2, _ = _grouped(k3 % (V * V))
    k2_v = k2 // V
    mid_total = np.bincount(k2_v, weights=n2, minlength=V)
    mid_types = np.bincount(k2_v, minlength=V).astype(np.float64)
    # unigram: in how many different contexts v does w appear, discounted towards uniform
    n1 = np.bincount(k2 % V, minlength=V).astype(np.float64)
    total = max(n1.sum(), 1.0)
    p1 = (np.maximum(n1 - D, 0) + D * np.count_nonzero(n1) / V) / total
    p1[BOS] = 0.0
    p1 /= p1.sum()
    return {  # the names in ARRAYS
        "k3": k3,
        "c3": c3,
        "ctx": ctx,
        "ctx_total": ctx_total,
        "ctx_types": ctx_types,
        "k2": k2,
        "n2": n2,
        "mid_total": mid_total,
        "mid_types": mid_types,
        "p1": p1,
    }
