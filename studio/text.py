"""Text a curator reads back in a message: characters that would hide or reorder it (control
characters, zero-width marks and text-direction overrides: a right-to-left override shows
'evil\\u202etxt.exe' as 'evilexe.txt'), and values too long to quote whole."""

from __future__ import annotations

import re

INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` as one readable line: every invisible character shown as its escape (a newline
    as ``\\n``, so it cannot hide the rest of a name)."""
    return INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def abbreviated(text: str, limit: int) -> str:
    """``text`` whole when it is at most ``limit`` characters, else its start and its length
    (a pasted page quoted in an error message would bury the message)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
