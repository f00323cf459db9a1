"""Locks that keep two processes of the studio off the same job (a generation batch resumed in
a second terminal while the first still writes it).

A lock is ``flock`` on a file under the project's ``locks/`` folder: the system releases it when
its holder ends, however it ends (killed, crashed), so a lock is never left stale. Where the
platform has no ``flock``, or the folder cannot be written (a read-only project, whose writes
fail on their own), the job runs unlocked.

Example::

    with exclusive(project.root, "generate-batch-9", "batch 9"):
        run_the_batch()
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
FOLDER = "locks"


class Busy(Exception):
    """Another process holds the lock."""


@contextmanager
def exclusive(project_root: Path, name: str, what: str) -> Iterator[None]:
    """Hold the lock ``name`` for the block; :class:`Busy` names ``what`` when it is held."""
    path = Path(project_root) / FOLDER / f"{name}.lock"
    try:
        path.parent.mkdir(exist_ok=True)
        handle = path.open("a")
    except OSError as exc:  # a read-only project says so at its first write: no word here
        level = logging.DEBUG if exc.errno == errno.EROFS else logging.WARNING
        log.log(level, "running %s without a lock (%s)", what, exc)
        yield
        return
    with handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Busy(
                    f"{what} is being run by another process of the studio (a second window or "
                    "terminal): let it finish, or stop it, before you start it here"
                ) from None
        yield  # closing the file releases the lock
