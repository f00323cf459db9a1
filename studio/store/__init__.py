"""The project database: documents, their provenance, the import log and curators' corrections.

One :class:`Store` is one SQLite connection (WAL). A thread opens its own; writes from the GUI go
through a single writer thread, so SQLite never sees two writers at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from studio.progress import process_alive
from studio.store.queries import (
    LIST_COLUMNS,
    DocumentQuery,
    from_clause,
    label_mean,
    order_clause,
    where_clause,
)
from studio.store.schema import SLOW, migrations

log = logging.getLogger("studio.store")
# SQLite's largest integer: a larger id names no row, and cannot even be bound to a query
MAX_INTEGER = 2**63 - 1

__all__ = ["DamagedRow", "DocumentQuery", "DocumentRecord", "NewDocument", "Store", "now"]


INTERRUPTED = (
    "the import stopped before this file was done (its process ended: killed, crashed or the "
    "machine went down); nothing of this file was kept, as a file is stored whole or not at "
    "all, and the files before it are kept: importing it again reads it whole"
)


def _owner_gone(pid: int | None, host: str | None) -> bool:
    """Whether the process that ran an import has ended. One on another machine (a project on
    a shared drive) cannot be asked and counts as live; an import from before the studio
    recorded its process has ended (that studio is no longer running)."""
    if pid is None:
        return True
    return host == socket.gethostname() and not process_alive(pid)


class DamagedRow(LookupError):
    """A stored row whose bytes cannot be read back: it was changed outside the studio."""


def _in_chunks(ids: list[int], size: int = 500) -> Iterator[tuple[list[int], str]]:
    """``ids`` in slices small enough for one ``IN (?, ...)`` each, with their placeholders."""
    for i in range(0, len(ids), size):
        chunk = ids[i : i + size]
        yield chunk, ",".join("?" * len(chunk))


def on_read_only_media(path: Path) -> bool:
    """True when ``path``'s folder is on a file system mounted read-only (a CD, a read-only
    share): SQLite cannot make the WAL's shared-memory file there, so the database is opened
    as immutable, which nothing on that mount can change."""
    try:
        return bool(os.statvfs(Path(path).absolute().parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows), or no such folder
        return False


def read_only_uri(path: Path) -> str:
    """The URI that opens ``path`` for reading only (immutable on read-only media)."""
    frozen = "&immutable=1" if on_read_only_media(path) else ""
    return f"{Path(path).absolute().as_uri()}?mode=ro{frozen}"


def _use_wal(conn: sqlite3.Connection, wait_s: float = 10.0) -> None:
    """Switch to WAL. While another process is making the same new database, SQLite answers
    the switch with 'database is locked' at once, without waiting the busy timeout: a studio
    and a CLI command opening a new project together would fail, so it is tried again for a
    while."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply pending migrations, one process at a time: two studios (or a studio and a CLI
    command) opening a project together would otherwise both try the same migration."""
    db = Database(conn)
    if not migrations.pending(db):
        return
    with open(path.with_name(path.name + ".migrate-lock"), "a+b") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # no flock here: fall back on checking again after a failure
            pass
        slow = [SLOW[m.name] for m in migrations.pending(db) if m.name in SLOW]
        if slow and "documents" in db.table_names() and _holds_pages(conn):
            log.warning(
                "Updating the project %s for this version of the studio: %s, once (about "
                "100 s for a million pages).",
                path.parent,
                ", ".join(slow),
            )
        try:
            migrations.apply(db)
        except sqlite3.OperationalError as exc:
            if not migrations.pending(db):
                return  # a race another process already won
            if "readonly" in str(exc).lower():  # say why opening it writes at all
                raise sqlite3.OperationalError(
                    f"{exc}: a project made by an earlier version of the studio is updated "
                    "when it is first opened"
                ) from exc
            raise


def _holds_pages(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchone()[0])


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class NewDocument:
    """A document ready to store: read, hashed, segmented and identified."""

    source_id: int
    content_hash: str
    kind: str
    raw: str
    main_text: str
    n_words: int
    signal_words: int
    url: str | None = None
    title: str | None = None
    fetch_date: str | None = None
    locator: dict[str, Any] | None = None
    lang: str | None = None
    lang_score: float | None = None
    segmenter: str | None = None
    warnings: list[str] | None = None


@dataclass(slots=True)
class DocumentRecord:
    """A stored document's row, as the document view shows it."""

    id: int
    kind: str
    url: str | None
    title: str | None
    fetch_date: str | None
    locator: dict[str, Any]
    lang: str | None
    lang_score: float | None
    n_bytes: int
    n_words: int
    signal_words: int
    signal_share: float
    segmenter: str | None
    warnings: list[str]
    imported_at: str
    source_path: str
    source_format: str | None


