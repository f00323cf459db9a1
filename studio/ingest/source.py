"""What a reader is handed: the bytes of one file or archive member, and the call's context."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from studio.ingest.base import IngestOptions, RawDocument, RecordError
from studio.ingest.streams import Readable
from studio.progress import Task

Item = RawDocument | RecordError

# progress callbacks repaint a bar; a few per second is plenty
PROGRESS_INTERVAL_S = 0.1


@dataclass(slots=True)
class Source:
    """One file or archive member, as stored (possibly still compressed)."""

    stream: Readable
    name: str  # file name or member path: a tie-breaker for sniffing and words for messages
    size: int | None = None  # stored size when known
    locator: dict[str, Any] = field(default_factory=dict)  # carried by everything read from it
    archive_depth: int = 0  # how many archives enclose it
    seekable: bool = False
    compression: str | None = None  # left for readers that decompress themselves (WARC gzip)

    def locate(self, **where: Any) -> dict[str, Any]:
        return {**self.locator, **where}


class Reader(Protocol):
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]: ...


class ReadContext:
    """Options, cancellation and progress for one ``read_file`` call, shared by nested readers."""

    def __init__(
        self,
        options: IngestOptions,
        task: Task | None,
        position: Callable[[], int],
        total: int,
        dispatch: Callable[[Source, ReadContext], Iterator[Item]],
    ) -> None:
        self.options = options
        self._task = task
        self._position = position
        self._total = total
        self._dispatch = dispatch
        self._last_progress = 0.0

    def read(self, source: Source) -> Iterator[Item]:
        """Sniff and read a nested source (an archive member) with the same readers."""
        return self._dispatch(source, self)

    def checkpoint(self, force: bool = False) -> None:
        """Call between records: raises Cancelled when asked to stop, and reports progress."""
        if self._task is None:
            return
        self._task.check()
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            done = min(self._position(), self._total)
            self._task.progress(done, self._total, "")
