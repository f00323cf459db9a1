"""A project is a folder: ``studio.db`` (SQLite, WAL) plus the project's models, runs and exports.

The studio starts on a default project under the user's data directory, and remembers the
projects a curator opened recently.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import tempfile
from pathlib import Path

import platformdirs

from studio.paths import expand_home
from studio.store import Store, read_only_uri
from studio.text import shown_path

APP_NAME = "textbook-studio"
DB_NAME = "studio.db"
SUBDIRS = ("models", "runs", "exports")
MAX_RECENT = 10


# what sqlite-utils' migrations keep in a database before any migration of theirs has run
MIGRATION_BOOKKEEPING = frozenset(
    {"_sqlite_migrations", "idx__sqlite_migrations_migration_set_name"}
)


MAX_NAME_BYTES = 255  # a file or folder name, on every common file system


def _in_a_loop(link: Path) -> bool:
    """True when following ``link`` leads back to a link on the way (stat says ELOOP)."""
    try:
        os.stat(link)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


class ProjectError(Exception):
    """A folder that is not, and cannot become, a project."""


class Project:
    """A project folder. Creating one lays out the folder and the database's schema."""

    def __init__(self, root: Path | str) -> None:
        self.root = expand_home(root).resolve()

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def name(self) -> str:
        return self.root.name

    def dir(self, name: str) -> Path:
        return self.root / name

    @classmethod
    def open(cls, root: Path | str, *, create: bool = True) -> Project:
        """Open the project at ``root``, creating it (folder, subfolders, schema) if asked."""
        given = expand_home(root)
        try:
            long = next((p for p in given.parts if len(os.fsencode(p)) > MAX_NAME_BYTES), None)
            if long is not None:  # refused before any folder on the way is made
                raise ProjectError(
                    f"cannot open a project at {shown_path(given)}: a folder name is at most "
                    f"{MAX_NAME_BYTES} bytes, and {shown_path(long[:40])}... has "
                    f"{len(os.fsencode(long)):,}"
                )
            for link in (given, *given.parents):  # nothing made where a stale link points
                if link.is_symlink() and not link.exists():
                    target = os.readlink(link)
                    if _in_a_loop(link):
                        raise ProjectError(
                            f"{shown_path(link)} is a link in a loop of links (to "
                            f"{shown_path(target)}): point it at a folder, or give the folder "
                            "itself"
                        )
                    raise ProjectError(
                        f"{shown_path(link)} is a link to {shown_path(target)}, "
                        "which does not exist: point it at a folder, or give the folder itself"
                    )
            project = cls(given)
            if project.root.exists() and not project.root.is_dir():
                raise ProjectError(f"{shown_path(project.root)} is a file, not a project folder")
        except OSError as exc:  # a name too long for the file system, a folder not ours to see
            raise ProjectError(
                f"cannot open a project at {shown_path(given)}: {exc.strerror or exc}"
            ) from exc
        if not project.db_path.exists() and not create:
            raise ProjectError(
                f"{shown_path(project.root)} is not a Textbook Studio project (no {DB_NAME})"
            )
        if project.db_path.exists():
            project._check_is_ours()
        try:
            project.root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                project.dir(sub).mkdir(exist_ok=True)
            # opening the store applies any pending migrations
            project.store().close()
        except OSError as exc:
            raise ProjectError(
                f"cannot create a project in {project.root}: {exc.strerror}"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise ProjectError(damaged(project.db_path, exc)) from exc
        return project

    def check_writable(self, what: str, *folders: str) -> None:
        """Refuse, before a long job, a project whose folder (or the ``folders`` in it the job
        writes to) or database cannot be written (read-only media, permissions, a read-only
        bind of studio.db alone): ``what`` the job makes would otherwise be lost at its end.
        Nothing is changed: a file is made and removed in each folder; the database's files
        are asked about, not opened."""

        def refused(path: Path, exc: OSError) -> ProjectError:
            return ProjectError(
                f"{shown_path(path)} cannot be written ({exc.strerror or exc}), so {what} "
                "could not be stored: nothing was done"
            )

        for folder in (self.root, *(self.root / f for f in folders)):
            while not folder.exists() and folder != self.root:  # made by the job, not by this
                folder = folder.parent
            try:
                fd, name = tempfile.mkstemp(dir=folder, prefix=".write-check-")
                os.close(fd)
                os.unlink(name)
            except OSError as exc:
                raise refused(folder, exc) from exc
        # access(2), never open(2): closing any descriptor of studio.db drops every lock this
        # process's SQLite connections hold on it (POSIX locks are per process)
        for file in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal")):
            if os.path.exists(file) and not os.access(file, os.W_OK):
                read_only = os.statvfs(file).f_flag & os.ST_RDONLY
                code = errno.EROFS if read_only else errno.EACCES
                raise refused(file, OSError(code, os.strerror(code)))

    def _check_is_ours(self) -> None:
        """Refuse, before anything is written, a ``studio.db`` that is no studio database: a
        folder, or another program's SQLite file (migrating it would add the studio's tables
        to it). An empty file, or one holding only the migrations' bookkeeping, is a new
        project's: another studio creating this project at the same moment makes that table
        (in a commit of its own) before the first migration and its record commit together."""
        if not self.db_path.is_file():
            raise ProjectError(
                f"{shown_path(self.db_path)} is not a file: this is not a project folder"
            )
        if self.db_path.stat().st_size == 0:
            held = self._held_files()
            if held:  # a database cut to nothing: a new schema in it would hide the loss
                raise ProjectError(
                    f"{shown_path(self.db_path)} is empty (0 bytes), but the project holds "
                    f"{held}: its database was lost or cut short. Restore studio.db from a "
                    "backup, or move the folder's files away to start a new project there; "
                    "nothing was changed"
                )
            return
        try:
            con = sqlite3.connect(read_only_uri(self.db_path), uri=True)
            try:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
                ours = (
                    "_sqlite_migrations" in tables
                    and con.execute(
                        "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'studio' LIMIT 1"
                    ).fetchone()
                )
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            raise ProjectError(damaged(self.db_path, exc)) from exc
        others = tables - MIGRATION_BOOKKEEPING
        if others and not ours:
            shown = ", ".join(sorted(others)[:5]) + (" …" if len(others) > 5 else "")
            raise ProjectError(
                f"{shown_path(self.db_path)} is a SQLite database of another program "
                f"(tables: {shown}), not a Textbook Studio project; nothing was changed"
            )

    def _held_files(self) -> str | None:
        """The first file under the project's subfolders, as a relative path, if any."""
        for sub in SUBDIRS:
            found = next((p for p in self.dir(sub).rglob("*") if p.is_file()), None)
            if found is not None:
                return found.relative_to(self.root).as_posix()
        return None

    def store(self, *, readonly: bool = False) -> Store:
        """A new connection to the project's database (one per thread)."""
        return Store(self.db_path, readonly=readonly)


def damaged(db_path: Path | None, exc: Exception) -> str:
    """What to tell a curator whose project database SQLite refused. A database that is busy
    (another command holds its write lock past the 10-second wait), read-only, or on a full
    disk is healthy, and is not called damaged: moving it aside would lose a good project."""
    # without a path the command was under way: what it committed before the failure stays
    where = str(db_path) if db_path is not None else "the project database"
    kept = "nothing was changed" if db_path is not None else "what was saved before stays"
    said = str(exc).lower()
    if "locked" in said or "busy" in said:
        return (
            f"{where} is busy: another studio or command has been writing to it for more than "
            f"10 seconds ({exc}); {kept}. Run this again when that one has finished"
        )
    if "readonly" in said or "read-only" in said:
        return (
            f"{where} is read-only ({exc}); {kept}. This needs to write to it: check the "
            "permissions of the file and its folder"
        )
    if "full" in said or "disk i/o" in said:
        return f"cannot write {where} ({exc}): check the free space and the disk; {kept}"
    return (
        f"{where} is damaged or is not a Textbook Studio database ({exc}); {kept}. Restore it "
        "from a backup, or move it aside and import the corpus again"
    )


# -- the default project and recent projects ---------------------------------------------------


def data_dir() -> Path:
    override = os.environ.get("STUDIO_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


def default_project_path() -> Path:
    return data_dir() / "projects" / "default"


def _recent_file() -> Path:
    return data_dir() / "recent.json"


def recent_projects() -> list[Path]:
    """Projects opened lately, newest first, those that still exist."""
    try:
        items = json.loads(_recent_file().read_text("utf-8"))
    except (OSError, ValueError):
        return []
    paths = [Path(p) for p in items if isinstance(p, str)]
    return [p for p in paths if (p / DB_NAME).exists()]


def remember_project(root: Path) -> None:
    paths = [root.resolve(), *[p for p in recent_projects() if p != root.resolve()]]
    target = _recent_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps([str(p) for p in paths[:MAX_RECENT]], indent=1), "utf-8")
    tmp.replace(target)
