"""JSON lines: one document per line, read line by line with each line capped."""

from __future__ import annotations

import json
from collections.abc import Iterator

from studio.ingest.base import RecordError
from studio.ingest.records import RecordProblem, document_from_record
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import iter_bounded_lines, too_large_reason

UTF8_BOM = b"\xef\xbb\xbf"


class JsonlReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        limit = ctx.options.max_document_bytes
        for number, line in iter_bounded_lines(source.stream, limit):
            ctx.checkpoint()
            locator = source.locate(line=number)
            if isinstance(line, int):
                yield RecordError(f"line {number}: {too_large_reason(limit, line)}", locator)
            elif line.strip():
                yield self._parse(line.removeprefix(UTF8_BOM), ctx, locator)

    def _parse(self, line: bytes, ctx: ReadContext, locator: dict) -> Item:
        number = locator["line"]
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            return RecordError(f"line {number}: invalid UTF-8 at byte {exc.start:,}", locator)
        except json.JSONDecodeError as exc:
            reason = f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
            return RecordError(reason, locator)
        except RecursionError:  # a hostile line of 100,000 nested brackets
            return RecordError(f"line {number}: JSON nested too deeply to read", locator)
        if not isinstance(record, dict):
            kind = type(record).__name__
            return RecordError(f"line {number}: a JSON {kind}, not an object", locator)
        try:
            return document_from_record(record, ctx.options, locator)
        except RecordProblem as exc:
            return RecordError(f"line {number}: {exc}", locator)
