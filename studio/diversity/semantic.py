"""Semantic diversity of unit-length document embeddings, measured block by block.

Vendi score (Friedman & Dieng 2023) in its dual form: the eigenvalues of ``X^T X / n`` (d x d)
are those of the n x n similarity matrix ``X X^T / n``, so the cost is linear in the number of
documents. Precision and recall in the sense of Kynkäänniemi et al. (2019): a set's page is
"inside" the real pages when it falls in the k-nearest-neighbour ball of some real page, and a
real page is covered when it falls in the ball of some page of the set.

Topics are k-means clusters of the real pages' embeddings (cosine, seeded): a set's cluster
entropy says how evenly it spreads over the real topics, its cluster shares which it lost.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.classify.features import STOPWORDS
from studio.diversity.tokens import Tokens

NEIGHBOURS = 3  # k of the k-NN balls for precision and recall, as Kynkäänniemi et al. use


def vendi(X: np.ndarray) -> float:
    """The effective number of distinct documents in ``X`` (rows of unit length)."""
    n = len(X)
    if n == 0:
        return 0.0
    X = X.astype(np.float64)
    # X^T X (d x d) and X X^T (n x n) share their non-zero eigenvalues: take the smaller one
    eig = np.linalg.eigvalsh(X.T @ X / n if n > X.shape[1] else X @ X.T / n)
    eig = eig[eig > 1e-12]
    eig = eig / eig.sum()
    return float(np.exp(-(eig * np.log(eig)).sum()))


def mean_cosine_distance(X: np.ndarray) -> float:
    """Mean cosine distance over all pairs of rows, from the sum of rows alone (linear)."""
    n = len(X)
    if n < 2:
        return 0.0
    s = X.astype(np.float64).sum(axis=0)
    sq = float((X.astype(np.float64) ** 2).sum())
    mean_sim = (float(s @ s) - sq) / (n * (n - 1))
    return 1.0 - mean_sim


def nearest_similarity(X: np.ndarray) -> np.ndarray:
    """Per row: the cosine similarity of its nearest other row."""
    if len(X) < 2:
        return np.full(len(X), np.nan)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    return S.max(axis=1)


def _radii(X: np.ndarray, k: int) -> np.ndarray:
    """The cosine distance from each row to its k-th nearest other row."""
    D = 1.0 - X @ X.T
    np.fill_diagonal(D, np.inf)
    k = min(k, len(X) - 1)
    return np.partition(D, k - 1, axis=1)[:, k - 1]


def precision_recall(
    real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS
) -> tuple[float, float]:
    """(share of ``fake`` inside the real manifold, share of ``real`` the fake one covers)."""
    if len(real) <= k or len(fake) <= k:
        return float("nan"), float("nan")
    D = 1.0 - fake @ real.T  # fake x real
    precision = (_radii(real, k)[None, :] >= D).any(axis=1).mean()
    recall = (_radii(fake, k)[:, None] >= D).any(axis=0).mean()
    return float(precision), float(recall)


# -- topics ----------------------------------------------------------------------------------------


def _sums_by_label(columns: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Row sums per label (k x d) of the rows whose ``columns`` (d x n) are given. bincount
    adds in row order, as ``np.add.at`` does (the same sums to the last bit), 10x faster."""
    return np.stack([np.bincount(labels, weights=c, minlength=k) for c in columns], axis=1)


class Topics:
    """k-means over the real pages' embeddings; clusters named by their most distinctive words."""

    def __init__(self, centroids: np.ndarray, names: list[str], real: np.ndarray) -> None:
        self.centroids = centroids
        self.names = names
        self.real = real  # how many of the real pages fall in each topic

    @property
    def k(self) -> int:
        return len(self.centroids)

    @classmethod
    def fit(cls, X: np.ndarray, k: int, seed: int = 0) -> Topics:
        k = max(1, min(k, len(X) // 5 or 1))
        rng = np.random.default_rng(seed)
        C = X[rng.choice(len(X), size=k, replace=False)].astype(np.float64)
        columns = np.ascontiguousarray(X.T, dtype=np.float64)
        for _ in range(30):  # spherical k-means: converges in a few steps on these data
            labels = np.argmax(X @ C.T, axis=1)
            moved = _sums_by_label(columns, labels, k)
            empty = np.linalg.norm(moved, axis=1) < 1e-9
            moved[empty] = C[empty]
            moved /= np.linalg.norm(moved, axis=1, keepdims=True)
            if np.allclose(moved, C):
                break
            C = moved
        self = cls(C.astype(np.float32), [""] * k, np.zeros(k))
        self.real = np.bincount(self.assign(X), minlength=k).astype(np.float64)
        return self

    def assign(self, X: np.ndarray) -> np.ndarray:
        if not len(X):
            return np.zeros(0, dtype=np.int64)
        return np.argmax(X @ self.centroids.T, axis=1)

    def shares(self, labels: np.ndarray) -> np.ndarray:
        counts = np.bincount(labels, minlength=self.k).astype(np.float64)
        return counts / max(counts.sum(), 1.0)

    def entropy(self, labels: np.ndarray) -> float:
        """Entropy of the cluster shares as a fraction of log k (1: even over every topic)."""
        p = self.shares(labels)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum() / np.log(self.k)) if self.k > 1 else 0.0

    def coverage(self, labels: np.ndarray, leave_out: np.ndarray | None = None) -> float:
        """How much of the real pages' topic mix the documents match: the sum over topics of
        the smaller of the two shares (1: the same mix, 0: no topic in common).

        ``leave_out``: topics of real pages to take out of the real mix first, those of the
        documents measured themselves; a block of real pages compared with a mix that holds it
        would match better than any fresh sample does.
        """
        real = self.real.copy()
        if leave_out is not None and len(leave_out):
            real -= np.bincount(leave_out, minlength=self.k)
        real = np.maximum(real, 0)
        real /= max(real.sum(), 1.0)
        return float(np.minimum(self.shares(labels), real).sum())

    def name(self, tokens: Tokens, labels: np.ndarray, words: Sequence[str], top: int = 4) -> None:
        """Name each cluster by the words most over-represented in its pages (vs all pages)."""
        doc = tokens.doc_index()
        overall = np.bincount(tokens.ids, minlength=len(words)).astype(np.float64) + 1.0
        overall /= overall.sum()
        for c in range(self.k):
            mask = labels[doc] == c
            if not mask.any():
                continue
            counts = np.bincount(tokens.ids[mask], minlength=len(words)).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                score = counts * np.log(counts / counts.sum() / overall)
            score[counts < 3] = -np.inf
            names = []
            for w in np.argsort(-score)[: 20 * top]:
                word = words[w]
                usable = len(word) > 2 and word.isalpha() and word not in STOPWORDS
                if usable and np.isfinite(score[w]):
                    names.append(word)
            self.names[c] = ", ".join(names[:top])
