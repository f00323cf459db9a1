"""A structured record (JSON line, Parquet row) to a document, by IngestOptions' field names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.ingest.base import HTML, TEXT, IngestOptions, RawDocument
from studio.ingest.charset import html_title
from studio.ingest.streams import too_large_reason


class RecordProblem(ValueError):
    """Why one record gives no document; the caller says which line or row."""


def document_from_record(
    record: Mapping[str, Any], options: IngestOptions, locator: dict[str, Any]
) -> RawDocument:
    content, kind = _content(record, options)
    size = len(content.encode("utf-8", errors="surrogatepass"))
    if size > options.max_document_bytes:
        raise RecordProblem(too_large_reason(options.max_document_bytes, size))
    title = _first_text(record, options.title_fields)
    if title is None and kind == HTML:
        title = html_title(content)
    return RawDocument(
        content=content,
        kind=kind,
        url=_first_text(record, options.url_fields),
        fetch_date=_first_text(record, options.date_fields),
        title=title,
        locator=locator,
    )


def record_columns(names: list[str], options: IngestOptions) -> list[str]:
    """The columns worth reading, in the order IngestOptions lists them."""
    wanted = (
        options.html_fields
        + options.text_fields
        + options.url_fields
        + options.title_fields
        + options.date_fields
    )
    return [name for name in dict.fromkeys(wanted) if name in names]


def no_text_field(options: IngestOptions) -> str:
    return f"looked for {', '.join(options.text_fields + options.html_fields)}"


def _content(record: Mapping[str, Any], options: IngestOptions) -> tuple[str, str]:
    # HTML wins when both are present: the studio segments pages itself
    for fields, kind in ((options.html_fields, HTML), (options.text_fields, TEXT)):
        for name in fields:
            value = _as_text(record.get(name), name)
            if value:
                return value, kind
    raise RecordProblem(f"no text field ({no_text_field(options)})")


def _first_text(record: Mapping[str, Any], fields: tuple[str, ...]) -> str | None:
    for name in fields:
        value = record.get(name)
        # a list or an object is no address, title or date (a list's text "['...']" would be
        # stored as one): the next field is tried, as for an empty one
        if value is None or isinstance(value, list | tuple | dict) or value in ("", b""):
            continue
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        if hasattr(value, "isoformat"):
            return value.isoformat()  # Parquet timestamps
        return value if isinstance(value, str) else str(value)
    return None


def _as_text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordProblem(f"field {name!r} is not valid UTF-8 at byte {exc.start:,}") from exc
    raise RecordProblem(f"field {name!r} holds {type(value).__name__}, not text")
