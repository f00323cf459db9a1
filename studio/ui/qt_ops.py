"""Run core calls off the UI thread: ``run_op(parent, fn).on_success(cb)``.

Writes to the project database go through one writer thread, so SQLite only ever sees one
writer; reads and network calls may run in parallel. Callbacks run on the UI thread. Ops never
touch widgets; their callbacks do.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from studio.progress import Task
from studio.project import Project, damaged
from studio.text import os_error_text

log = logging.getLogger("studio.ui")

_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-writer")
_readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="studio-reader")


class Op(QObject):
    """One background call. Signals are delivered on the UI thread (queued connections)."""

    succeeded = Signal(object)
    failed = Signal(str, str)  # message, traceback
    progressed = Signal(int, int, str)

    def __init__(self, parent: QObject | None, fn: Callable[[Task], Any]) -> None:
        super().__init__(parent)
        self.fn = fn
        self.task = Task(lambda done, total, msg: self.progressed.emit(done, total, msg))
        self.running = True
        self.succeeded.connect(self._finish)
        self.failed.connect(self._finish)

    def on_success(self, callback: Callable[[Any], None]) -> Op:
        self.succeeded.connect(callback)
        return self

    def on_failure(self, callback: Callable[[str, str], None]) -> Op:
        self.failed.connect(callback)
        return self

    def on_progress(self, callback: Callable[[int, int, str], None]) -> Op:
        self.progressed.connect(callback)
        return self

    def cancel(self) -> None:
        self.task.cancel()

    def _finish(self, *_: object) -> None:
        self.running = False

    def _run(self) -> None:
        try:
            result = self.fn(self.task)
        except Exception as exc:  # reported to the curator by the failure callback
            said = failure_text(exc)
            if is_fault(exc):  # its traceback is for the log
                log.exception("background op failed")
            else:  # written for the curator, who is told it: one line in the log
                log.warning("background op failed: %s", said)
            self.failed.emit(said, traceback.format_exc())
        else:
            self.succeeded.emit(result)


def is_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a fault (a bug, or a failure nobody wrote a message for) rather than
    one of the errors :func:`failure_text` tells the curator in words of the studio's."""
    kind = type(exc)
    said = kind.__module__.split(".")[0] == "studio" or kind in (ValueError, LookupError)
    return not (
        said
        or isinstance(exc, sqlite3.DatabaseError)
        or (isinstance(exc, OSError) and bool(exc.strerror))
    )


def failure_text(exc: BaseException) -> str:
    """What a failed operation tells the curator: the studio's own errors (and the ValueError
    and LookupError it raises) are written for them and shown as they are; a file-system error
    as its reason and file; anything else is a fault, named as one."""
    kind = type(exc)
    if is_fault(exc):
        return f"an unexpected error ({kind.__name__}: {exc}); the log has the details"
    if isinstance(exc, sqlite3.DatabaseError):  # read-only, busy, a full disk, or damaged
        return damaged(None, exc)
    if isinstance(exc, OSError) and exc.strerror and kind.__module__.split(".")[0] != "studio":
        return os_error_text(exc)
    return str(exc) or kind.__name__


def submit_write(fn: Callable[[], Any]) -> Future:
    """Run ``fn()`` on the writer thread, after the writes queued before it; wait on the
    returned future from a background thread, never from the UI thread."""
    return _writer.submit(fn)


def run_op(parent: QObject | None, fn: Callable[[Task], Any], *, writes: bool = True) -> Op:
    """Start ``fn(task)`` in the background; connect callbacks on the returned :class:`Op`.

    The op is started on the next turn of the event loop, so callbacks connected right after
    this call are in place before it can finish.
    """
    from PySide6.QtCore import QTimer

    op = Op(parent, fn)
    pool = _writer if writes else _readers
    QTimer.singleShot(0, lambda: pool.submit(op._run))
    return op


# how long opening a project may take before a box says what it is doing
OPEN_NOTICE_S = 0.5


def open_project_waiting(path: Path, *, create: bool, parent: QWidget | None = None) -> Project:
    """:meth:`Project.open` on a thread of its own, the studio's windows kept drawn meanwhile.

    Opening a project made by an earlier studio applies its migrations, and one of them rebuilds
    the search index (97 s at a million pages): past :data:`OPEN_NOTICE_S` a box over
    ``parent`` says so, modal to the whole studio (no other window takes input), with no
    button (a half-applied migration is applied again at the next open, but nothing is gained
    by stopping it). Raises what :meth:`Project.open` raises.
    """
    from PySide6.QtCore import QEventLoop, Qt
    from PySide6.QtWidgets import QApplication, QProgressDialog

    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["project"] = Project.open(path, create=create)
        except BaseException as exc:  # given to the caller on its own thread
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="studio-open-project", daemon=True)
    thread.start()
    thread.join(OPEN_NOTICE_S)
    if thread.is_alive():
        box = QProgressDialog(
            f"Opening {path.name}…\n\n"
            "A project made by an earlier version of the studio is updated\n"
            "once; a large corpus takes a minute or more (about 100 s for a\n"
            "million pages).",
            None,  # type: ignore[arg-type]  # no cancel button
            0,
            0,
            parent,
        )
        box.setWindowTitle("Opening the project")
        box.setWindowModality(Qt.WindowModality.ApplicationModal)
        box.setMinimumDuration(0)
        box.show()
        while thread.is_alive():
            if not box.isVisible():  # Escape hides a progress box: it stays until done
                box.show()
            QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            thread.join(0.05)
        box.close()
        box.deleteLater()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["project"]
