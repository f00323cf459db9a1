"""Import files into a project: read, skip exact duplicates, segment, identify, store.

Each file is one transaction: it is stored whole or not at all, so a file that breaks half-way
never leaves half of itself behind and never touches what was stored before. One bad record
inside a file is counted and explained; the file goes on. A broken file is explained; the import
goes on with the next one. A file with nothing imported because every record failed counts as
a failed file, so importing it again (with the right ``--text-field``, say) is not skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import html as html_lib
import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.ingest import iter_input_files, read_file, sniff_format
from studio.ingest.base import HTML, IngestError, IngestOptions, RawDocument, RecordError
from studio.ingest.charset import replace_lone_surrogates
from studio.ingest.files import not_a_file, path_text
from studio.lang import detect_language
from studio.progress import Cancelled, Task
from studio.segment import MODEL_VERSION, SegmentError, segment_html
from studio.segment.blocks import join_main_text, signal_share
from studio.store import NewDocument, Store

log = logging.getLogger("studio.import")

MAX_ERRORS_KEPT = 50  # per file; the count is always exact, the list of reasons is capped
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(slots=True)
class FileResult:
    """What happened to one file."""

    path: str
    format: str | None = None
    status: str = "imported"  # imported | failed | skipped | cancelled
    imported: int = 0
    duplicates: int = 0
    failed: int = 0
    reason: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.status == "failed":
            return f"failed: {self.reason}"
        if self.status == "skipped":
            return f"skipped: {self.reason}"
        text = f"imported {self.imported}, skipped {self.duplicates} duplicates"
        if self.failed:
            text += f", {self.failed} records failed"
        return text + (" (cancelled)" if self.status == "cancelled" else "")


@dataclass(slots=True)
class ImportReport:
    import_id: int
    files: list[FileResult] = field(default_factory=list)
    cancelled: bool = False

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)

    @property
    def failed_files(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def failed_records(self) -> int:
        """Bad records in the files that were imported (a failed file's are in its reason)."""
        return sum(f.failed for f in self.files if f.status == "imported")

    def to_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "cancelled": self.cancelled,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "failed_files": len(self.failed_files),
            "failed_records": self.failed_records,
            "files": [asdict(f) for f in self.files],
        }


def import_paths(
    store: Store,
    paths: list[Path],
    options: IngestOptions | None = None,
    task: Task | None = None,
) -> ImportReport:
    """Import files and folders (recursively) into ``store``; see the module docstring."""
    options = options or IngestOptions()
    task = task or Task()
    files = list(iter_input_files(paths))
    sizes = [_size(p) for p in files]
    grand_total = max(sum(sizes), 1)
    report = ImportReport(import_id=store.begin_import())
    done_bytes = 0
    try:
        for path, size in zip(files, sizes, strict=True):
            if task.cancelled():
                report.cancelled = True
                break
            part = task.part(done_bytes, grand_total, path_text(path.name))
            result = _import_file(store, report.import_id, path, options, part)
            report.files.append(result)
            done_bytes += size
            task.progress(done_bytes, grand_total, path_text(path.name))
            if result.status == "cancelled":
                report.cancelled = True
                break
    except BaseException as exc:
        # the import log must not show this import as running for ever
        _close_quietly(store.finish_import, report.import_id, _interrupted_status(exc))
        raise
    store.finish_import(report.import_id, "cancelled" if report.cancelled else "done")
    return report


def _interrupted_status(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, KeyboardInterrupt | Cancelled) else "failed"


def _close_quietly(finish: Any, *args: Any, **kwargs: Any) -> None:
    """Record how a dying import ended, if the store still can; the first error is the story."""
    with contextlib.suppress(Exception):
        finish(*args, **kwargs)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _import_file(
    store: Store, import_id: int, path: Path, options: IngestOptions, task: Task
) -> FileResult:
    result = FileResult(path=path_text(path))
    try:
        stat = path.stat()
    except OSError as exc:
        result.status, result.reason = "failed", f"cannot read file: {exc.strerror or exc}"
        _record(store, import_id, None, result)
        return result
    problem = not_a_file(path, stat.st_mode)
    if problem is not None:  # never opened: reading a named pipe would wait for ever
        result.status, result.reason = "failed", problem
        _record(store, import_id, stat, result)
        return result
    if store.imported_before(result.path, stat.st_size, stat.st_mtime):
        result.status, result.reason = "skipped", "already imported (same path, size and time)"
        _record(store, import_id, stat, result)
        return result
    source_id = store.add_source(import_id, result.path, stat.st_size, stat.st_mtime, None)
    try:
        _read_into(store, source_id, path, options, task, result)
    except BaseException as exc:  # Ctrl-C or the like: still, no row is left running
        reason = f"stopped ({type(exc).__name__}); nothing kept"
        status = _interrupted_status(exc)
        _close_quietly(store.finish_source, source_id, status=status, reason=reason)
        raise
    if result.reason:
        result.reason = path_text(result.reason)  # an error may quote an undecodable name
    store.finish_source(
        source_id,
        status=result.status,
        imported=result.imported,
        duplicates=result.duplicates,
        failed=result.failed,
        reason=result.reason,
        errors=result.errors,
        fmt=result.format,
    )
    return result


