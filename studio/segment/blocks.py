"""What segmentation produces: the blocks of a page, each judged signal or boilerplate."""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable
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


# where a block sits, for the layout of the main text: a list item, or a cell of a table row
ITEM = "li"
CELL_TAGS = frozenset(("td", "th"))
_LINE_END_SPACE = re.compile(r"[ \t\u00a0]+$", re.MULTILINE)


def preformatted(raw: str) -> str:
    """A ``<pre>`` block's text as laid out (a program's indentation and lines are its
    meaning): line ends made ``\n``, spaces at the ends of lines and blank lines around the
    text dropped, everything else kept."""
    text = _LINE_END_SPACE.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    return text.strip("\n")


def join_texts(texts: Iterable[str], places: Iterable[Hashable | None]) -> str:
    """Blocks one paragraph each, except list items and table cells: each item on a line of its
    own after ``- ``, and the cells of one table row on one line, `` | `` between them (each row
    on its own line). ``places`` says where each block sits: :data:`ITEM` for a list item, the
    id of its table row for a cell (never equal to ITEM), None for any other block."""
    out: list[str] = []
    last: Hashable | None = None
    for text, place in zip(texts, places, strict=True):
        if out:
            if place is None or last is None or (ITEM in (place, last) and place != last):
                out.append("\n\n")
            else:
                out.append(" | " if place == last and place != ITEM else "\n")
        out.append("- " + text if place == ITEM else text)
        last = place
    return "".join(out)


def place(tag: str, parent: Hashable) -> Hashable | None:
    """Where a block of element ``tag`` sits (see :func:`join_texts`); ``parent`` names its
    parent element, which for a cell is its table row."""
    return ITEM if tag == ITEM else parent if tag in CELL_TAGS else None


def join_main_text(blocks: list[Block]) -> str:
    """The main text of a page: its signal blocks in document order (see :func:`join_texts`)."""
    kept = [b for b in blocks if b.is_signal]
    return join_texts(
        (b.text for b in kept), (place(b.tag, b.locator.rsplit("/", 1)[0]) for b in kept)
    )


def signal_share(blocks: list[Block]) -> tuple[int, int]:
    """(signal words, all words) over the blocks."""
    total = signal = 0
    for b in blocks:
        n = b.n_words
        total += n
        if b.is_signal:
            signal += n
    return signal, total
