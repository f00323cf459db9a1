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
    # where the block sits, for the layout of the main text (see :func:`join_texts`)
    place: Hashable | None = None

    @property
    def is_signal(self) -> bool:
        return self.label == SIGNAL

    @property
    def n_words(self) -> int:
        return len(self.text.split())


# a list item's place (see :func:`join_texts`)
ITEM = "li"
CELL_TAGS = frozenset(("td", "th"))
# characters that break a line, and those that are no text (they read as a space)
_LINE_BREAKS = re.compile("\r\n?|[\x85\u2028\u2029]")
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def preformatted(raw: str) -> str:
    """A ``<pre>`` block's text as laid out (a program's indentation and lines are its
    meaning): line breaks made ``\n``, control characters spaces, spaces at the ends of lines
    and blank lines around the text dropped, everything else kept."""
    text = _NOT_TEXT.sub(" ", _LINE_BREAKS.sub("\n", raw))
    return "\n".join(line.rstrip(" \t\u00a0") for line in text.split("\n")).strip("\n")


def join_texts(texts: Iterable[str], places: Iterable[Hashable | None]) -> str:
    """Blocks one paragraph each, except list items and table cells: each item on a line of its
    own after ``- ``, and the cells of one table row on one line, `` | `` between them (each row
    of a table on its own line). ``places`` says where each block sits: :data:`ITEM` for a list
    item, ``(table, row)`` for a cell, None for any other block."""
    out: list[str] = []
    last: Hashable | None = None
    for text, place in zip(texts, places, strict=True):
        if out:
            out.append(_separator(last, place))
        out.append("- " + text if place == ITEM else text)
        last = place
    return "".join(out)


def _separator(last: Hashable | None, place: Hashable | None) -> str:
    if last == ITEM and place == ITEM:
        return "\n"
    if isinstance(last, tuple) and isinstance(place, tuple) and last[0] == place[0]:
        return " | " if last == place else "\n"  # a row's next cell, or the table's next row
    return "\n\n"


def join_main_text(blocks: list[Block]) -> str:
    """The main text of a page: its signal blocks in document order (see :func:`join_texts`)."""
    kept = [b for b in blocks if b.is_signal]
    return join_texts((b.text for b in kept), (b.place for b in kept))


def signal_share(blocks: list[Block]) -> tuple[int, int]:
    """(signal words, all words) over the blocks."""
    total = signal = 0
    for b in blocks:
        n = b.n_words
        total += n
        if b.is_signal:
            signal += n
    return signal, total
