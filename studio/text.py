"""Text a curator reads back in a message or a note: characters that would hide or reorder it
(control characters, zero-width marks and text-direction overrides: a right-to-left override shows
'evil\\u202etxt.exe' as 'evilexe.txt'), and values too long to quote whole."""

from __future__ import annotations

import re

INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# what a stored note loses: control characters but tab and newline, and the direction
# embeddings, overrides and isolates (zero-width joiners stay: scripts and emoji need them)
NOTE_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MAX_NOTE = 4000  # characters: a label's note is a reason, not a copy of the page


def visible(text: str) -> str:
    """``text`` as one readable line: every invisible character shown as its escape (a newline
    as ``\\n``, so it cannot hide the rest of a name)."""
    return INVISIBLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def abbreviated(text: str, limit: int) -> str:
    """``text`` whole when it is at most ``limit`` characters, else its start and its length
    (a pasted page quoted in an error message would bury the message)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def shown_path(path: object) -> str:
    """A path as a message quotes it: invisible characters escaped (a newline cannot split the
    message), a very long one cut short."""
    return visible(abbreviated(str(path), 300))


def plural(n: int, noun: str) -> str:
    """``1 label``, ``2 labels``, ``1,204 labels``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def os_error_text(exc: OSError) -> str:
    """A file-system error as a curator reads it, its reason and file ("Read-only file system:
    /data/proj/runs"), not Python's "[Errno 30] ..."."""
    if not exc.strerror:
        return str(exc) or type(exc).__name__
    return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror


def clean_note(text: str) -> str:
    """A label's note as it is stored: hidden and reordering characters removed, outer space
    trimmed (the length is the caller's to check or cut)."""
    return NOTE_HIDDEN.sub("", text).strip()


_ASCII = bytes(range(128))


def broken_utf8(data: bytes) -> tuple[str, int] | None:
    """A page that is not valid UTF-8 read as UTF-8 with a few broken sequences (each becomes
    U+FFFD; returned with their count), or None when it reads as a legacy single-byte page: in
    one of those almost no non-ASCII byte is part of a valid UTF-8 sequence, while one stray
    byte in a UTF-8 page must not turn its every 'é' into 'Ã©'."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    valid = len(data.translate(None, _ASCII)) - bad
    return (text, bad) if valid >= bad else None
