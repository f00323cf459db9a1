"""What segmentation produces: the blocks of a page, each judged signal or boilerplate."""

from __future__ import annotations

from dataclasses import dataclass, field

SIGNAL = "signal"
BOILERPLATE = "boilerplate"


class SegmentError(ValueError):
    """A page that cannot be segmented (not HTML, nested too deep, ...); the message says why."""


@dataclass(slots=True)
class Block:
    """One block of a page: a run of text under one block-level element.

    ``locator`` is an XPath to the element in the parsed page, stable for the same HTML, so a
    curator's correction can be stored against it. ``features`` are the named values the model
    saw, shown to the curator as the reason for the label.
    """

    text: str
    locator: str
    label: str
    confidence: float
    tag: str = ""
    features: dict[str, float] = field(default_factory=dict)

    @property
    def is_signal(self) -> bool:
        return self.label == SIGNAL

    @property
    def n_words(self) -> int:
        return len(self.text.split())


def join_main_text(blocks: list[Block]) -> str:
    """The main text of a page: its signal blocks in document order, one paragraph each."""
    return "\n\n".join(b.text for b in blocks if b.is_signal)


def signal_share(blocks: list[Block]) -> tuple[int, int]:
    """(signal words, all words) over the blocks."""
    total = signal = 0
    for b in blocks:
        n = b.n_words
        total += n
        if b.is_signal:
            signal += n
    return signal, total
