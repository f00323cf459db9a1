"""What the commands share: opening a project, progress bars, JSON output."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from studio.progress import Task
from studio.store import MAX_INTEGER
from studio.text import INVISIBLE, abbreviated, visible


class IntRange(click.IntRange):
    """An integer option's range whose message for a value that is not a number says so
    ("'abc' is not a valid integer"; click's own says "integer range")."""

    name = "integer"


class ProjectFolder(click.Path):
    """The PROJECT argument, said in a curator's words where click would say "Directory 'x' is
    a file": ``exists`` for the commands that work on an existing project; without it (init,
    import, generate, demo) a missing folder is made into a project."""

    name = "project"

    def __init__(self, exists: bool = True) -> None:
        super().__init__(file_okay=False, exists=exists)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = os.fspath(value)
        shown = visible(abbreviated(path, 300))
        if not path.strip():  # a shell variable left unset: not the current folder
            self.fail("no project folder given (the path is empty)", param, ctx)
        if os.path.exists(path) and not os.path.isdir(path):
            self.fail(f"{shown} is a file, not a project folder", param, ctx)
        if self.exists and not os.path.exists(path):  # nothing there, or a link to nothing
            self.fail(f"no project folder at {shown} (studio init makes one)", param, ctx)
        return super().convert(value, param, ctx)


PROJECT = ProjectFolder()
NEW_PROJECT = ProjectFolder(exists=False)  # made when it is not there


SEED = IntRange(0, 2**32 - 1)  # what numpy's and torch's generators take


class FiniteRange(click.FloatRange):
    """A float option's range that also refuses nan and inf: click's range lets nan through
    (every comparison with it is false), and a threshold of nan keeps nothing, silently."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def named_version(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --model option's callback: an empty name is a mistake (a shell variable left unset),
    not a request for the latest version, which is named 'latest' or left out."""
    if value is not None and not value.strip():
        raise click.BadParameter("name a classifier version, or 'latest', not an empty string")
    if value is not None and (len(value) > MAX_VERSION_NAME or INVISIBLE.search(value)):
        shown = visible(abbreviated(value, 40))
        raise click.BadParameter(
            f"{shown} is not a version name (versions are named like 0003-tfidf-logistic)"
        )
    return value


def version_option(help: str = "Classifier version (default: the latest).") -> Any:
    """``--model VERSION``: a classifier version, by id or 'latest' (never empty)."""
    return click.option("--model", "version", default=None, callback=named_version, help=help)


STOPPED = 130  # the exit status of a job stopped by Ctrl-C or SIGTERM, as a shell reports one
MAX_VERSION_NAME = 100  # characters; versions are named 0003-tfidf-logistic
ROW_ID = IntRange(1, MAX_INTEGER)  # a document, page or batch id SQLite can hold
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
threshold_option = click.option(
    "--threshold",
    type=FiniteRange(0, 5),
    default=3.0,
    show_default=True,
    help="Keep pages whose score is at least this.",
)


def open_project(path: str, *, create: bool = True):  # -> Project (typed loosely: lazy import)
    from studio.project import Project, ProjectError

    if not path.strip():  # a shell variable left unset: not the current folder
        raise click.ClickException("no project folder given (the path is empty)")
    try:
        return Project.open(Path(path), create=create)
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from exc


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@contextmanager
def cli_task(description: str, *, unit: str = "B") -> Iterator[Task]:
    """A :class:`Task` drawn as a tqdm bar on stderr (silent when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(
        total=0,
        desc=description,
        unit=unit,
        unit_scale=True,
        disable=not sys.stderr.isatty(),
        leave=False,
    )

    def on_progress(done: int, total: int, msg: str) -> None:
        bar.total = total
        bar.n = done
        if msg:
            bar.set_postfix_str(msg[-40:], refresh=False)
        bar.refresh()

    try:
        yield Task(on_progress)
    finally:
        bar.close()


# -- jobs the studio starts as child processes (studio train, studio score) --------------------


@contextmanager
def stop_on_signals(task: Task) -> Iterator[None]:
    """SIGTERM (the studio's cancel button) and Ctrl-C ask the job to stop at the next step."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: task.cancel())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) ends a command that writes files as Ctrl-C does,
    so its way out runs: a half-written export or import is removed, a transaction rolls back.
    (By default SIGTERM ends the process where it stands.) Not for the studio's window, which
    SIGTERM still closes at once, nor for jobs with :func:`stop_on_signals`."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:  # after the inner contexts rolled back: said, and exit 130
        click.echo("stopped (Ctrl-C or SIGTERM): what was finished before stays", err=True)
        raise SystemExit(STOPPED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def own_process_group_if(wanted: bool) -> None:
    """The studio starts a job in a process group of its own, so that its cancel signals the
    job's whole group (and never the studio's)."""
    if wanted and hasattr(os, "setpgid"):
        os.setpgid(0, 0)
