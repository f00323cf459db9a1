"""A single HTML page, plain or gzip-compressed (decompression happens before it gets here)."""

from __future__ import annotations

from collections.abc import Iterator

from studio.ingest.base import HTML, RawDocument
from studio.ingest.charset import decode_html, html_title
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import read_capped


class HtmlReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        data = read_capped(source.stream, ctx.options.max_document_bytes, source.size)
        text, warnings = decode_html(data)
        yield RawDocument(
            content=text,
            kind=HTML,
            title=html_title(text),
            locator=source.locate(),
            warnings=warnings,
        )
