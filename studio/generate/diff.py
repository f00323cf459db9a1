"""Two versions of a page compared word by word, as escaped HTML a text browser shows (no
scripts, no links, no images: every character of a version is text)."""

from __future__ import annotations

import difflib
import html
import re

MAX_TOKENS = 60_000  # per side: past this, whole lines are compared (difflib is quadratic-ish)
_TOKENS = re.compile(r"\s+|[^\s]+")

INSERT_STYLE = "background:#d7f5dd;color:#0b5d1e;"
DELETE_STYLE = "background:#fbe0e0;color:#8a1c1c;text-decoration:line-through;"


def _tokens(text: str) -> list[str]:
    tokens = _TOKENS.findall(text)
    if len(tokens) > MAX_TOKENS:
        return text.splitlines(keepends=True)
    return tokens


def _span(style: str, text: str) -> str:
    return f'<span style="{style}">{_escape(text)}</span>'


def _escape(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def diff_html(old: str, new: str) -> str:
    """``new`` against ``old``: insertions green, deletions struck through in red."""
    a, b = _tokens(old), _tokens(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(_escape("".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            out.append(_span(DELETE_STYLE, "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            out.append(_span(INSERT_STYLE, "".join(b[j1:j2])))
    body = "".join(out)
    return f'<div style="font-family:monospace;white-space:pre-wrap;">{body}</div>'


def diff_stats(old: str, new: str) -> dict[str, int]:
    """Words (lines, for huge versions) kept, added and removed from ``old`` to ``new``."""
    a, b = old.split(), new.split()
    if max(len(a), len(b)) > MAX_TOKENS:
        a, b = old.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    kept = sum(size for _, _, size in matcher.get_matching_blocks())
    return {"kept": kept, "added": len(b) - kept, "removed": len(a) - kept}


def wrap_long_lines(text: str, width: int = 1000) -> str:
    """``text`` with lines longer than ``width`` broken every ``width`` characters, for display
    only: a text widget lays out one 200,000-character line in seconds, the same text in lines
    of a thousand in milliseconds."""
    if len(text) <= width or all(len(line) <= width for line in text.split("\n")):
        return text
    out = []
    for line in text.split("\n"):
        out += [line[i : i + width] for i in range(0, len(line), width)] or [""]
    return "\n".join(out)


def wrap_stream(piece: str, column: int, width: int = 1000) -> tuple[str, int]:
    """A streamed piece with line breaks added where its line would pass ``width``; returns the
    piece and the column the line ends at (for the next piece)."""
    out = []
    for i, part in enumerate(piece.split("\n")):
        if i:
            out.append("\n")
            column = 0
        while column + len(part) > width:
            room = width - column
            out += [part[:room], "\n"]
            part, column = part[room:], 0
        out.append(part)
        column += len(part)
    return "".join(out), column
