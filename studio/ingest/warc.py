"""WARC and ARC: the HTML responses, each with its record offset, WARC-Target-URI and date.

Records are parsed with warcio's ``ArcWarcRecordLoader``, but not iterated with its
``ArchiveIterator``: that iterator stops for good at the first record with broken headers,
prints gzip errors to stderr and carries on, and cannot tell a truncated ``.warc.gz`` from a
complete one. Here each gzip member (one record, in a well-formed ``.warc.gz``) is inflated
by :class:`GzipMembers`, so a broken record costs only itself and truncation is an error.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator

from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord, ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeadersParserException
from warcio.timeutils import timestamp_to_iso_date

from studio.ingest.base import HTML, IngestError, RawDocument, RecordError
from studio.ingest.charset import decode_html, html_title
from studio.ingest.sniff import STRONG_HTML
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import (
    RATIO_FLOOR,
    DecompressionBomb,
    DocumentTooLarge,
    Readable,
    drain,
    read_capped,
)

CHUNK_IN = 64 * 1024
CHUNK_OUT = 256 * 1024
# header lines longer than this are not headers; it also bounds what one readline holds
MAX_LINE = 1 << 20
HTML_TYPES = {"text/html", "application/xhtml+xml"}
# responses that did not say what they are get their payload sniffed
UNLABELLED_TYPES = {"", "application/octet-stream", "unknown/unknown", "application/unknown"}
RECORD_START = re.compile(rb"^(WARC/\d|(https?|filedesc|dns|ftp)://\S+ \S+ \d{14} )")
# warcio trusts its input: a response without WARC-Target-URI fails with AttributeError
PARSE_ERRORS = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    ValueError,
    EOFError,
    AttributeError,
    TypeError,
    IndexError,
)


class LineReader:
    """``read``, ``readline`` and ``tell`` over byte chunks: what warcio's loader needs."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._off = 0
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK_OUT), b""))
        if self._off >= len(self._buf) and not self._fill():
            return b""
        data = self._buf[self._off : self._off + size]
        self._off += len(data)
        self._pos += len(data)
        return data

    def readline(self, size: int | None = None) -> bytes:
        limit = MAX_LINE if size is None or size < 0 else min(size, MAX_LINE)
        while True:
            end = self._buf.find(b"\n", self._off, self._off + limit)
            if end != -1 or len(self._buf) - self._off >= limit or not self._fill():
                break
        stop = end + 1 if end != -1 else min(len(self._buf), self._off + limit)
        line = self._buf[self._off : stop]
        self._off = stop
        self._pos += len(line)
        return line

    def _fill(self) -> bool:
        chunk = next(self._chunks, b"")
        if not chunk:
            return False
        self._buf = self._buf[self._off :] + chunk
        self._off = 0
        return True


class GzipMembers:
    """Walks a multi-member gzip stream member by member, knowing where each one starts."""

    def __init__(self, raw: Readable, max_ratio: float) -> None:
        self._raw = raw
        self._max_ratio = max_ratio
        self._pending = b""
        self.offset = 0  # compressed offset of the first pending byte

    def next_member(self) -> tuple[int, Iterator[bytes]] | None:
        if not self._pending:
            self._pending = self._raw.read(CHUNK_IN)
        if not self._pending.strip(b"\x00"):
            return None  # end of file (some writers pad the last block with NULs)
        return self.offset, self._inflate(self.offset)

    def _inflate(self, start: int) -> Iterator[bytes]:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        produced = 0
        while not inflater.eof:
            if not self._pending:
                self._pending = self._raw.read(CHUNK_IN)
                if not self._pending:
                    raise IngestError(f"truncated gzip stream after {self.offset:,} bytes")
            data = self._pending
            try:
                out = inflater.decompress(data, CHUNK_OUT)
            except zlib.error as exc:
                raise IngestError(f"corrupt gzip member at byte {start:,} ({exc})") from exc
            rest = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            self.offset += len(data) - len(rest)
            self._pending = rest
            produced += len(out)
            if produced > max(self._max_ratio * (self.offset - start), RATIO_FLOOR):
                raise DecompressionBomb(
                    f"gzip member at byte {start:,} expands past {self._max_ratio:g}× its "
                    "compressed size (decompression bomb)"
                )
            if out:
                yield out


class WarcReader:
    """HTML ``response`` records of a WARC or ARC file, gzip-compressed per record or plain."""

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        session = _WarcSession(source, ctx)
        if source.compression == "gzip":
            yield from session.read_members()
        else:
            yield from session.read_plain()


