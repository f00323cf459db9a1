"""Training labels for blocks, derived from a page's ground-truth main text.

A block is signal when its words occur, in order, in the ground truth: for blocks of three
words or more, the share of its word trigrams found among the ground truth's trigrams; for
shorter blocks, whether the words occur as a phrase. Word order is what keeps a menu item such
as "Home" from counting as signal just because the article uses that word.

Each ground-truth trigram can be claimed as many times as it occurs there, in document order:
pages often carry a second copy of the text (a hidden preview, a print version, a quote), and
only one copy is the main content.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from studio.segment.metric import tokens

SIGNAL_SHARE = 0.5  # a block is labelled signal when at least this share of it matches


def match_share(texts: list[str], main_content: str) -> np.ndarray:
    """For each block, the share (0..1) of its text found in the ground truth."""
    truth = tokens(main_content)
    budget = Counter(zip(truth, truth[1:], truth[2:], strict=False))
    words_left = Counter(truth)
    phrase = " " + " ".join(truth) + " "
    out = np.zeros(len(texts))
    for k, text in enumerate(texts):
        words = tokens(text)
        if len(words) >= 3:
            grams = Counter(zip(words, words[1:], words[2:], strict=False))
            found = sum(min(c, budget[g]) for g, c in grams.items())
            out[k] = found / (len(words) - 2)
            if out[k] >= SIGNAL_SHARE:
                budget.subtract(grams)
                words_left.subtract(words)
        elif words:
            here = " " + " ".join(words) + " " in phrase
            out[k] = float(here and all(words_left[w] > 0 for w in words))
            if out[k] >= SIGNAL_SHARE:
                words_left.subtract(words)
    return out
