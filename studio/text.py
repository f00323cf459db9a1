"""Characters that would hide or reorder text a curator reads back: control characters,
zero-width marks and text-direction overrides (a right-to-left override shows
'evil\\u202etxt.exe' as 'evilexe.txt')."""

from __future__ import annotations

import re

INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` as one readable line: every invisible character shown as its escape (a newline
    as ``\\n``, so it cannot hide the rest of a name)."""
    return INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
