"""Running the pages of a batch on several threads while the project database is used from one.

A batch runs on its caller's thread, which owns the store it was given (a SQLite connection
belongs to the thread that opened it) and the ``write`` callable. Page threads spend their time
waiting on a teacher; each read or write they need is handed to the caller's thread with
:meth:`CallerThread.call`, and runs there, one at a time, while that thread waits for pages to
end (:meth:`CallerThread.serve`).

Example::

    home = CallerThread()
    future = pool.submit(lambda: home.call(lambda: store.conn.execute("SELECT 1").fetchone()))
    future.add_done_callback(lambda _f: home.wake())
    home.serve(until=future.done)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from studio.progress import Cancelled

T = TypeVar("T")
WAKE_SECONDS = 0.5  # the longest :meth:`CallerThread.serve` sleeps before it looks again


class CallerThread:
    """Runs functions on the thread that made it, for other threads that ask."""

    def __init__(self) -> None:
        self._ident = threading.get_ident()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the caller's thread, and its result or its exception here. Raises
        :class:`Cancelled` once the caller's thread has stopped serving (:meth:`close`)."""
        if threading.get_ident() == self._ident:
            return fn()
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise Cancelled()
            self._jobs.put((fn, future))
        return future.result()

    def serve(self, until: Callable[[], bool]) -> None:
        """Run what other threads ask, in the order asked, until ``until()`` is true (it is
        looked at after each job, after each :meth:`wake`, and every ``WAKE_SECONDS``)."""
        while not until():
            try:
                job = self._jobs.get(timeout=WAKE_SECONDS)
            except queue.Empty:
                continue
            if job is not None:
                _run(*job)

    def wake(self) -> None:
        """Have :meth:`serve` look at its condition now (call it when a page thread ends)."""
        self._jobs.put(None)

    def close(self) -> None:
        """Stop serving: jobs still waiting, and any asked later, raise :class:`Cancelled` in
        the threads that asked, so none of them waits forever."""
        with self._lock:
            self._closed = True
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None and job[1].set_running_or_notify_cancel():
                job[1].set_exception(Cancelled())


def _run(fn: Callable[[], Any], future: Future) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn()
    except Exception as exc:  # the asking thread gets it, as if it had called fn itself
        future.set_exception(exc)
    except BaseException:  # Ctrl+C here: the asker stops too, and this thread raises it
        future.set_exception(Cancelled())
        raise
    else:
        future.set_result(result)
