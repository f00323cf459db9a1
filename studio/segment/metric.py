"""The WCXB metric: bag-of-words F1 of extracted text against the ground truth, per page."""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lowercased word tokens (Unicode ``\\w+`` runs): the bag the metric compares."""
    return _WORD.findall(text.lower())


def word_prf(extracted: str, truth: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the extracted words against the true words, as multisets.

    An empty extraction of an empty truth is perfect; either one empty alone scores 0.
    """
    got, want = Counter(tokens(extracted)), Counter(tokens(truth))
    if not got and not want:
        return 1.0, 1.0, 1.0
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    p = common / sum(got.values())
    r = common / sum(want.values())
    return p, r, 2 * p * r / (p + r)
