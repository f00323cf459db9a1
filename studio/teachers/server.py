"""llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1, started and
stopped by the studio: the reference server for ``studio bench teacher`` and the tests.

It runs from a Python install (``-m``), not from the bundled executable.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from studio.teachers.base import TeacherError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServerProcess:
    """One GGUF served on 127.0.0.1; ``url`` is the OpenAI base URL (``.../v1``), ``alias`` the
    model name it answers to. Ready when the constructor returns; ``kill()`` ends it at once."""

    def __init__(
        self,
        model: Path | str,
        *,
        alias: str = "tiny",
        n_ctx: int = 4096,
        n_threads: int = 1,
        port: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.model, self.alias = Path(model), alias
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(n_ctx),
            "--n_threads", str(n_threads), "--n_threads_batch", str(n_threads),
            # by default a new request cuts off the one being streamed: not what a client that
            # sends several at once (the studio's concurrency setting) expects
            "--interrupt_requests", "False",
        ]  # fmt: skip
        # a file, not a pipe: nobody reads the server's log while it runs, and a full pipe
        # would stall it
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode("utf-8", "replace").strip()
                last = err.splitlines()[-1] if err else ""
                self._log.close()
                raise TeacherError(f"llama_cpp.server exited ({self.process.returncode}): {last}")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise TeacherError(f"llama_cpp.server did not answer on {self.url} in {timeout:.0f} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self._log.close()

    def __enter__(self) -> LlamaServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
