"""Progress and cancellation as plain objects, so the core never needs to know who is watching.

The CLI renders a :class:`Task` with tqdm, the GUI turns it into Qt signals; tests pass a
:class:`Task` that records what it was told.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

ProgressFn = Callable[[int, int, str], None]


class Cancelled(Exception):
    """Raised by :meth:`Task.check` when the user asked to stop."""


class Task:
    """What a long core call reports to, and asks whether to stop."""

    def __init__(self, on_progress: ProgressFn | None = None) -> None:
        self._on_progress = on_progress
        self._cancel = threading.Event()

    def progress(self, done: int, total: int, msg: str = "") -> None:
        if self._on_progress is not None:
            self._on_progress(done, total, msg)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop; call between units of work."""
        if self.cancelled():
            raise Cancelled()

    def part(self, base: int, grand_total: int, label: str = "") -> Task:
        """A task for one part of this job: its progress is offset by ``base`` within
        ``grand_total``, and it is cancelled when this task is."""
        return _PartTask(self, base, grand_total, label)


class _PartTask(Task):
    def __init__(self, parent: Task, base: int, grand_total: int, label: str) -> None:
        super().__init__()
        self._parent, self._base, self._total, self._label = parent, base, grand_total, label

    def progress(self, done: int, total: int, msg: str = "") -> None:
        self._parent.progress(self._base + done, self._total, msg or self._label)

    def cancel(self) -> None:
        self._parent.cancel()

    def cancelled(self) -> bool:
        return self._parent.cancelled()


def process_alive(pid: object) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True
