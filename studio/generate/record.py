"""The record of generation in the project database: batches, pages, and every version of a page
(drafts, critiques, the rewrite, check results, curators' edits), each committed as it happens.

An accepted page becomes a document (kind ``synthetic``) under its batch's source row, so the
corpus, the classifier, dedup and the student's recipes see it; ``gen_pages.doc_id`` links the
two. A page a curator rejects later keeps its document, but its status says ``rejected`` and the
export leaves it out (:func:`rejected_documents`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from studio.generate.plan import Cell
from studio.store import MAX_INTEGER, NewDocument, Store, now
from studio.teachers.base import clean_text

# of one stored text: a teacher's reply over it is clipped (a runaway generation must not bloat
# the database, the prompts built from it, or the review pane); a curator's edit is refused
MAX_TEXT_CHARS = 400_000
KIND = "synthetic"
PAGE_STATUSES = ("pending", "running", "accepted", "rejected", "failed")
FINISHED = ("accepted", "rejected", "failed")


class RecordError(ValueError):
    """An action on a page that cannot be done (no text to accept, an unknown page)."""


def printable(text: str) -> str:
    """Text as stored: no control characters but tab and newline, valid UTF-8."""
    return clean_text(text.encode("utf-8", "replace").decode("utf-8"))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def curator_text(text: str) -> str:
    """A curator's own words as stored: line ends made ``\n``, other control characters turned
    into spaces (not removed: "a<NUL>b" stays two words) and a lone surrogate into U+FFFD, so
    that nothing they typed goes without a trace."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", text))


