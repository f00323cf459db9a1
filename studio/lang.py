"""Which language a text is in, with py3langid's model (shipped inside the package, offline).

Codes are ISO 639-1 where one exists; the model also knows a few languages that only have a
three-letter ISO 639-3 code (``yue``, ``arz``...), and ``zxx`` ("no linguistic content") for
text that is all numbers or symbols.
"""

from __future__ import annotations

import functools

UNDETERMINED = ("und", 0.0)
# fewer letters than this say little about the language; py3langid still answers, but noise
MIN_LETTERS = 20
# a few thousand characters identify a language as well as a whole book, and cost a fraction
MAX_CHARS = 4000


@functools.cache
def _identifier():  # -> py3langid.langid.LanguageIdentifier
    # imported here: loading the model takes ~0.3 s, and GUI start-up should not pay it
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def known_languages() -> frozenset[str]:
    """Every code :func:`detect_language` can answer (``und`` included)."""
    return frozenset(_identifier().nb_classes) | {UNDETERMINED[0]}


def detect_language(text: str) -> tuple[str, float]:
    """ISO code and probability (0..1) of the text's language; ``("und", 0.0)`` if too short."""
    sample = text[:MAX_CHARS]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return UNDETERMINED
    code, probability = _identifier().classify(sample)
    return code, float(probability)
