"""Tell a file's format from its first bytes; the name only breaks ties between text formats."""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import zstandard

from studio.ingest.base import IngestError

# zstd decodes whole blocks (up to 128 KiB compressed), so the head must hold one to sniff
# what a .zst file contains; plain content is judged on its first SNIFF_BYTES
HEAD_BYTES = 160 * 1024
SNIFF_BYTES = 8192
# what sniffing looks at once a compressed head is inflated
INNER_HEAD_BYTES = 4096

FORMATS = ("html", "warc", "arc", "jsonl", "json", "parquet", "text", "zip", "tar")
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst", ""}
HTML_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
COMPRESSION_SUFFIXES = {".gz", ".tgz", ".zst", ".zstd"}
MAGIC_SUFFIXES = {
    ".parquet": "Parquet's PAR1 magic bytes",
    ".zip": "a zip signature",
    ".tar": "a tar header",
    ".warc": "a WARC/1.x record",
    ".arc": "an ARC file header",
    ".gz": "gzip's magic bytes",
    ".tgz": "gzip's magic bytes",
    ".zst": "zstd's magic bytes",
}

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# control characters other than tab, newline, form feed, carriage return and escape
CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
# past this share of control characters a "text" file is really binary
MAX_CONTROL_SHARE = 0.05

STRONG_HTML = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
JSON_OBJECT_START = re.compile(rb'^\s*\{\s*("|\})')
JSON_ARRAY_START = re.compile(rb"^\s*\[\s*(\{|\])")  # an array of records, or an empty one
ARC_FIRST_LINE = re.compile(rb"^(filedesc|https?|dns|ftp)://\S+ \S+ \d{14} ")


@dataclass(frozen=True, slots=True)
class Sniffed:
    format: str
    compression: str | None = None  # "gzip" | "zstd"


def sniff_format(path: Path) -> str:
    """The format of a file by its content: one of :data:`FORMATS`, else IngestError."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    return sniff(head, path.name).format


def sniff(head: bytes, name: str) -> Sniffed:
    if not head:
        raise IngestError("empty file")
    if head.startswith(GZIP_MAGIC):
        inner = _inflate_head(head, name, "gzip")
        return Sniffed(_sniff_inner(inner, strip_compression_suffix(name)), "gzip")
    if head.startswith(ZSTD_MAGIC):
        inner = _inflate_head(head, name, "zstd")
        return Sniffed(_sniff_inner(inner, strip_compression_suffix(name)), "zstd")
    return Sniffed(_sniff_inner(head[:SNIFF_BYTES], name))


def strip_compression_suffix(name: str) -> str:
    path = PurePosixPath(name)
    if path.suffix.lower() == ".tgz":
        return str(path.with_suffix(".tar"))
    if path.suffix.lower() in COMPRESSION_SUFFIXES:
        return str(path.with_suffix(""))
    return name


def _inflate_head(head: bytes, name: str, compression: str) -> bytes:
    try:
        if compression == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            inner = inflater.decompress(head, INNER_HEAD_BYTES)
            complete = inflater.eof
        else:
            inner = (
                zstandard.ZstdDecompressor().stream_reader(io.BytesIO(head)).read(INNER_HEAD_BYTES)
            )
            complete = False
    except (zlib.error, zstandard.ZstdError) as exc:
        raise IngestError(f"corrupt {compression} data at the start of {name!r} ({exc})") from exc
    if not inner and not complete:
        raise IngestError(
            f"truncated or corrupt {compression} stream: nothing decompresses from its first "
            f"{len(head):,} bytes"
        )
    return inner


def _sniff_inner(head: bytes, name: str) -> str:
    if not head:
        raise IngestError("empty file")
    found = _sniff_magic(head)
    if found:
        return found
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in MAGIC_SUFFIXES:
        raise IngestError(
            f"binary or unsupported content: a file named {suffix} does not start with "
            f"{MAGIC_SUFFIXES[suffix]}"
        )
    _refuse_binary(head, suffix or repr(name))
    return _sniff_text(head, suffix)


def _sniff_magic(head: bytes) -> str | None:
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"WARC/"):
        return "warc"
    if ARC_FIRST_LINE.match(head):
        return "arc"
    return None


def _refuse_binary(head: bytes, suffix: str) -> None:
    if head.startswith(BOMS):
        return  # UTF-16 text is full of NUL bytes
    where = f"a file named {suffix}"
    if b"\x00" in head:
        raise IngestError(f"binary content (NUL bytes) in {where}")
    controls = len(head) - len(head.translate(None, CONTROL_BYTES))
    if controls > MAX_CONTROL_SHARE * len(head):
        raise IngestError(f"binary or unsupported content: control characters in {where}")


def _sniff_text(head: bytes, suffix: str) -> str:
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if JSON_OBJECT_START.match(body):
        # a line of its own is no JSON lines record: the object is pretty-printed
        return "json" if body.split(b"\n", 1)[0].strip() == b"{" else "jsonl"
    if JSON_ARRAY_START.match(body):
        return "json"
    if suffix in HTML_SUFFIXES or (body.startswith(b"<") and STRONG_HTML.search(body)):
        return "html"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        raise IngestError(
            f"binary or unsupported content: a file named {suffix} that holds neither JSON "
            "lines (an object a line) nor an array of JSON objects"
        )
    raise IngestError(
        f"binary or unsupported content: a file named {suffix} holds text that is not HTML, "
        "JSON lines, plain text or Markdown"
    )