def clean_reply(text: str) -> str:
    """A teacher's text as stored: printable, valid UTF-8, and of bounded size."""
    text = printable(text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + "\n[… clipped by the studio]"
    return text


_TITLE_MARK = re.compile(r"^\s*#+\s*|\*\*|__")


def title_of(text: str) -> str | None:
    """The page's title: its first heading, else its first line (clipped)."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines[:40]:
        if line.lstrip().startswith("#"):
            return _TITLE_MARK.sub("", line).strip()[:200] or None
    if not lines:
        return None
    return _TITLE_MARK.sub("", lines[0]).strip()[:200] or None


# -- rows --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """A batch as recorded. ``settings`` is None when its saved settings cannot be read (the row
    was edited, or written by another tool); ``damage`` then says why, and ``config`` refuses, so
    the batch is listed and its pages reviewed, but it is never resumed with made-up settings."""

    id: int
    created_at: str
    finished_at: str | None
    status: str
    settings: dict[str, Any] | None
    source_id: int | None
    counts: dict[str, int] = field(default_factory=dict)
    damage: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The settings it runs with; RecordError when they cannot be read."""
        if self.settings is None:
            raise RecordError(
                f"batch {self.id} cannot be resumed: {self.damage}; start a new batch instead"
            )
        return self.settings

    @property
    def resumable(self) -> bool:
        return self.settings is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["config"] = d.pop("settings")
        return d


@dataclass(slots=True)
class Page:
    id: int
    batch_id: int
    round: int
    cell: str
    teacher: str
    status: str
    reasons: list[str]
    title: str | None
    doc_id: int | None
    seed_doc_id: int | None
    parts: Cell
    text: str | None = None
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parts"] = self.parts.to_dict()
        return d


@dataclass(slots=True)
class Version:
    id: int
    page_id: int
    kind: str
    n: int
    parent_id: int | None
    teacher: str | None
    prompt: list[dict[str, str]] | None
    sampling: dict[str, Any] | None
    text: str | None
    data: Any
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float | None
    error: str | None
    created_at: str

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str:
        """How the curator names it: "draft 2", "critique of draft 2", "rewrite", "edit 1"."""
        if self.kind == "draft":
            return f"draft {self.n + 1}"
        if self.kind == "critique":
            return f"critique of draft {self.n + 1}"
        if self.kind == "edit":
            return f"edit {self.n + 1}"
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _page(r: Any, with_text: bool = False) -> Page:
    return Page(
        id=r["id"],
        batch_id=r["batch_id"],
        round=r["round"],
        cell=r["cell"],
        teacher=r["teacher"],
        status=r["status"],
        reasons=_loads(r["reasons"]) or [],
        title=r["title"],
        doc_id=r["doc_id"],
        seed_doc_id=r["seed_doc_id"],
        parts=Cell(
            r["subject"], r["topic"], r["subtopic"], r["audience"], r["style"], r["difficulty"]
        ),
        text=r["text"] if with_text else None,
        updated_at=r["updated_at"],
    )


# -- batches -------------------------------------------------------------------------------------


def create_batch(store: Store, config: dict[str, Any]) -> int:
    """A new batch and the source row its accepted pages will be documents of."""
    stamp = now()
    with store.transaction():
        cur = store.conn.execute(
            "INSERT INTO gen_batches(created_at, status, config) VALUES (?, 'pending', ?)",
            (stamp, json.dumps(config)),
        )
        batch_id = int(cur.lastrowid or 0)
        import_id = store.conn.execute(
            "INSERT INTO imports(started_at, finished_at, status) VALUES (?, ?, 'done')",
            (stamp, stamp),
        ).lastrowid
        source_id = store.conn.execute(
            "INSERT INTO sources(import_id, path, format, status, started_at) "
            "VALUES (?, ?, 'synthetic', 'imported', ?)",
            (import_id, f"generated/batch-{batch_id}", stamp),
        ).lastrowid
        store.conn.execute(
            "UPDATE gen_batches SET source_id = ? WHERE id = ?", (source_id, batch_id)
        )
    return batch_id


def set_batch_status(store: Store, batch_id: int, status: str) -> None:
    finished = now() if status in ("done", "cancelled") else None
    store.conn.execute(
        "UPDATE gen_batches SET status = ?, finished_at = ? WHERE id = ?",
        (status, finished, batch_id),
    )


def batch(store: Store, batch_id: int) -> Batch:
    if not 0 < batch_id <= MAX_INTEGER:
        raise RecordError(f"no batch {batch_id}")
    r = store.conn.execute("SELECT * FROM gen_batches WHERE id = ?", (batch_id,)).fetchone()
    if r is None:
        raise RecordError(f"no batch {batch_id}")
    counts = dict(
        store.conn.execute(
            "SELECT status, count(*) FROM gen_pages WHERE batch_id = ? GROUP BY status",
            (batch_id,),
        ).fetchall()
    )
    settings, damage = _settings(r["config"])
    return Batch(
        r["id"], r["created_at"], r["finished_at"], r["status"], settings, r["source_id"], counts,
        damage,
    )  # fmt: skip


def _settings(text: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A batch row's saved settings, or None and why they cannot be read: a damaged row must not
    stop the Teacher tab (or the batch list) from opening over the rest of the project."""
    try:
        settings = json.loads(text)
    except (TypeError, ValueError) as exc:  # not JSON, not text, or NULL
        return None, f"its saved settings are not readable JSON ({exc})"
    if not isinstance(settings, dict):
        return None, "its saved settings are not a JSON object"
    return settings, None


def batches(store: Store) -> list[Batch]:
    ids = [r[0] for r in store.conn.execute("SELECT id FROM gen_batches ORDER BY id")]
    return [batch(store, i) for i in ids]


def unfinished_batch(store: Store) -> Batch | None:
    """The latest batch that stopped before it was done (cancelled, or the studio closed) and
    can be resumed; when none can, the latest unfinished one, whose ``damage`` says why. A
    damaged batch never hides an older one that can go on."""
    rows = store.conn.execute("SELECT id FROM gen_batches WHERE status != 'done' ORDER BY id DESC")
    unfinished = [batch(store, row[0]) for row in rows.fetchall()]
    return next((b for b in unfinished if b.resumable), unfinished[0] if unfinished else None)


def rounds_planned(store: Store, batch_id: int) -> int:
    row = store.conn.execute(
        "SELECT max(round) FROM gen_pages WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    return int(row[0] or 0)


# -- pages ---------------------------------------------------------------------------------------


def add_pages(
    store: Store,
    batch_id: int,
    round_: int,
    planned: list[tuple[Cell, str, int | None]],  # (cell, teacher, seed document)
) -> list[int]:
    stamp = now()
    ids = []
    with store.transaction():
        for cell, teacher, seed in planned:
            cur = store.conn.execute(
                "INSERT INTO gen_pages(batch_id, round, cell, subject, topic, subtopic, audience, "
                "style, difficulty, teacher, seed_doc_id, status, created_at, updated_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?)",
                (
                    batch_id, round_, cell.key, cell.subject, cell.topic, cell.subtopic,
                    cell.audience, cell.style, cell.difficulty, teacher, seed, stamp, stamp,
                ),
            )  # fmt: skip
            ids.append(int(cur.lastrowid or 0))
    return ids


def page(store: Store, page_id: int) -> Page:
    if not 0 < page_id <= MAX_INTEGER:
        raise RecordError(f"no generated page {page_id}")
    r = store.conn.execute("SELECT * FROM gen_pages WHERE id = ?", (page_id,)).fetchone()
    if r is None:
        raise RecordError(f"no generated page {page_id}")
    return _page(r, with_text=True)


def pages(
    store: Store,
    *,
    batch_id: int | None = None,
    status: str | None = None,
    limit: int = -1,
    offset: int = 0,
) -> list[Page]:
    """Pages, newest batch first and in order within a batch (without their text)."""
    where, args = [], []
    if batch_id is not None:
        where.append("batch_id = ?")
        args.append(batch_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    sql = "SELECT * FROM gen_pages" + (" WHERE " + " AND ".join(where) if where else "")
    rows = store.conn.execute(
        sql + " ORDER BY batch_id DESC, id LIMIT ? OFFSET ?", [*args, limit, offset]
    )
    return [_page(r) for r in rows]


def next_page(
    store: Store,
    batch_id: int,
    *,
    skip: Collection[int] = (),
    teachers_full: Collection[str] = (),
) -> Page | None:
    """The batch's next page to write: one left running by a stop, else the first pending;
    not one of ``skip`` (pages being written), nor of a teacher in ``teachers_full``."""
    sql = "SELECT * FROM gen_pages WHERE batch_id = ? AND status IN ('running', 'pending')"
    args: list[Any] = [batch_id]
    if skip:
        sql += f" AND id NOT IN ({','.join('?' * len(skip))})"
        args += list(skip)
    if teachers_full:
        sql += f" AND teacher NOT IN ({','.join('?' * len(teachers_full))})"
        args += list(teachers_full)
    r = store.conn.execute(sql + " ORDER BY status = 'pending', id LIMIT 1", args).fetchone()
    return _page(r, with_text=True) if r else None


def set_page(
    store: Store,
    page_id: int,
    status: str,
    reasons: list[str] | None = None,
    *,
    text: str | None = None,
) -> None:
    if status not in PAGE_STATUSES:
        raise RecordError(f"unknown page status {status!r}")
    sets = ["status = ?", "updated_at = ?"]
    args: list[Any] = [status, now()]
    if reasons is not None:
        sets.append("reasons = ?")
        args.append(json.dumps(reasons, ensure_ascii=False))
    if text is not None:
        sets += ["text = ?", "title = ?"]
        args += [text, title_of(text)]
    store.conn.execute(f"UPDATE gen_pages SET {', '.join(sets)} WHERE id = ?", [*args, page_id])


# -- versions ------------------------------------------------------------------------------------


def add_version(
    store: Store,
    page_id: int,
    kind: str,
    *,
    n: int = 0,
    parent_id: int | None = None,
    teacher: str | None = None,
    prompt: list[dict[str, str]] | None = None,
    sampling: dict[str, Any] | None = None,
    text: str | None = None,
    data: Any = None,
    finish_reason: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    seconds: float | None = None,
    error: str | None = None,
) -> int:
    cur = store.conn.execute(
        "INSERT INTO gen_versions(page_id, kind, n, parent_id, teacher, prompt, sampling, text, "
        "data, finish_reason, prompt_tokens, completion_tokens, seconds, error, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            page_id, kind, n, parent_id, teacher,
            json.dumps(prompt, ensure_ascii=False) if prompt is not None else None,
            json.dumps(sampling) if sampling is not None else None,
            clean_reply(text) if text is not None else None,
            json.dumps(data, ensure_ascii=False) if data is not None else None,
            finish_reason, prompt_tokens, completion_tokens, seconds,
            error[:2000] if error else None, now(),
        ),
    )  # fmt: skip
    return int(cur.lastrowid or 0)


def versions(store: Store, page_id: int) -> list[Version]:
    rows = store.conn.execute(
        "SELECT * FROM gen_versions WHERE page_id = ? ORDER BY id", (page_id,)
    )
    return [
        Version(
            id=r["id"],
            page_id=r["page_id"],
            kind=r["kind"],
            n=r["n"],
            parent_id=r["parent_id"],
            teacher=r["teacher"],
            prompt=_loads(r["prompt"]),
            sampling=_loads(r["sampling"]),
            text=r["text"],
            data=_loads(r["data"]),
            finish_reason=r["finish_reason"],
            prompt_tokens=r["prompt_tokens"],
            completion_tokens=r["completion_tokens"],
            seconds=r["seconds"],
            error=r["error"],
            created_at=r["created_at"],
        )
        for r in rows
    ]


# -- decisions -----------------------------------------------------------------------------------


Seen = tuple[str, str | None]  # (status, text) of a page as the curator was shown it


def _check_seen(p: Page, seen: Seen | None) -> None:
    """Refuse a curator's decision or edit made on a page another program has changed since
    it was shown (the command line, another studio): the last writer would silently win."""
    if seen is not None and (p.status, p.text) != seen:
        now = p.status if p.status != seen[0] else "its text edited"
        raise RecordError(
            f"page {p.id} changed since it was shown (now {now}): look at it again; "
            "nothing was done"
        )


def accept(
    store: Store,
    page_id: int,
    reasons: list[str],
    *,
    by: str | None = None,
    seen: Seen | None = None,
) -> int:
    """Accept a page: its text becomes a document (made now, or kept from before). Returns the
    document's id. Raises :class:`RecordError` when there is no text, or an identical document
    is stored already, or the page is not as ``seen``."""
    with store.transaction():
        p = page(store, page_id)
        _check_seen(p, seen)
        if not p.text or not p.text.strip():
            raise RecordError(f"page {page_id} has no text to accept")
        doc_id = p.doc_id if p.doc_id is not None else _make_document(store, p)
        store.conn.execute("UPDATE gen_pages SET doc_id = ? WHERE id = ?", (doc_id, page_id))
        set_page(store, page_id, "accepted", reasons)
        if by is not None:
            add_version(
                store,
                page_id,
                "decision",
                data={"status": "accepted", "by": by, "reasons": reasons},
            )
    return doc_id


def reject(
    store: Store,
    page_id: int,
    reasons: list[str],
    *,
    by: str | None = None,
    seen: Seen | None = None,
) -> None:
    """Reject a page (one accepted before keeps its document, which the export leaves out)."""
    with store.transaction():
        _check_seen(page(store, page_id), seen)
        set_page(store, page_id, "rejected", reasons)
        if by is not None:
            add_version(
                store,
                page_id,
                "decision",
                data={"status": "rejected", "by": by, "reasons": reasons},
            )


def _make_document(store: Store, p: Page) -> int:
    text = p.text or ""
    digest = _hash(text)
    if store.has_hash(digest):
        other = store.find_document(content_hash=digest)
        raise RecordError(f"an identical document is stored already (document {other})")
    source_id = store.conn.execute(
        "SELECT source_id FROM gen_batches WHERE id = ?", (p.batch_id,)
    ).fetchone()[0]
    from studio.lang import detect_language

    lang, score = detect_language(text[:5000])
    n = len(text.split())
    doc_id = store.insert_document(
        NewDocument(
            source_id=source_id,
            content_hash=digest,
            kind=KIND,
            raw=text,
            main_text=text,
            n_words=n,
            signal_words=n,
            title=title_of(text),
            locator={
                "gen_page": p.id,
                "batch": p.batch_id,
                "round": p.round,
                "cell": p.cell,
                "teacher": p.teacher,
            },
            lang=lang,
            lang_score=score,
        )
    )
    if doc_id is None:  # pragma: no cover (the hash was checked inside this transaction)
        raise RecordError("an identical document is stored already")
    store.conn.execute(
        "UPDATE sources SET imported = imported + 1, finished_at = ? WHERE id = ?",
        (now(), source_id),
    )
    return doc_id


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def edit(store: Store, page_id: int, text: str, *, by: str, seen: Seen | None = None) -> int:
    """A curator's edit: a new version, the page's text; an accepted page's document follows
    (its classifier scores and cached features are dropped: they were of the old text).

    A text over :data:`MAX_TEXT_CHARS` is refused, not clipped: a teacher's runaway reply may
    lose its tail, a curator's own words must not, silently."""
    text = curator_text(text)
    if not text.strip():
        raise RecordError("an edit cannot leave the page empty")
    if len(text) > MAX_TEXT_CHARS:
        raise RecordError(
            f"the edit is {len(text):,} characters, over the {MAX_TEXT_CHARS:,} a page holds: "
            "shorten it or split it into several pages (nothing was saved)"
        )
    with store.transaction():
        p = page(store, page_id)
        _check_seen(p, seen)
        n = store.conn.execute(
            "SELECT count(*) FROM gen_versions WHERE page_id = ? AND kind = 'edit'", (page_id,)
        ).fetchone()[0]
        parent = store.conn.execute(
            "SELECT max(id) FROM gen_versions WHERE page_id = ? "
            "AND kind IN ('rewrite', 'edit', 'draft') AND error IS NULL",
            (page_id,),
        ).fetchone()[0]
        version_id = add_version(
            store, page_id, "edit", n=n, parent_id=parent, text=text, data={"by": by}
        )
        set_page(store, page_id, p.status, text=text)
        if p.doc_id is not None:
            _replace_document_text(store, p.doc_id, text)
    return version_id


def _replace_document_text(store: Store, doc_id: int, text: str) -> None:
    import zlib

    digest = _hash(text)
    other = store.find_document(content_hash=digest)
    if other is not None and other != doc_id:
        raise RecordError(f"the edited text is identical to document {other}")
    c = store.conn
    old = c.execute(
        "SELECT title, main_text FROM document_text WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    if old is not None:
        c.execute(
            "INSERT INTO document_fts(document_fts, rowid, title, main_text) "
            "VALUES ('delete', ?, ?, ?)",
            (doc_id, old["title"], old["main_text"]),
        )
    title, n, raw = title_of(text), len(text.split()), text.encode("utf-8")
    c.execute(
        "UPDATE document_text SET title = ?, main_text = ? WHERE doc_id = ?", (title, text, doc_id)
    )
    c.execute(
        "INSERT INTO document_fts(rowid, title, main_text) VALUES (?, ?, ?)", (doc_id, title, text)
    )
    c.execute(
        "UPDATE documents SET content_hash = ?, title = ?, n_bytes = ?, n_words = ?, "
        "signal_words = ?, signal_share = 1.0 WHERE id = ?",
        (digest, title, len(raw), n, n, doc_id),
    )
    c.execute("UPDATE document_raw SET raw = ? WHERE doc_id = ?", (zlib.compress(raw, 6), doc_id))
    c.execute("DELETE FROM classifier_scores WHERE doc_id = ?", (doc_id,))
    c.execute("DELETE FROM feature_cache WHERE doc_id = ?", (doc_id,))


def rejected_documents(store: Store, doc_ids: Iterable[int]) -> set[int]:
    """Those of ``doc_ids`` that are generated pages a curator (or a later check) rejected."""
    ids = list(doc_ids)
    out: set[int] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out.update(
            r[0]
            for r in store.conn.execute(
                f"SELECT doc_id FROM gen_pages WHERE status != 'accepted' AND doc_id IN ({marks})",
                chunk,
            )
        )
    return out


def pages_of_round(store: Store) -> dict[int, list[int]]:
    """round -> the documents of its accepted pages (for the diversity plots)."""
    out: dict[int, list[int]] = {}
    for round_, doc_id in store.conn.execute(
        "SELECT round, doc_id FROM gen_pages WHERE status = 'accepted' AND doc_id IS NOT NULL "
        "ORDER BY round, doc_id"
    ):
        out.setdefault(round_, []).append(doc_id)
    return out