class _WarcSession:
    """State for reading one WARC/ARC stream: the loader and the format seen so far."""

    def __init__(self, source: Source, ctx: ReadContext) -> None:
        self.source = source
        self.ctx = ctx
        self.loader = ArcWarcRecordLoader(verify_http=False, arc2warc=False)
        self.known_format: str | None = None

    def read_members(self) -> Iterator[Item]:
        members = GzipMembers(self.source.stream, self.ctx.options.max_compression_ratio)
        while (member := members.next_member()) is not None:
            start, chunks = member
            # every record of a member gets the member's offset: that is where a reader seeks
            yield from self._records(LineReader(chunks), lambda _pos, at=start: at, resync=False)
            drain(_IteratorReader(chunks))

    def read_plain(self) -> Iterator[Item]:
        reader = LineReader(iter(lambda: self.source.stream.read(CHUNK_IN), b""))
        yield from self._records(reader, lambda pos: pos, resync=True)

    def _records(
        self, reader: LineReader, offset_of: Callable[[int], int], *, resync: bool
    ) -> Iterator[Item]:
        line = _next_nonblank(reader)
        while line:
            self.ctx.checkpoint()
            offset = offset_of(reader.tell() - len(line))
            try:
                record = self.loader.parse_record_stream(reader, line, self.known_format)
                problem = _header_problem(record)
            except PARSE_ERRORS as exc:
                record, problem = None, f"broken record headers ({_first_line(exc)})"
            if record is None or problem:
                reason = f"record at byte {offset:,}: {problem}"
                yield RecordError(reason, self.source.locate(offset=offset))
                if not resync:
                    return
                line = _scan_to_record(reader)
                continue
            self.known_format = record.format
            yield from self._finish_record(record, offset, resync)
            line = _next_nonblank(reader)

    def _finish_record(self, record: ArcWarcRecord, offset: int, plain: bool) -> Iterator[Item]:
        item = self._document(record, offset)
        drain(record.raw_stream)
        if getattr(record.raw_stream, "limit", 0) > 0:
            reason = f"record at byte {offset:,} stops before its declared length"
            if plain:
                raise IngestError(f"truncated file: {reason}")
            item = RecordError(reason, self.source.locate(offset=offset))
        if item is not None:
            yield item

    def _document(self, record: ArcWarcRecord, offset: int) -> Item | None:
        content_type = _html_content_type(record)
        if content_type is None:
            return None
        locator = self.source.locate(offset=offset)
        record_id = record.rec_headers.get_header("WARC-Record-ID")
        if record_id:
            locator["record_id"] = record_id
        limit = self.ctx.options.max_document_bytes
        try:
            payload = read_capped(record.content_stream(), limit)
        except DocumentTooLarge as exc:
            return RecordError(f"record at byte {offset:,}: {exc}", locator)
        if content_type in UNLABELLED_TYPES and not STRONG_HTML.search(payload, 0, 4096):
            return None
        text, warnings = decode_html(payload, record.http_headers.get_header("Content-Type"))
        url, date = _url_and_date(record)
        return RawDocument(
            content=text,
            kind=HTML,
            url=url,
            fetch_date=date,
            title=html_title(text),
            locator=locator,
            warnings=warnings,
        )


class _IteratorReader:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1, /) -> bytes:
        return next(self._chunks, b"")


def _next_nonblank(reader: LineReader) -> bytes:
    while line := reader.readline():
        if line.strip():
            return line
    return b""


def _scan_to_record(reader: LineReader) -> bytes:
    """After a broken record in a plain file, skip to the next line that starts a record."""
    while line := reader.readline():
        if RECORD_START.match(line):
            return line
    return b""


def _header_problem(record: ArcWarcRecord) -> str | None:
    name = "Content-Length" if record.format == "warc" else "length"
    declared = record.rec_headers.get_header(name)
    if declared is None or not declared.strip().isdigit():
        return f"no valid {name} ({declared!r})"
    return None


def _html_content_type(record: ArcWarcRecord) -> str | None:
    """The response's MIME type when it is (or may be) an HTML page worth reading, else None."""
    if record.rec_type != "response" or record.http_headers is None:
        return None
    status = record.http_headers.get_statuscode() or ""
    if not status.startswith("2"):
        return None  # redirects and error pages are not content
    mime = (record.http_headers.get_header("Content-Type") or "").split(";")[0].strip().lower()
    return mime if mime in HTML_TYPES or mime in UNLABELLED_TYPES else None


def _url_and_date(record: ArcWarcRecord) -> tuple[str | None, str | None]:
    headers = record.rec_headers
    if record.format == "arc":
        stamp = headers.get_header("archive-date")
        date = timestamp_to_iso_date(stamp) if stamp and stamp.isdigit() else stamp
        return headers.get_header("uri"), date
    return headers.get_header("WARC-Target-URI"), headers.get_header("WARC-Date")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
