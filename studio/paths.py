"""One place that finds the studio's shipped files, in a source tree, an install or a bundle,
and reads a curator's small input files without trusting what is at the path."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path


def frozen() -> bool:
    """True inside the PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False))


def _root() -> Path:
    if frozen():
        return Path(sys._MEIPASS)
    here = Path(__file__).resolve().parent
    # an editable install or a source checkout keeps resources/ and models/ beside studio/;
    # a wheel install carries them inside the package as studio/_data/
    data = here / "_data"
    return data if data.is_dir() else here.parent


def resource(*parts: str) -> Path:
    """A file under ``resources/`` (prompts, rubric, stylesheet, icons)."""
    return _root().joinpath("resources", *parts)


def model(*parts: str) -> Path:
    """A file under ``models/`` (the models the studio ships)."""
    return _root().joinpath("models", *parts)


def package_dir(name: str) -> Path | None:
    """The folder of an installed package that ships data (a model, a benchmark), found without
    importing it; in the bundle, the copy of its data collected beside the studio."""
    if frozen():
        folder = Path(sys._MEIPASS) / name
        return folder if folder.is_dir() else None
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def expand_home(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``~`` or ``~user`` made the home folder; a ``~name`` this machine
    has no user for stays as written, as the shell leaves it (``Path.expanduser`` raises
    RuntimeError there: a project copied from a colleague's machine named ``~alice/...``)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def self_command(*args: str) -> list[str]:
    """The command line that runs ``studio ARGS...`` as a child process: the same executable,
    in a source install (``python -m studio``) and in the bundle (no ``-m`` there)."""
    if frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "studio", *args]


def require_regular_file(path: str | os.PathLike[str], shown: str | None = None) -> None:
    """Raise ``ValueError`` when ``path`` is a device, pipe or folder, before anything opens it:
    opening a pipe waits for a writer, and a device such as ``/dev/zero`` never ends (its size
    says 0). ``shown`` is how the message names it (default: the path). ``OSError`` (missing,
    unreadable) passes through."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"{shown or path} is not a regular file (a device, pipe or folder)")


def read_small_file(path: Path, limit: int) -> bytes:
    """A curator's small input file (a taxonomy, a phrase list) whole: a device, pipe or folder
    in its place, or more than ``limit`` bytes, raise ``ValueError`` saying so; never read
    without end or wait on a pipe. ``OSError`` passes through."""
    path = Path(path)
    require_regular_file(path, path.name)
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path.name} holds more than {limit:,} bytes")
    return data
