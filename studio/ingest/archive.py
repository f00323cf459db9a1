"""Zip and tar archives: members are streamed (never extracted) and read by the same readers.

A member that is unsafe (absolute path, ``..``), special (link, device) or a decompression
bomb is refused as a RecordError; the archive goes on with its other members.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator

from studio.ingest.base import IngestError, RecordError
from studio.ingest.files import path_text
from studio.ingest.source import Item, ReadContext, Source
from studio.ingest.streams import (
    DecompressionBomb,
    ExpansionGuard,
    expansion_problem,
    format_limit,
    stream_error,
)

WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
ZIP_ENCRYPTED = 0x1


def member_source(outer: Source, name: str, stream: object, size: int | None) -> Source:
    """The source of an archive member; nested members read "outer.zip!inner.tar!a.html"."""
    parent = outer.locator.get("member")
    name_text = path_text(name)  # tar keeps undecodable bytes of a name as lone surrogates
    path = f"{parent}!{name_text}" if parent else name_text
    return Source(
        stream=stream,  # type: ignore[arg-type]
        name=name,
        size=size,
        locator={**outer.locator, "member": path},
        archive_depth=outer.archive_depth + 1,
    )


def unsafe_path_problem(name: str) -> str | None:
    path = name.replace("\\", "/")
    if path.startswith("/") or WINDOWS_DRIVE.match(path) or ".." in path.split("/"):
        return f"archive member {name!r} has an unsafe path; skipped"
    return None


def read_member(member: Source, ctx: ReadContext) -> Iterator[Item]:
    """Read one member; its failure becomes a RecordError so the archive goes on."""
    try:
        yield from ctx.read(member)
    except IngestError as exc:
        reason = f"{exc}; skipped" if isinstance(exc, DecompressionBomb) else str(exc)
        yield RecordError(reason, member.locate())


def check_depth(source: Source, ctx: ReadContext) -> None:
    limit = ctx.options.max_archive_depth
    if source.archive_depth >= limit:
        raise IngestError(f"archive nested more than {limit} levels deep; skipped")


class ZipReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        check_depth(source, ctx)
        try:
            archive = zipfile.ZipFile(source.stream)  # type: ignore[arg-type]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise IngestError(f"not a readable zip archive ({exc})") from exc
        with archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                ctx.checkpoint()
                yield from self._member(archive, info, source, ctx)

    def _member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, outer: Source, ctx: ReadContext
    ) -> Iterator[Item]:
        problem = self._refusal(info, ctx)
        if problem:
            yield RecordError(problem, member_source(outer, info.filename, None, None).locate())
            return
        what = f"zip member {info.filename!r}"
        try:
            with archive.open(info) as raw:
                guarded = ExpansionGuard(
                    raw,
                    lambda: info.compress_size,
                    max_ratio=ctx.options.max_compression_ratio,
                    max_bytes=ctx.options.max_member_bytes,
                    what=what,
                )
                member = member_source(outer, info.filename, guarded, info.file_size)
                yield from read_member(member, ctx)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            yield RecordError(
                f"{what} is corrupt ({exc}); skipped",
                member_source(outer, info.filename, None, None).locate(),
            )

    def _refusal(self, info: zipfile.ZipInfo, ctx: ReadContext) -> str | None:
        unsafe = unsafe_path_problem(info.filename)
        if unsafe:
            return unsafe
        # Unix tools store the file type in the high bits; many others store only permissions
        file_type = stat.S_IFMT(info.external_attr >> 16)
        if file_type not in (0, stat.S_IFREG):
            return f"archive member {info.filename!r} is a link or device; skipped"
        if info.flag_bits & ZIP_ENCRYPTED:
            return f"zip member {info.filename!r} is encrypted; skipped"
        # the sizes a zip declares: zipfile never inflates past file_size, so this is binding
        problem = expansion_problem(
            f"zip member {info.filename!r}",
            info.file_size,
            info.compress_size,
            max_ratio=ctx.options.max_compression_ratio,
            max_bytes=ctx.options.max_member_bytes,
        )
        return f"{problem}; skipped" if problem else None


class TarReader:
    """Plain tar; ``.tar.gz`` arrives here already inflated by a guarded stream."""

    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        check_depth(source, ctx)
        with self._open(source) as archive:
            while (info := self._next(archive, source)) is not None:
                ctx.checkpoint()
                yield from self._member(archive, info, source, ctx)
                # stream mode remembers every header it read: forget them so memory stays flat
                archive.members.clear()

    def _open(self, source: Source) -> tarfile.TarFile:
        try:
            return tarfile.open(fileobj=source.stream, mode="r|")  # type: ignore[call-overload]
        except tarfile.TarError as exc:
            failure = stream_error(source.stream)
            raise failure or IngestError(f"not a readable tar archive ({exc})") from exc

    def _next(self, archive: tarfile.TarFile, source: Source) -> tarfile.TarInfo | None:
        try:
            return archive.next()
        except tarfile.TarError as exc:
            raise stream_error(source.stream) or IngestError(
                f"truncated or corrupt tar archive ({exc})"
            ) from exc

    def _member(
        self, archive: tarfile.TarFile, info: tarfile.TarInfo, outer: Source, ctx: ReadContext
    ) -> Iterator[Item]:
        if info.isdir():
            return
        problem = self._refusal(info, ctx)
        if problem:
            yield RecordError(problem, member_source(outer, info.name, None, None).locate())
            return
        raw = archive.extractfile(info)
        if raw is None:
            return
        member = member_source(outer, info.name, raw, info.size)
        try:
            yield from read_member(member, ctx)
        except tarfile.TarError as exc:
            yield RecordError(f"tar member {info.name!r} is corrupt ({exc})", member.locate())
        outer_failure = stream_error(outer.stream)
        if outer_failure is not None:
            raise outer_failure

    def _refusal(self, info: tarfile.TarInfo, ctx: ReadContext) -> str | None:
        unsafe = unsafe_path_problem(info.name)
        if unsafe:
            return unsafe
        if info.issym() or info.islnk():
            return f"archive member {info.name!r} is a link; skipped"
        if not info.isreg():
            return f"archive member {info.name!r} is a device or pipe; skipped"
        if info.size > ctx.options.max_member_bytes:
            limit = format_limit(ctx.options.max_member_bytes)
            return f"tar member {info.name!r} is larger than the {limit} member limit; skipped"
        return None