def _read_into(
    store: Store, source_id: int, path: Path, options: IngestOptions, task: Task, result: FileResult
) -> None:
    try:
        result.format = sniff_format(path)
        with store.transaction():
            for item in read_file(path, options, task):
                task.check()
                _take(store, source_id, item, result)
    except Cancelled:
        result.status, result.reason = "cancelled", "cancelled by the curator; nothing kept"
        result.imported = result.duplicates = 0
    except IngestError as exc:
        result.status, result.reason = "failed", str(exc)
        result.imported = result.duplicates = 0
    except Exception as exc:  # a reader bug must not stop the other files
        log.exception("import of %s failed", path)
        result.status = "failed"
        result.reason = f"unexpected error ({type(exc).__name__}: {exc}); nothing kept"
        result.imported = result.duplicates = 0
    if result.status == "failed" and result.reason and "nothing kept" not in result.reason:
        result.reason += "; nothing from this file was kept"
    if result.status == "imported" and result.failed and not result.imported + result.duplicates:
        # a file that gave nothing but errors failed, whatever the reason its records did
        result.status, result.reason = "failed", _nothing_imported(result)


def _nothing_imported(result: FileResult) -> str:
    first = result.errors[0] if result.errors else "no reason given"
    if result.failed == 1:
        return f"nothing could be imported: its only record failed ({first})"
    return f"nothing could be imported: all {result.failed:,} records failed (first: {first})"


def _record(store: Store, import_id: int, stat: Any, result: FileResult) -> None:
    source_id = store.add_source(
        import_id,
        result.path,
        stat.st_size if stat else None,
        stat.st_mtime if stat else None,
        None,
    )
    store.finish_source(source_id, status=result.status, reason=result.reason)


def _take(
    store: Store, source_id: int, item: RawDocument | RecordError, result: FileResult
) -> None:
    if isinstance(item, RecordError):
        _fail_record(result, item.reason, item.locator)
        return
    item = _without_lone_surrogates(item)
    content_hash = hashlib.blake2b(
        item.content.encode("utf-8", "surrogatepass"), digest_size=16
    ).hexdigest()
    if store.has_hash(content_hash):
        result.duplicates += 1
        return
    try:
        doc = _prepare(source_id, content_hash, item)
    except SegmentError as exc:
        _fail_record(result, f"cannot segment: {exc}", item.locator)
        return
    if store.insert_document(doc) is None:
        result.duplicates += 1
    else:
        result.imported += 1


def _fail_record(result: FileResult, reason: str, locator: dict[str, Any]) -> None:
    result.failed += 1
    if len(result.errors) < MAX_ERRORS_KEPT:
        # readers often name the place already ("line 17: ..."): say it once
        where = ", ".join(f"{k} {v}" for k, v in locator.items() if str(v) not in reason)
        result.errors.append(path_text(f"{where}: {reason}" if where else reason))


def _without_lone_surrogates(item: RawDocument) -> RawDocument:
    """Half a UTF-16 pair (a JSON ``\\ud800`` escape, an emoji cut in two) cannot be stored as
    UTF-8. One broken character should not cost a curator the page around it, so each is
    replaced with U+FFFD, visibly, and the document says so; the rest is kept as it was."""
    fields = {}
    replaced = 0
    for name in ("content", "url", "fetch_date", "title"):
        value = getattr(item, name)
        if value:
            fields[name], n = replace_lone_surrogates(value)
            replaced += n
    if not replaced:
        return item
    what = "broken character" if replaced == 1 else "broken characters"
    note = f"{replaced:,} {what} (lone UTF-16 surrogates) replaced with U+FFFD"
    return dataclasses.replace(item, **fields, warnings=[*item.warnings, note])


def _prepare(source_id: int, content_hash: str, item: RawDocument) -> NewDocument:
    if item.kind == HTML:
        blocks = segment_html(item.content, url=item.url)
        text = join_main_text(blocks)
        signal, total = signal_share(blocks)
        title = item.title or page_title(item.content)
        segmenter: str | None = MODEL_VERSION
    else:
        text = item.content
        total = signal = len(text.split())
        title = item.title or text_title(text)
        segmenter = None
    lang, score = detect_language(text or item.content[:5000])
    return NewDocument(
        source_id=source_id,
        content_hash=content_hash,
        kind=item.kind,
        raw=item.content,
        main_text=text,
        n_words=total,
        signal_words=signal,
        url=item.url,
        title=title,
        fetch_date=item.fetch_date,
        locator=item.locator,
        lang=lang,
        lang_score=score,
        segmenter=segmenter,
        warnings=item.warnings or None,
    )


def page_title(html: str) -> str | None:
    m = _TITLE_RE.search(html, 0, 200_000)
    if not m:
        return None
    title = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split())
    return title[:300] or None


def text_title(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return None