class Store:
    """One connection to a project database. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        # on read-only media every connection reads only: a write then fails as "read-only"
        readonly = readonly or on_read_only_media(self.path)
        if readonly:
            self.conn = sqlite3.connect(read_only_uri(self.path), uri=True, isolation_level=None)
        else:
            self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 10000")
        self.conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            _use_wal(self.conn)
            self.conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(self.conn, self.path)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: what happens inside is committed together or not at all."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- imports ------------------------------------------------------------------------------

    def begin_import(self) -> int:
        cur = self.conn.execute(
            "INSERT INTO imports(started_at, pid, host) VALUES (?, ?, ?)",
            (now(), os.getpid(), socket.gethostname()),
        )
        return int(cur.lastrowid or 0)

    def finish_import(self, import_id: int, status: str) -> None:
        self.conn.execute(
            "UPDATE imports SET finished_at = ?, status = ? WHERE id = ?",
            (now(), status, import_id),
        )

    def add_source(
        self, import_id: int, path: str, size: int | None, mtime: float | None, fmt: str | None
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO sources(import_id, path, size, mtime, format, status, started_at) "
            "VALUES (?, ?, ?, ?, ?, 'running', ?)",
            (import_id, path, size, mtime, fmt, now()),
        )
        return int(cur.lastrowid or 0)

    def finish_source(
        self,
        source_id: int,
        *,
        status: str,
        imported: int = 0,
        duplicates: int = 0,
        failed: int = 0,
        reason: str | None = None,
        errors: list[str] | None = None,
        fmt: str | None = None,
    ) -> None:
        self.conn.execute(
            "UPDATE sources SET status = ?, imported = ?, duplicates = ?, failed = ?, reason = ?, "
            "errors = ?, format = COALESCE(?, format), finished_at = ? WHERE id = ?",
            (
                status,
                imported,
                duplicates,
                failed,
                reason,
                json.dumps(errors) if errors else None,
                fmt,
                now(),
                source_id,
            ),
        )

    def imported_before(self, path: str, size: int, mtime: float) -> bool:
        """True when this very file (same path, size and time) was fully imported already."""
        row = self.conn.execute(
            "SELECT 1 FROM sources WHERE path = ? AND size = ? AND mtime = ? "
            "AND status = 'imported' AND failed = 0 LIMIT 1",
            (path, size, mtime),
        ).fetchone()
        return row is not None

    def import_log(self, import_id: int | None = None) -> list[dict[str, Any]]:
        """Every file an import looked at (or one import's). A file still marked running by
        a process that is gone reads ``interrupted`` (its transaction never committed)."""
        sql = (
            "SELECT s.id, s.import_id, s.path, s.format, s.status, s.imported, s.duplicates, "
            "s.failed, s.reason, s.errors, s.started_at, s.finished_at, i.pid, i.host "
            "FROM sources s LEFT JOIN imports i ON i.id = s.import_id"
        )
        args: tuple[Any, ...] = ()
        if import_id is not None:
            sql += " WHERE s.import_id = ?"
            args = (import_id,)
        rows = []
        for r in self.conn.execute(sql + " ORDER BY s.id", args):
            row = dict(r)
            pid, host = row.pop("pid"), row.pop("host")
            row["errors"] = json.loads(row["errors"]) if row["errors"] else []
            if row["status"] == "running" and _owner_gone(pid, host):
                row["status"], row["reason"] = "interrupted", INTERRUPTED
            rows.append(row)
        return rows

    # -- documents ----------------------------------------------------------------------------

    def has_hash(self, content_hash: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM documents WHERE content_hash = ?", (content_hash,)
        ).fetchone()
        return row is not None

    def insert_document(self, doc: NewDocument) -> int | None:
        """Store a document; ``None`` when an identical one is already stored."""
        raw = doc.raw.encode("utf-8", "surrogatepass")
        share = doc.signal_words / doc.n_words if doc.n_words else 0.0
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO documents(source_id, content_hash, kind, url, title, fetch_date,"
            " locator, lang, lang_score, n_bytes, n_words, signal_words, signal_share, segmenter,"
            " warnings, imported_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                doc.source_id,
                doc.content_hash,
                doc.kind,
                doc.url,
                doc.title,
                doc.fetch_date,
                json.dumps(doc.locator or {}),
                doc.lang,
                doc.lang_score,
                len(raw),
                doc.n_words,
                doc.signal_words,
                share,
                doc.segmenter,
                json.dumps(doc.warnings) if doc.warnings else None,
                now(),
            ),
        )
        if cur.rowcount == 0:
            return None
        doc_id = int(cur.lastrowid or 0)
        self.conn.execute(
            "INSERT INTO document_raw(doc_id, raw) VALUES (?, ?)", (doc_id, zlib.compress(raw, 6))
        )
        self._write_text(doc_id, doc.title, doc.main_text)
        return doc_id

    def _write_text(self, doc_id: int, title: str | None, main_text: str) -> None:
        self.conn.execute(
            "INSERT INTO document_text(doc_id, title, main_text) VALUES (?, ?, ?)",
            (doc_id, title, main_text),
        )
        self.conn.execute(
            "INSERT INTO document_fts(rowid, title, main_text) VALUES (?, ?, ?)",
            (doc_id, title, main_text),
        )

    def _replace_text(self, doc_id: int, main_text: str) -> None:
        old = self.conn.execute(
            "SELECT title, main_text FROM document_text WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if old is not None:
            self.conn.execute(
                "INSERT INTO document_fts(document_fts, rowid, title, main_text) "
                "VALUES ('delete', ?, ?, ?)",
                (doc_id, old["title"], old["main_text"]),
            )
            self.conn.execute("DELETE FROM document_text WHERE doc_id = ?", (doc_id,))
        self._write_text(doc_id, old["title"] if old else None, main_text)

    def document(self, doc_id: int) -> DocumentRecord | None:
        r = self.conn.execute(
            "SELECT d.*, s.path AS source_path, s.format AS source_format FROM documents d "
            "JOIN sources s ON s.id = d.source_id WHERE d.id = ?",
            (doc_id,),
        ).fetchone()
        if r is None:
            return None
        return DocumentRecord(
            id=r["id"],
            kind=r["kind"],
            url=r["url"],
            title=r["title"],
            fetch_date=r["fetch_date"],
            locator=json.loads(r["locator"] or "{}"),
            lang=r["lang"],
            lang_score=r["lang_score"],
            n_bytes=r["n_bytes"],
            n_words=r["n_words"],
            signal_words=r["signal_words"],
            signal_share=r["signal_share"],
            segmenter=r["segmenter"],
            warnings=json.loads(r["warnings"]) if r["warnings"] else [],
            imported_at=r["imported_at"],
            source_path=r["source_path"],
            source_format=r["source_format"],
        )

    def raw(self, doc_id: int) -> str:
        """The page as imported ('' when none is stored); :class:`DamagedRow` when the stored
        bytes cannot be read back (changed by hand or by another program)."""
        row = self.conn.execute(
            "SELECT raw FROM document_raw WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            return ""
        try:
            return zlib.decompress(row[0]).decode("utf-8", "surrogatepass")
        except (zlib.error, TypeError, UnicodeDecodeError) as exc:
            raise DamagedRow(
                f"the stored page of document {doc_id} cannot be read ({exc}); importing its "
                "file again into a new project restores it"
            ) from exc

    def main_text(self, doc_id: int) -> str:
        row = self.conn.execute(
            "SELECT main_text FROM document_text WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        return (row[0] or "") if row else ""

    # -- the corpus view ------------------------------------------------------------------------

    def last_document_id(self) -> int:
        """The newest document's id (0 in an empty project)."""
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM documents").fetchone()[0])

    def count_documents(self, q: DocumentQuery) -> int:
        where, args = where_clause(q)
        sql = f"SELECT count(*) FROM {from_clause(q)}{where}"
        return int(self.conn.execute(sql, args).fetchone()[0])

    def document_ids(
        self, q: DocumentQuery | None = None, offset: int = 0, limit: int = -1
    ) -> list[int]:
        """Ids of the documents ``q`` selects (default: all), in its order (``limit`` -1: all)."""
        q = q or DocumentQuery()
        where, args = where_clause(q)
        sql = f"SELECT d.id FROM {from_clause(q)}{where}{order_clause(q)} LIMIT ? OFFSET ?"
        return [r[0] for r in self.conn.execute(sql, [*args, limit, offset])]

    def list_documents(self, q: DocumentQuery, offset: int, limit: int) -> list[sqlite3.Row]:
        """One page of the corpus view. The ids are found first, on the sort column's index
        alone (a deep offset skips index entries, not rows), then only those rows are read."""
        ids = self.document_ids(q, offset, limit)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            f"SELECT {LIST_COLUMNS}, "
            "(SELECT score FROM classifier_scores WHERE doc_id = d.id AND version = ?) AS score, "
            f"(SELECT {label_mean()} FROM labels WHERE doc_id = d.id) AS label "
            f"FROM documents d JOIN sources s ON s.id = d.source_id WHERE d.id IN ({marks})",
            [q.score_version, *ids],
        ).fetchall()
        by_id = {r["id"]: r for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def sources(self) -> list[sqlite3.Row]:
        """Files that contributed documents, for the source filter."""
        return self.conn.execute(
            "SELECT s.id, s.path, s.format, count(d.id) AS n FROM sources s "
            "JOIN documents d ON d.source_id = s.id GROUP BY s.id ORDER BY s.path"
        ).fetchall()

    def languages(self) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT lang, count(*) FROM documents GROUP BY lang ORDER BY count(*) DESC"
        )
        return [(r[0] or "und", r[1]) for r in rows]

    def totals(self) -> dict[str, Any]:
        """Documents, words, and how much of the words are signal, over the whole corpus."""
        total, words, signal = self.conn.execute(
            "SELECT count(*), coalesce(sum(n_words), 0), coalesce(sum(signal_words), 0) "
            "FROM documents"
        ).fetchone()
        return {
            "documents": total,
            "words": words,
            "signal_words": signal,
            "signal_share": (signal / words) if words else 0.0,
        }

    def summary(self) -> dict[str, Any]:
        """What the project holds, for ``studio info`` and the corpus header."""
        c = self.conn
        by_kind = dict(c.execute("SELECT kind, count(*) FROM documents GROUP BY kind").fetchall())
        by_format = dict(
            c.execute(
                "SELECT coalesce(s.format, '?'), count(*) FROM documents d "
                "JOIN sources s ON s.id = d.source_id GROUP BY s.format"
            ).fetchall()
        )
        by_source = {r["path"]: r["n"] for r in self.sources()}
        files = dict(c.execute("SELECT status, count(*) FROM sources GROUP BY status").fetchall())
        if files.get("running"):  # as the import log reads them: a dead import's are interrupted
            running = files.pop("running")
            gone = sum(1 for row in self.import_log() if row["status"] == "interrupted")
            files.update(
                {k: v for k, v in {"running": running - gone, "interrupted": gone}.items() if v}
            )
        return {
            **self.totals(),
            "by_kind": by_kind,
            "by_format": by_format,
            "by_source": by_source,
            "by_language": dict(self.languages()),
            "files": files,
            "corrections": c.execute("SELECT count(*) FROM block_corrections").fetchone()[0],
            "labels": self.label_summary(),
        }

    # -- curators' corrections to segmentation --------------------------------------------------

    def corrections(self, doc_id: int) -> dict[str, str]:
        """locator -> label the curator gave, for one document."""
        rows = self.conn.execute(
            "SELECT locator, label FROM block_corrections WHERE doc_id = ?", (doc_id,)
        )
        return {r[0]: r[1] for r in rows}

    def correct_block(
        self,
        doc_id: int,
        *,
        locator: str,
        text: str,
        label: str,
        model_label: str,
        features: dict[str, Any] | None,
        annotator: str | None,
        main_text: str,
        signal_words: int,
    ) -> None:
        """Store a curator's label for one block, and the document's main text that follows."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO block_corrections(doc_id, locator, text, label, model_label, "
                "features, annotator, created_at) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(doc_id, locator) DO UPDATE SET label = excluded.label, "
                "annotator = excluded.annotator, created_at = excluded.created_at",
                (
                    doc_id,
                    locator,
                    text,
                    label,
                    model_label,
                    json.dumps(features) if features else None,
                    annotator,
                    now(),
                ),
            )
            self.conn.execute(
                "UPDATE documents SET signal_words = ?, "
                "signal_share = CASE WHEN n_words > 0 THEN ? * 1.0 / n_words ELSE 0 END "
                "WHERE id = ?",
                (signal_words, signal_words, doc_id),
            )
            self._replace_text(doc_id, main_text)

    def segmentation_corrections(self) -> list[dict[str, Any]]:
        """Every block label a curator gave: training data for the segmenter."""
        rows = self.conn.execute(
            "SELECT c.*, d.url FROM block_corrections c JOIN documents d ON d.id = c.doc_id "
            "ORDER BY c.created_at"
        )
        return [dict(r) for r in rows]

    # -- labels ----------------------------------------------------------------------------------

    def set_label(
        self,
        doc_id: int,
        annotator: str,
        score: int,
        note: str | None = None,
        created_at: str | None = None,
    ) -> None:
        """A curator's score for one document (their earlier score for it is replaced)."""
        self.conn.execute(
            "INSERT INTO labels(doc_id, annotator, score, note, created_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(doc_id, annotator) DO UPDATE SET score = excluded.score, "
            "note = excluded.note, created_at = excluded.created_at",
            (doc_id, annotator, score, note, created_at or now()),
        )

    def label_keys(self) -> set[tuple[int, str]]:
        """Every (doc_id, annotator) that holds a label."""
        return {
            (int(r[0]), r[1]) for r in self.conn.execute("SELECT doc_id, annotator FROM labels")
        }

    def label_of(self, doc_id: int, annotator: str) -> int | None:
        row = self.conn.execute(
            "SELECT score FROM labels WHERE doc_id = ? AND annotator = ?", (doc_id, annotator)
        ).fetchone()
        return int(row[0]) if row else None

    def delete_label(self, doc_id: int, annotator: str) -> None:
        self.conn.execute(
            "DELETE FROM labels WHERE doc_id = ? AND annotator = ?", (doc_id, annotator)
        )

    def labels(self) -> list[dict[str, Any]]:
        """Every label with enough of its document to find it again elsewhere."""
        rows = self.conn.execute(
            "SELECT l.doc_id, d.content_hash, d.url, d.title, l.annotator, l.score, l.note, "
            "l.created_at FROM labels l JOIN documents d ON d.id = l.doc_id "
            "ORDER BY l.doc_id, l.annotator"
        )
        return [dict(r) for r in rows]

    def label_summary(self) -> dict[str, Any]:
        c = self.conn
        by_score = dict(c.execute("SELECT score, count(*) FROM labels GROUP BY score").fetchall())
        annotators = dict(
            c.execute("SELECT annotator, count(*) FROM labels GROUP BY annotator").fetchall()
        )
        documents = c.execute("SELECT count(DISTINCT doc_id) FROM labels").fetchone()[0]
        return {"documents": documents, "by_score": by_score, "by_annotator": annotators}

    def find_document(
        self, *, doc_id: int | None = None, content_hash: str | None = None, url: str | None = None
    ) -> int | None:
        """The id of a stored document named by id, content hash or URL (tried in that order)."""
        for sql, value in (
            ("SELECT id FROM documents WHERE id = ?", doc_id),
            ("SELECT id FROM documents WHERE content_hash = ?", content_hash),
            ("SELECT id FROM documents WHERE url = ? ORDER BY id LIMIT 1", url),
        ):
            if value not in (None, ""):
                row = self.conn.execute(sql, (value,)).fetchone()
                if row is not None:
                    return int(row[0])
        return None

    def documents_from_files(self) -> dict[str, int]:
        """File name (without folders) of each single-document source -> its document id."""
        rows = self.conn.execute(
            "SELECT s.path, min(d.id) FROM documents d JOIN sources s ON s.id = d.source_id "
            "GROUP BY s.id HAVING count(*) = 1"
        )
        return {Path(path).name: doc_id for path, doc_id in rows}

    # -- the educational-value classifier (studio.classify) ------------------------------------

    def label_targets(self) -> list[tuple[int, float, int]]:
        """(doc_id, label, number of annotators) per labelled document; the label is the mean
        of the people's scores, or of the teachers' where no person scored it (``label_mean``)."""
        rows = self.conn.execute(
            f"SELECT doc_id, {label_mean()}, count(*) FROM labels GROUP BY doc_id ORDER BY doc_id"
        )
        return [(int(r[0]), float(r[1]), int(r[2])) for r in rows]

    def label_triples(self) -> list[tuple[int, str, int]]:
        """Every (doc_id, annotator, score), sorted: what a classifier's label hash covers."""
        rows = self.conn.execute(
            "SELECT doc_id, annotator, score FROM labels ORDER BY doc_id, annotator, score"
        )
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    def texts(self, doc_ids: list[int]) -> dict[int, tuple[str, float]]:
        """doc_id -> (main text, signal share) for the given documents."""
        return {i: (text, share) for i, (text, share, _url) in self.page_texts(doc_ids).items()}

    def page_texts(self, doc_ids: list[int]) -> dict[int, tuple[str, float, str]]:
        """doc_id -> (main text, signal share, URL or "") for the given documents."""
        out: dict[int, tuple[str, float, str]] = {}
        for chunk, marks in _in_chunks(doc_ids):
            for r in self.conn.execute(
                f"SELECT d.id, t.main_text, d.signal_share, d.url FROM documents d "
                f"LEFT JOIN document_text t ON t.doc_id = d.id WHERE d.id IN ({marks})",
                chunk,
            ):
                out[int(r[0])] = (r[1] or "", float(r[2] or 0.0), r[3] or "")
        return out

    def cached_features(self, name: str, version: str, doc_ids: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk, marks in _in_chunks(doc_ids):
            for r in self.conn.execute(
                f"SELECT doc_id, vector FROM feature_cache WHERE feature_set = ? AND version = ? "
                f"AND doc_id IN ({marks})",
                [name, version, *chunk],
            ):
                out[int(r[0])] = bytes(r[1])
        return out

    def cache_features(self, name: str, version: str, vectors: dict[int, bytes]) -> None:
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO feature_cache(doc_id, feature_set, version, vector) "
                "VALUES (?, ?, ?, ?)",
                [(doc_id, name, version, blob) for doc_id, blob in vectors.items()],
            )

    def add_classifier_version(self, row: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold, "
            "metrics, label_hash, n_labels, path) VALUES (:id, :created_at, :feature_set, "
            ":model_kind, :threshold, :metrics, :label_hash, :n_labels, :path)",
            {**row, "metrics": json.dumps(row["metrics"])},
        )

    def classifier_versions(self) -> list[dict[str, Any]]:
        """Every trained classifier, oldest first, with how many documents it scored."""
        rows = self.conn.execute(
            "SELECT v.*, (SELECT count(*) FROM classifier_scores s WHERE s.version = v.id) "
            "AS scored FROM classifier_versions v ORDER BY v.created_at, v.id"
        )
        return [{**dict(r), "metrics": json.loads(r["metrics"])} for r in rows]

    def latest_scored_version(self) -> str | None:
        """The newest classifier version that has scored any document (a newer one may not
        have scored yet: its scores would show nothing)."""
        row = self.conn.execute(
            "SELECT v.id FROM classifier_versions v WHERE EXISTS "
            "(SELECT 1 FROM classifier_scores s WHERE s.version = v.id) "
            "ORDER BY v.created_at DESC, v.id DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def unscored_documents(self, version: str) -> list[int]:
        rows = self.conn.execute(
            "SELECT d.id FROM documents d WHERE NOT EXISTS (SELECT 1 FROM classifier_scores s "
            "WHERE s.version = ? AND s.doc_id = d.id) ORDER BY d.id",
            (version,),
        )
        return [int(r[0]) for r in rows]

    def add_scores(self, version: str, scores: list[tuple[int, float, bool]]) -> int:
        """Store a version's scores; a document another program removed while it was being
        scored is passed over (its score would name no document). Returns how many were
        stored."""
        with self.transaction():
            cur = self.conn.executemany(
                "INSERT OR REPLACE INTO classifier_scores(version, doc_id, score, keep) "
                "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM documents WHERE id = ?)",
                [(version, doc_id, score, int(keep), doc_id) for doc_id, score, keep in scores],
            )
            return max(cur.rowcount, 0)

    def kept_totals(self, version: str, min_score: float | None) -> dict[str, int]:
        """Scored and kept pages and their main-text words for a version; kept by the version's
        own decision, or by ``score >= min_score`` when one is given."""
        keep = "s.keep = 1" if min_score is None else "s.score >= :min"
        row = self.conn.execute(
            f"SELECT count(*), coalesce(sum(d.signal_words), 0), "
            f"coalesce(sum(CASE WHEN {keep} THEN 1 ELSE 0 END), 0), "
            f"coalesce(sum(CASE WHEN {keep} THEN d.signal_words ELSE 0 END), 0) "
            f"FROM classifier_scores s JOIN documents d ON d.id = s.doc_id WHERE s.version = :v",
            {"v": version, "min": min_score},
        ).fetchone()
        return {"pages": row[0], "words": row[1], "kept_pages": row[2], "kept_words": row[3]}

    # -- exports (studio.export) -----------------------------------------------------------------

    def export_batch(self, version: str | None, after: int, limit: int) -> list[sqlite3.Row]:
        """The next ``limit`` documents after id ``after``, with their text, provenance and the
        version's score (NULL columns without a version): keyset paging, flat at any depth."""
        return self.conn.execute(
            "SELECT d.id, d.title, d.url, d.lang, d.signal_words, d.fetch_date, d.locator, "
            "d.content_hash, d.segmenter, s.path AS source, t.main_text, c.score, c.keep "
            "FROM documents d JOIN sources s ON s.id = d.source_id "
            "LEFT JOIN document_text t ON t.doc_id = d.id "
            "LEFT JOIN classifier_scores c ON c.doc_id = d.id AND c.version = ? "
            "WHERE d.id > ? ORDER BY d.id LIMIT ?",
            (version, after, limit),
        ).fetchall()

    def labels_of(self, doc_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """doc_id -> its labels ({annotator, score}), for the given documents that have any."""
        out: dict[int, list[dict[str, Any]]] = {}
        for chunk, marks in _in_chunks(doc_ids):
            for r in self.conn.execute(
                f"SELECT doc_id, annotator, score FROM labels WHERE doc_id IN ({marks}) "
                f"ORDER BY doc_id, annotator",
                chunk,
            ):
                out.setdefault(int(r[0]), []).append({"annotator": r[1], "score": int(r[2])})
        return out

    def add_export(self, row: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO exports(created_at, path, format, version, threshold, kept, dropped, "
            "dropped_by_reason) VALUES (:created_at, :path, :format, :version, :threshold, "
            ":kept, :dropped, :dropped_by_reason)",
            row,
        )
        return int(cur.lastrowid or 0)

    def exports(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM exports ORDER BY id")]
