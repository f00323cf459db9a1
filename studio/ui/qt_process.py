"""A studio command run as a child process that streams JSON lines on stdout.

The command starts with :func:`studio.paths.self_command` (the same executable, also in the
bundle) and ``--own-process-group``, so cancel signals the job's whole group (its worker
processes too) and never the studio. Each JSON line becomes :attr:`JobProcess.event`; stderr and
lines that are no JSON go to the log, whose tail comes with :attr:`JobProcess.ended`.
"""

from __future__ import annotations

import json
import os
import signal
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from studio import paths

LOG_LINES = 400


class JobProcess(QObject):
    """One ``studio ...`` job; ended says how it ended: done | cancelled | failed | crashed."""

    event = Signal(dict)
    log = Signal(str)
    ended = Signal(str, str)  # how it ended, the log tail

    # events too frequent for the log (they still reach :attr:`event`)
    quiet_events: frozenset[str] = frozenset({"progress"})

    def describe(self, event: dict[str, Any], line: str) -> str:
        """How an event reads in the log; a job kind with its own events says it better."""
        return line

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.proc = QProcess(self)
        self.proc.readyReadStandardOutput.connect(self._on_stdout)
        self.proc.readyReadStandardError.connect(self._on_stderr)
        self.proc.finished.connect(self._on_finished)
        self.proc.errorOccurred.connect(self._on_error)
        self.tail: deque[str] = deque(maxlen=LOG_LINES)
        self._buffer = b""
        self.last_state: str | None = None
        self.error: str | None = None  # the job's own {"event": "error"} message
        self.cancelling = False
        self.args: list[str] = []

    def start(self, args: list[str]) -> None:
        command = paths.self_command(*args, "--own-process-group")
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.insert("HF_HUB_OFFLINE", "1")
        self.proc.setProcessEnvironment(env)
        self.args, self.last_state, self.error, self.cancelling = args, None, None, False
        self._buffer = b""
        self.tail.clear()
        self._add_log("$ studio " + " ".join(args))
        self.proc.start(command[0], command[1:])

    def running(self) -> bool:
        return self.proc.state() != QProcess.ProcessState.NotRunning

    def pid(self) -> int:
        return int(self.proc.processId())

    def cancel(self) -> None:
        """SIGTERM to the job's process group: the job stops at its next step and exits."""
        if not self.running():
            return
        self.cancelling = True
        pid = self.pid()
        if hasattr(os, "killpg") and pid > 0:
            try:
                if os.getpgid(pid) == pid:  # the job has made its own group
                    os.killpg(pid, signal.SIGTERM)
                    return
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.terminate()

    def stop_and_wait(self, msecs: int = 20_000) -> None:
        if self.running():
            self.cancel()
            if not self.proc.waitForFinished(msecs):
                self.proc.kill()
                self.proc.waitForFinished(2000)

    def _add_log(self, line: str) -> None:
        self.tail.append(line)
        self.log.emit(line)

    def _on_stdout(self) -> None:
        self._buffer += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                event: Any = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                self._add_log(line)
                continue
            kind = event.get("event")
            if kind == "end":
                self.last_state = event.get("state")
                if event.get("error"):  # studio train's failed end line says why
                    self.error = str(event["error"])
            elif kind == "error":
                self.error = str(event.get("message", ""))
            if kind not in self.quiet_events:
                self._add_log(self.describe(event, line))
            self.event.emit(event)

    def _on_stderr(self) -> None:
        text = bytes(self.proc.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                self._add_log(line)

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._on_stdout()
        if status == QProcess.ExitStatus.CrashExit:
            state = "cancelled" if self.cancelling else "crashed"
            self._add_log(f"the job ended abruptly (exit code {code})")
        elif code == 0:
            state = self.last_state or "done"
        else:
            state = "cancelled" if self.cancelling and self.error is None else "failed"
        self.ended.emit(state, "\n".join(self.tail))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._add_log(f"could not start the job: {self.proc.errorString()}")
            self.ended.emit("failed", "\n".join(self.tail))
