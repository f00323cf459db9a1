"""What readers yield, and how they say something went wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HTML = "html"
TEXT = "text"


class IngestError(Exception):
    """A whole file (or archive member) could not be read; the message is shown to the curator."""


@dataclass(slots=True)
class RawDocument:
    """One document as read from a file, before it is stored.

    ``locator`` says where inside the file it came from: any of ``member`` (archive member
    path), ``offset`` (WARC/ARC record byte offset), ``record_id`` (WARC-Record-ID), ``line``
    (JSONL line, 1-based), ``row`` (Parquet row, 0-based).
    """

    content: str
    kind: str  # HTML or TEXT
    url: str | None = None
    fetch_date: str | None = None
    title: str | None = None
    locator: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RecordError:
    """One record inside a file failed; the rest of the file goes on."""

    reason: str
    locator: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IngestOptions:
    """Knobs a curator can set for an import; the defaults suit ordinary web corpora."""

    # JSONL keys / Parquet columns tried in order; the first present wins
    text_fields: tuple[str, ...] = ("text", "content", "raw_content", "body")
    html_fields: tuple[str, ...] = ("html", "raw_html")
    url_fields: tuple[str, ...] = ("url", "uri", "link")
    title_fields: tuple[str, ...] = ("title",)
    date_fields: tuple[str, ...] = ("fetch_date", "date", "crawl_date", "timestamp")
    # a single document bigger than this is refused, not truncated
    max_document_bytes: int = 16 * 1024 * 1024
    # an archive member whose decompressed size passes this, or whose ratio to its compressed
    # size passes max_compression_ratio, is treated as a decompression bomb
    max_member_bytes: int = 256 * 1024 * 1024
    max_compression_ratio: float = 200.0
    # how deep archives may nest inside archives
    max_archive_depth: int = 3
