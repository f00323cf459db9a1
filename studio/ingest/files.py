"""Which files a drop or a command line means: folders expanded, hidden things left out."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path


def path_text(path: Path | str) -> str:
    """A path as text SQLite and a terminal accept: bytes of a name that is not valid UTF-8
    (Python holds them as lone surrogates) are spelled ``\\xff``, so the name stays readable,
    distinct from its neighbours' and stable from one import to the next."""
    text = str(path)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file system name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def iter_input_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, folders expanded recursively in sorted order.

    Hidden files and folders inside a folder are skipped, symlinked folders are followed once
    (a link back up the tree is not), and a file reached twice is yielded once. What cannot be
    imported is yielded too, so the import log says why it was not: a folder that cannot be
    read, a named pipe, a device, a link that leads nowhere or round in a loop.
    """
    seen_files: set[Path] = set()
    seen_dirs: set[tuple[int, int]] = set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from _walk(path, seen_dirs, seen_files)
        elif _first_visit(path, seen_files):
            yield path


def _walk(folder: Path, seen_dirs: set[tuple[int, int]], seen_files: set[Path]) -> Iterator[Path]:
    try:
        info = folder.stat()
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        yield folder  # the importer says why it cannot be read
        return
    if (info.st_dev, info.st_ino) in seen_dirs:
        return
    seen_dirs.add((info.st_dev, info.st_ino))
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if _is_dir(entry):
            yield from _walk(path, seen_dirs, seen_files)
        elif _first_visit(path, seen_files):
            yield path  # a file, or something the importer will explain it cannot import


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def not_a_file(path: Path, mode: int) -> str | None:
    """Why ``path`` (of ``st_mode`` ``mode``) is nothing to read documents from, or None."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        try:
            os.listdir(path)
        except OSError as exc:
            return f"folder cannot be read: {exc.strerror or exc}"
        return "a folder, not a file"
    kind = (
        "a named pipe" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )  # fmt: skip
    return f"{kind}, not a file that holds documents"


def _first_visit(path: Path, seen: set[Path]) -> bool:
    try:
        key = path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python before 3.13)
        key = path.absolute()
    if key in seen:
        return False
    seen.add(key)
    return True
