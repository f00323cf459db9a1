"""``read_file``: open a file, sniff what it is, and hand it to the reader for that format."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from studio.ingest.archive import TarReader, ZipReader
from studio.ingest.base import IngestError, IngestOptions
from studio.ingest.html import HtmlReader
from studio.ingest.jsonarray import JsonReader
from studio.ingest.jsonl import JsonlReader
from studio.ingest.parquet import ParquetReader
from studio.ingest.sniff import HEAD_BYTES, Sniffed, sniff, strip_compression_suffix
from studio.ingest.source import Item, ReadContext, Reader, Source
from studio.ingest.streams import DecompressedReader, PrefixedReader, read_head
from studio.ingest.text import TextReader
from studio.ingest.warc import WarcReader
from studio.progress import Task

READERS: dict[str, Reader] = {
    "html": HtmlReader(),
    "text": TextReader(),
    "jsonl": JsonlReader(),
    "json": JsonReader(),
    "parquet": ParquetReader(),
    "warc": WarcReader(),
    "arc": WarcReader(),
    "zip": ZipReader(),
    "tar": TarReader(),
}
# formats that need to seek; a member or decompressed stream of these is spooled first
RANDOM_ACCESS = {"zip", "parquet"}


def read_file(
    path: Path, options: IngestOptions | None = None, task: Task | None = None
) -> Iterator[Item]:
    """Documents and per-record errors of one file; IngestError when the file as a whole fails."""
    options = options or IngestOptions()
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the with below, across yields
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        ctx = ReadContext(options, task, fh.tell, size, read_source)
        source = Source(fh, Path(path).name, size=size, seekable=True)
        try:
            yield from read_source(source, ctx)
        except OSError as exc:
            raise IngestError(f"read error: {exc.strerror or exc}") from exc
        ctx.checkpoint(force=True)


def read_source(source: Source, ctx: ReadContext) -> Iterator[Item]:
    """Sniff a file or archive member and read it with the reader for its format."""
    head, source = _peek(source)
    sniffed = sniff(head, source.name)
    with contextlib.ExitStack() as cleanup:
        source = _prepare(source, sniffed, ctx, cleanup)
        yield from READERS[sniffed.format].read(source, ctx)


def _peek(source: Source) -> tuple[bytes, Source]:
    head = read_head(source.stream, HEAD_BYTES)
    if source.seekable:
        source.stream.seek(0)  # type: ignore[attr-defined]
        return head, source
    return head, dataclasses.replace(source, stream=PrefixedReader(head, source.stream))


def _prepare(
    source: Source, sniffed: Sniffed, ctx: ReadContext, cleanup: contextlib.ExitStack
) -> Source:
    if sniffed.compression == "gzip" and sniffed.format in ("warc", "arc"):
        # the WARC reader inflates member by member to know each record's offset
        return dataclasses.replace(source, compression="gzip")
    if sniffed.compression:
        stream = DecompressedReader(
            source.stream,
            sniffed.compression,
            max_ratio=ctx.options.max_compression_ratio,
            what=f"{sniffed.compression} data in {source.name!r}",
        )
        source = dataclasses.replace(
            source,
            stream=stream,
            name=strip_compression_suffix(source.name),
            size=None,
            seekable=False,
        )
    if sniffed.format in RANDOM_ACCESS and not source.seekable:
        source = _spool(source, ctx, cleanup)
    return source


def _spool(source: Source, ctx: ReadContext, cleanup: contextlib.ExitStack) -> Source:
    """Copy a stream that must seek into an anonymous temporary file (memory while small).

    The copy goes through the same guards as any read, so a bomb stops while it is spooled.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=ctx.options.max_document_bytes)  # noqa: SIM115
    cleanup.callback(spool.close)
    shutil.copyfileobj(source.stream, spool)  # type: ignore[misc]
    spool.seek(0)
    return dataclasses.replace(source, stream=spool, seekable=True)
