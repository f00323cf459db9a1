"""Plain text and Markdown: one file, one document."""

from __future__ import annotations

from collections.abc import Iterator

from studio.ingest.base import TEXT, RawDocument
from studio.ingest.charset import decode_text, markdown_title
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import read_capped


class TextReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        data = read_capped(source.stream, ctx.options.max_document_bytes, source.size)
        text = decode_text(data)
        yield RawDocument(
            content=text, kind=TEXT, title=markdown_title(text), locator=source.locate()
        )
