"""Byte streams the readers share: bounded reads, decompression with clear errors, bomb guards.

Every reader pulls bytes through these so that memory stays flat however large the file is,
and so that a truncated or hostile stream fails with a sentence a curator understands.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import zstandard

from studio.ingest.base import IngestError

CHUNK = 1 << 20
# highly repetitive small inputs (a page of spaces) compress far beyond any sane ratio and
# are harmless at this size, so the ratio check only starts past it
RATIO_FLOOR = 1 << 20
# zstd has no bounded-output decompress call that also reports truncation, so input goes in
# small pieces: an RLE block turns 4 bytes into 128 KiB, so 2 KiB of input makes at most 64 MiB
ZSTD_PIECE = 2048


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class DocumentTooLarge(IngestError):
    """A single document passed IngestOptions.max_document_bytes."""


class DecompressionBomb(IngestError):
    """Decompressed output passed its size or ratio limit."""


def format_bytes(n: int) -> str:
    return f"{n:,} bytes"


def format_limit(n: int) -> str:
    if n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    return format_bytes(n)


def too_large_reason(limit: int, size: int | None) -> str:
    what = f"document of {size:,} bytes" if size else f"document of more than {limit:,} bytes"
    return f"{what} is larger than the {format_limit(limit)} limit"


def read_head(stream: Readable, size: int) -> bytes:
    """Read ``size`` bytes or up to the end, even from streams that return short reads."""
    parts: list[bytes] = []
    got = 0
    while got < size and (chunk := stream.read(size - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_capped(stream: Readable, limit: int, size: int | None = None) -> bytes:
    """Read a whole document, at most ``limit`` bytes; one byte more and it is refused."""
    if size is not None and size > limit:
        raise DocumentTooLarge(too_large_reason(limit, size))
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        chunk = stream.read(min(CHUNK, limit + 1 - got))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        got += len(chunk)
    raise DocumentTooLarge(too_large_reason(limit, size))


def drain(stream: Readable) -> int:
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
    return total


class CountingReader:
    """Counts the bytes handed out, so callers can tell how much compressed input was used."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self.count += len(data)
        return data


class PrefixedReader:
    """Gives back bytes already peeked from a stream that cannot seek, then the rest of it."""

    def __init__(self, head: bytes, inner: Readable) -> None:
        self._head = head
        self._inner = inner

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._inner.read(size)
        if size < 0:
            data, self._head = self._head + self._inner.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


class ChunkReader:
    """A file-like ``read`` over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            rest = self._buf[self._pos :] + b"".join(self._chunks)
            self._buf, self._pos = b"", 0
            return rest
        while self._pos >= len(self._buf):
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._buf, self._pos = chunk, 0
        data = self._buf[self._pos : self._pos + size]
        self._pos += len(data)
        return data


def expansion_problem(
    what: str, produced: int, consumed: int, *, max_ratio: float, max_bytes: int | None
) -> str | None:
    """Why ``produced`` bytes out of ``consumed`` compressed ones look like a bomb, if they do."""
    if produced > max(max_ratio * consumed, RATIO_FLOOR):
        return f"{what} expands past {max_ratio:g}× its compressed size (decompression bomb)"
    if max_bytes is not None and produced > max_bytes:
        return (
            f"{what} expands past the {format_limit(max_bytes)} member limit (decompression bomb)"
        )
    return None


class ExpansionGuard:
    """Stops a decompressed stream that grows past a size or past a ratio to its input.

    Once tripped it stays tripped (``error``), so an enclosing reader can tell that the stream
    itself, not one record read from it, is what failed.
    """

    def __init__(
        self,
        inner: Readable,
        consumed: Callable[[], int],
        *,
        max_ratio: float,
        max_bytes: int | None,
        what: str,
    ) -> None:
        self._inner = inner
        self._consumed = consumed
        self._max_ratio = max_ratio
        self._max_bytes = max_bytes
        self._what = what
        self.produced = 0
        self.error: IngestError | None = None

    def read(self, size: int = -1, /) -> bytes:
        if self.error is not None:
            raise self.error
        data = self._inner.read(size)
        self.produced += len(data)
        problem = expansion_problem(
            self._what,
            self.produced,
            self._consumed(),
            max_ratio=self._max_ratio,
            max_bytes=self._max_bytes,
        )
        if problem:
            self.error = DecompressionBomb(problem)
            raise self.error
        return data


def stream_error(stream: object) -> IngestError | None:
    """The error a guarded or decompressing stream already hit, if any."""
    return getattr(stream, "error", None)


class DecompressedReader:
    """Decompresses gzip or zstd, turning the libraries' many failure modes into IngestError.

    The first error is kept and raised again on every later read, so a reader that turned a
    member's failure into a RecordError can still tell that the whole stream is broken.
    """

    def __init__(self, raw: Readable, compression: str, *, max_ratio: float, what: str) -> None:
        self._counter = CountingReader(raw)
        self._compression = compression
        inner: Readable
        if compression == "gzip":
            inner = gzip.GzipFile(fileobj=self._counter, mode="rb")  # type: ignore[arg-type]
        else:
            inner = ChunkReader(zstd_chunks(self._counter))
        self._guarded = ExpansionGuard(
            inner, lambda: self._counter.count, max_ratio=max_ratio, max_bytes=None, what=what
        )
        self.error: IngestError | None = None

    def read(self, size: int = -1, /) -> bytes:
        if self.error is not None:
            raise self.error
        try:
            return self._guarded.read(size)
        except IngestError as exc:
            self.error = exc
        except EOFError:
            self.error = IngestError(
                f"truncated {self._compression} stream after {self._counter.count:,} bytes"
            )
        except (OSError, zlib.error, zstandard.ZstdError) as exc:
            self.error = IngestError(
                f"corrupt {self._compression} data near byte {self._counter.count:,} ({exc})"
            )
        raise self.error


def zstd_chunks(raw: Readable) -> Iterator[bytes]:
    """Decompress concatenated zstd frames; raises EOFError when the input stops mid-frame."""
    decompressor = zstandard.ZstdDecompressor()
    dobj = decompressor.decompressobj()
    in_frame = False
    while piece := raw.read(ZSTD_PIECE):
        while piece:
            in_frame = True
            out = dobj.decompress(piece)
            piece = b""
            if dobj.eof:
                in_frame = False
                piece = dobj.unused_data
                dobj = decompressor.decompressobj()
            if out:
                yield out
    if in_frame:
        raise EOFError("zstd stream ended mid-frame")


def iter_bounded_lines(stream: Readable, limit: int) -> Iterator[tuple[int, bytes | int]]:
    """Yield ``(line_number, line)``; a line longer than ``limit`` comes as its length instead.

    An overlong line is counted and dropped as it streams past, never held whole.
    """
    number = 0
    pending = bytearray()
    dropped = 0  # bytes of the current line already discarded because it is too long
    while chunk := stream.read(CHUNK):
        parts = chunk.split(b"\n")
        for part in parts[:-1]:
            number += 1
            yield number, _finish_line(pending, part, dropped, limit)
            pending.clear()
            dropped = 0
        tail = parts[-1]
        if dropped or len(pending) + len(tail) > limit:
            dropped += len(pending) + len(tail)
            pending.clear()
        else:
            pending += tail
    if pending or dropped:
        yield number + 1, _finish_line(pending, b"", dropped, limit)


def _finish_line(pending: bytearray, part: bytes, dropped: int, limit: int) -> bytes | int:
    length = dropped + len(pending) + len(part)
    if dropped or length > limit:
        return length
    line = bytes(pending) + part if pending else part
    return line[:-1] if line.endswith(b"\r") else line
