"""From block probabilities to labels: the set of blocks with the best expected page F1.

A fixed threshold treats every page alike, yet a page whose blocks are all doubtful (a product
listing) and a page with one clear article want different cut-offs. Given calibrated P(signal)
``p`` and word counts ``w``, taking the blocks in decreasing ``p`` and keeping the prefix that
maximises the expected word F1

    E[F1](k) ~ 2 * sum(p*w over the k kept) / (sum(w over the k kept) + sum(p*w over all))

picks the cut-off per page. On the domain-grouped CV this gained ~0.004 F1 over the best fixed
threshold (0.863 vs 0.859), most on collection and listing pages.

Keeping nothing is one of the choices: a page may have no main content at all (a shell that
builds its content with JavaScript; its static HTML holds a menu, a cookie notice, a product
title), and an empty main text of such a page is exactly right. Its expected F1 is the chance
that no block is signal, prod(1 - p) with the blocks taken as independent; when that beats the
best prefix, the page gets no signal. On the domain-grouped CV this moved 5 of the 1,497 pages
(4 with no ground-truth text, now right; a forum thread whose stored HTML lacks its posts, F1
0.003 -> 0) and gained 0.0027 F1; it costs nothing at run time.
"""

from __future__ import annotations

import numpy as np

# blocks this sure are kept whatever the prefix says (guards pages with one huge doubtful block)
ALWAYS_KEEP = 0.9


def choose_signal(p: np.ndarray, words: np.ndarray) -> tuple[np.ndarray, float]:
    """Which blocks are signal, and the page's effective threshold (lowest kept probability)."""
    if len(p) == 0:
        return np.zeros(0, dtype=bool), 0.5
    w = np.maximum(words, 1.0)
    order = np.argsort(-p, kind="stable")
    pw = (p * w)[order]
    expected = 2.0 * np.cumsum(pw) / (np.cumsum(w[order]) + pw.sum())
    k = int(np.argmax(expected)) + 1
    no_signal = float(np.exp(np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12)).sum()))
    keep = np.zeros(len(p), dtype=bool)
    if no_signal <= expected[k - 1]:
        keep[order[:k]] = True
    keep |= p >= ALWAYS_KEEP
    if keep.any():
        return keep, float(p[keep].min())
    # nothing kept: the cut-off sits just above the likeliest block, which is on the edge
    return keep, min(float(p.max()) + 1e-6, 1.0)


def label_confidence(p: np.ndarray, threshold: float) -> np.ndarray:
    """P(signal) re-centred so that the page's threshold sits at 0.5 (logit shift).

    This is what a curator sees as confidence: how far a block lies from this page's cut-off,
    on the model's probability scale; it is >= 0.5 exactly for the blocks kept as signal.
    """
    eps = 1e-6
    t = min(max(threshold, eps), 1 - eps)
    q = np.clip(p, eps, 1 - eps)
    z = np.log(q / (1 - q)) - np.log(t / (1 - t))
    return 1.0 / (1.0 + np.exp(-z))
