"""A JSON document of records, read item by item from a stream, so memory holds one record at a
time, never the whole file: an array (``[{"text": ...}, ...]``), as many tools export a dataset,
or one or more pretty-printed objects one after another (``json.dump(record, indent=2)``, or
``jq .`` over JSON lines), which a JSON lines reader would fail line by line.

Each item is a record as a JSON lines file's line is (the same text/html fields); an item that
is no object, or no record, fails alone. Malformed JSON ends the reading there: past it no
item boundary can be trusted, so the items before it are kept and the error says where it was.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator

from studio.ingest.base import RecordError
from studio.ingest.records import RecordProblem, document_from_record
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import CHUNK

WHITESPACE = " \t\n\r"
CUT_SHORT = "the JSON ends early (the file is cut short)"
# bytes that are not UTF-8, kept through decoding as lone surrogates: their item alone fails
UNDECODABLE = re.compile("[\udc80-\udcff]")


class JsonReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        limit = ctx.options.max_document_bytes
        items = _Items(source, limit)
        for number, item in items:
            ctx.checkpoint()
            locator = source.locate(item=number)
            if isinstance(item, str):  # why the reading stopped at this item
                yield RecordError(f"item {number}: {item}", locator)
                return
            if isinstance(item, _Bad):
                yield RecordError(f"item {number}: {item.reason}", locator)
                continue
            if not isinstance(item, dict):
                kind = type(item).__name__
                yield RecordError(f"item {number}: a JSON {kind}, not an object", locator)
                continue
            try:
                yield document_from_record(item, ctx.options, locator)
            except RecordProblem as exc:
                yield RecordError(f"item {number}: {exc}", locator)


class _Items:
    """(item number, value) for each item of the array, or each object of a run of them; a str
    value says why reading stopped, a _Bad why this item alone fails."""

    def __init__(self, source: Source, limit: int) -> None:
        self.stream = source.stream
        self.limit = limit
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
        self.buffer = ""
        self.pos = 0
        self.eof = False
        self.span = (0, 0)  # where in the buffer the last item was

    def __iter__(self) -> Iterator[tuple[int, object]]:
        first = self._next_char()
        if first == "{":
            yield from self._objects()
        elif first == "[":
            self.pos += 1
            yield from self._array()
        else:
            yield 1, "the file starts with neither a JSON array nor a JSON object"

    def _objects(self) -> Iterator[tuple[int, object]]:
        """Values one after another, separated by whitespace or nothing."""
        number = 0
        while self._next_char() is not None:
            number += 1
            value = self._value()
            if isinstance(value, _Stop):
                yield number, value.reason
                return
            yield number, self._checked(value)

    def _array(self) -> Iterator[tuple[int, object]]:
        number = 0
        while True:
            char = self._next_char()
            if char == "]" and number == 0:
                return  # an empty array
            number += 1
            if char is None:
                yield number, CUT_SHORT
                return
            value = self._value()
            if isinstance(value, _Stop):
                yield number, value.reason
                return
            yield number, self._checked(value)
            char = self._next_char()
            if char == "]":
                return
            if char is None:
                yield number + 1, CUT_SHORT
                return
            if char != ",":
                yield number + 1, f"expected ',' or ']' after item {number}, found {char!r}"
                return
            self.pos += 1

    def _checked(self, value: object) -> object:
        """The item just read, or a _Bad when its bytes were not all UTF-8."""
        if UNDECODABLE.search(self.buffer, *self.span):
            return _Bad("invalid UTF-8: bytes that are not text")
        return value

    def _fill(self) -> bool:
        """Read one more chunk into the buffer; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self.stream.read(CHUNK)
        if not chunk:
            self.eof = True
            self.buffer += self.decoder.decode(b"", final=True)
            return False
        self.buffer = self.buffer[self.pos :] + self.decoder.decode(chunk)
        self.pos = 0
        return True

    def _next_char(self) -> str | None:
        """The next character that is not whitespace (left in place), or None at the end."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill():
                return None

    def _value(self) -> object:
        """One JSON value from the buffer, reading more while it is cut short by the buffer's
        end; a _Stop when it is malformed or larger than the limit."""
        decoder = json.JSONDecoder()
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except RecursionError:  # a hostile item of 100,000 nested brackets
                return _Stop("JSON nested too deeply to read; the rest of the file was not read")
            except json.JSONDecodeError as exc:
                # cut short by the buffer's end (a string runs on, or the error is within an
                # escape's length of the end), or malformed where it stopped
                slack = 0 if self.eof else 8
                at_end = (
                    exc.msg.startswith("Unterminated string")
                    or exc.pos >= len(self.buffer.rstrip(WHITESPACE)) - slack
                )
                if not at_end:
                    return _Stop(f"invalid JSON ({exc.msg}); the rest of the file was not read")
                if self.eof:
                    return _Stop(CUT_SHORT)
                if len(self.buffer) - self.pos > self.limit:
                    return _Stop(f"larger than {self.limit:,} bytes: the rest was not read")
                self._fill()
                continue
            if end == len(self.buffer) and not self.eof and self._fill():
                continue  # a number may go on in the next chunk: read it whole
            self.span, self.pos = (self.pos, end), end
            return value


class _Stop:
    """Why the reading stopped at this item."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Bad:
    """Why this item alone fails."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
