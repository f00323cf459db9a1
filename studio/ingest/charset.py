"""Bytes to text the way a browser would for HTML, and strictly for plain text."""

from __future__ import annotations

import codecs
import html
import re

from studio.ingest.base import IngestError
from studio.text import broken_utf8, plural

META_SCAN_BYTES = 4096
META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
TITLE_SCAN_CHARS = 65536
MARKDOWN_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

BOM_CODECS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# browsers decode these labels as windows-1252 (WHATWG Encoding), a superset that keeps the
# curly quotes and dashes pages labelled latin-1 really contain
WINDOWS_1252_ALIASES = {"latin_1", "ascii", "iso8859_1", "cp1252"}


def decode_text(data: bytes) -> str:
    """Plain text must be UTF-8 (or carry a BOM); anything else names the first bad byte."""
    for bom, codec in BOM_CODECS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise IngestError(f"invalid {codec} at byte {exc.start:,}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(f"invalid UTF-8 at byte {exc.start:,}") from exc


def decode_html(data: bytes, content_type: str | None = None) -> tuple[str, list[str]]:
    """Decode a page: BOM, then the HTTP charset, then ``<meta>``, then UTF-8, then windows-1252.

    Returns the text and warnings worth showing next to the document.
    """
    for bom, codec in BOM_CODECS:
        if data.startswith(bom):
            return data.decode(codec, errors="replace"), []
    warnings: list[str] = []
    declared = [
        (header_charset(content_type), "the HTTP Content-Type header"),
        (meta_charset(data), "a <meta> tag"),
    ]
    for label, origin in declared:
        if label is None:
            continue
        codec = _codec_for(label)
        if codec is None:
            warnings.append(f"unknown charset {label!r} declared in {origin}; ignored")
            continue
        return _decode_declared(data, codec, label, warnings), warnings
    try:
        return data.decode("utf-8"), warnings
    except UnicodeDecodeError:
        utf8 = broken_utf8(data)
    if utf8 is not None:
        text, bad = utf8
        warnings.append(f"{plural(bad, 'byte sequence')} not valid UTF-8, replaced by U+FFFD")
        return text, warnings
    warnings.append("no charset declared and not valid UTF-8; decoded as windows-1252")
    return data.decode("cp1252", errors="replace"), warnings


def replace_lone_surrogates(text: str) -> tuple[str, int]:
    """The text with each lone surrogate (which JSON escapes can hold and UTF-8 cannot) as
    U+FFFD, and how many there were."""
    return LONE_SURROGATE.subn("\ufffd", text)


def header_charset(content_type: str | None) -> str | None:
    match = HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def meta_charset(data: bytes) -> str | None:
    match = META_CHARSET.search(data, 0, META_SCAN_BYTES)
    return match.group(1).decode("ascii") if match else None


def html_title(text: str) -> str | None:
    match = TITLE.search(text, 0, TITLE_SCAN_CHARS)
    if not match:
        return None
    title = " ".join(html.unescape(match.group(1)).split())
    return title or None


def markdown_title(text: str) -> str | None:
    match = MARKDOWN_TITLE.search(text, 0, TITLE_SCAN_CHARS)
    return match.group(1) if match else None


def _codec_for(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    if name in WINDOWS_1252_ALIASES:
        return "cp1252"
    if name.startswith("utf_16"):
        return "utf-8"  # a page cannot declare UTF-16 in ASCII-readable bytes: browsers ignore it
    return name


def _decode_declared(data: bytes, codec: str, label: str, warnings: list[str]) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        warnings.append(
            f"bytes not valid in the declared charset {label!r} (first at byte {exc.start:,}) "
            "were replaced"
        )
        return data.decode(codec, errors="replace")
