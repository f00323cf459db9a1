"""The generation plan's dimensions: a topic taxonomy (subjects > topics > subtopics) that the
curator edits, and the audiences, styles and difficulties a page is written for.

The shipped taxonomy (``resources/taxonomy.json``) seeds a project's own copy (table
``gen_taxonomy``) the first time the plan is used; from then on the project's copy is the plan:
subtopics are added, renamed, removed, imported from a file, or proposed by a teacher and held as
``proposed`` until a curator accepts them. Audiences, styles and difficulties live in the
project's ``meta`` table as JSON, seeded the same way, and an imported file may replace them.

A taxonomy file is JSON in the shipped layout, JSON as nested objects
(``{"Subject": {"Topic": ["Subtopic", ...]}}``), or a text outline: one ``Subject / Topic /
Subtopic`` per line, or an indented (or Markdown-headed) outline three levels deep.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.paths import read_small_file, resource
from studio.store import MAX_INTEGER, Store, now
from studio.text import visible

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_NAME = 120
STATUSES = ("active", "proposed", "rejected")
_SEEDED = "generate.taxonomy_seeded"
_DIMENSIONS = "generate.dimensions"
# "|" separates the parts of a cell key; direction overrides would show a name reordered
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f-\x9f|\u202a-\u202e\u2066-\u2069]")


class TaxonomyError(ValueError):
    """A taxonomy file or an edit that cannot be taken; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Dimension:
    """An audience, a style or a difficulty: its name and what the teacher is told about it."""

    name: str
    description: str = ""
    instruction: str = ""  # styles: what to write
    system_bank: bool = False  # styles: draw the system message from the Orca-style bank

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass(slots=True)
class Dimensions:
    audiences: list[Dimension] = field(default_factory=list)
    styles: list[Dimension] = field(default_factory=list)
    difficulties: list[Dimension] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audiences": [d.to_dict() for d in self.audiences],
            "styles": [d.to_dict() for d in self.styles],
            "difficulties": [d.to_dict() for d in self.difficulties],
        }

    def find(self, kind: str, name: str) -> Dimension:
        for d in getattr(self, kind):
            if d.name == name:
                return d
        return Dimension(name)


@dataclass(frozen=True, slots=True)
class Subtopic:
    id: int
    subject: str
    topic: str
    subtopic: str
    status: str
    origin: str

    @property
    def path(self) -> str:
        return f"{self.subject} / {self.topic} / {self.subtopic}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TaxonomyFile:
    """What a taxonomy file holds: (subject, topic, subtopic) rows, and dimensions if it has any."""

    rows: list[tuple[str, str, str]]
    dimensions: Dimensions | None = None


@dataclass(slots=True)
class ImportResult:
    added: int
    already: int
    removed: int
    dimensions: bool  # the file replaced the audiences, styles and difficulties

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- names --------------------------------------------------------------------------------------


def clean_name(name: object, what: str = "name") -> str:
    """A subject, topic or subtopic name as stored: one line, trimmed, checked."""
    if not isinstance(name, str):
        raise TaxonomyError(f"a {what} must be text, not {type(name).__name__}")
    text = " ".join(name.split())
    if not text:
        raise TaxonomyError(f"a {what} cannot be empty")
    if len(text) > MAX_NAME:
        raise TaxonomyError(f"{what} {text[:40]!r}… is longer than {MAX_NAME} characters")
    if _BAD_NAME.search(text):
        raise TaxonomyError(  # visible() escapes already: repr() would double the backslashes
            f"{what} '{visible(text[:60])}' holds a control or text-direction character, or '|'"
        )
    _check_unicode(text, what)
    return text


def _check_unicode(text: str, what: str) -> None:
    """A JSON ``\\ud800`` escape decodes to a lone surrogate, which no database or teacher takes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TaxonomyError(
            f"{what} {text[:60]!r} holds a lone surrogate ({text[exc.start]!r}), not a character: "
            "fix the \\u escape"
        ) from exc


# -- reading files ------------------------------------------------------------------------------


def read_taxonomy_file(path: Path) -> TaxonomyFile:
    """Parse a taxonomy file (JSON or a text outline); :class:`TaxonomyError` says what is wrong."""
    path = Path(path)
    try:
        data = read_small_file(path, MAX_FILE_BYTES)
    except ValueError as exc:
        raise TaxonomyError(f"{exc}; a taxonomy file is at most {MAX_FILE_BYTES:,} bytes") from exc
    except OSError as exc:
        raise TaxonomyError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if b"\x00" in data[:8192]:
        raise TaxonomyError(f"{path.name} is binary, not a taxonomy (JSON or a text outline)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaxonomyError(f"{path.name} is not UTF-8 text (byte {exc.start})") from exc
    return parse_taxonomy(text, path.name)


def parse_taxonomy(text: str, name: str = "taxonomy") -> TaxonomyFile:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise TaxonomyError(f"{name} is not valid JSON: {exc}") from exc
        result = _from_json(data, name)
    else:
        result = TaxonomyFile(_from_outline(text, name))
    if not result.rows:
        raise TaxonomyError(f"{name} names no subtopic (subject > topic > subtopic)")
    if len(result.rows) > MAX_ROWS:
        raise TaxonomyError(f"{name} has {len(result.rows):,} subtopics; at most {MAX_ROWS:,}")
    return result


def _from_json(data: Any, name: str) -> TaxonomyFile:
    if isinstance(data, dict) and "subjects" in data:
        rows = _rows_from_list(data["subjects"], name)
        dims = _dimensions_from_json(data, name) if _has_dimensions(data) else None
        return TaxonomyFile(rows, dims)
    if isinstance(data, dict):  # {"Subject": {"Topic": ["Subtopic", ...]}}
        rows = []
        for subject, topics in data.items():
            if not isinstance(topics, dict):
                raise TaxonomyError(f"{name}: subject {subject!r} must map topics to lists")
            for topic, subs in topics.items():
                rows += _subtopics(subject, topic, subs, name)
        return TaxonomyFile(rows)
    if isinstance(data, list):
        return TaxonomyFile(_rows_from_list(data, name))
    raise TaxonomyError(f"{name}: a taxonomy is a JSON object or list, not {type(data).__name__}")


def _rows_from_list(subjects: Any, name: str) -> list[tuple[str, str, str]]:
    if not isinstance(subjects, list):
        raise TaxonomyError(f"{name}: 'subjects' must be a list")
    rows = []
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("topics"), list):
            raise TaxonomyError(f"{name}: subject {i + 1} needs a 'name' and a 'topics' list")
        for j, t in enumerate(s["topics"]):
            if not isinstance(t, dict):
                raise TaxonomyError(f"{name}: topic {j + 1} of subject {i + 1} is not an object")
            rows += _subtopics(s.get("name"), t.get("name"), t.get("subtopics"), name)
    return rows


def _subtopics(subject: Any, topic: Any, subs: Any, name: str) -> list[tuple[str, str, str]]:
    s, t = clean_name(subject, "subject"), clean_name(topic, "topic")
    if not isinstance(subs, list):
        raise TaxonomyError(f"{name}: topic {s} / {t} needs a list of subtopics")
    return [(s, t, clean_name(x, "subtopic")) for x in subs]


def _has_dimensions(data: dict[str, Any]) -> bool:
    return any(k in data for k in ("audiences", "styles", "difficulties"))


def _dimensions_from_json(data: dict[str, Any], name: str) -> Dimensions:
    dims = Dimensions()
    for kind in ("audiences", "styles", "difficulties"):
        items = data.get(kind)
        if not isinstance(items, list) or not items:
            raise TaxonomyError(f"{name}: '{kind}' must be a non-empty list")
        out = []
        for item in items:
            if isinstance(item, str):
                item = {"name": item}
            if not isinstance(item, dict):
                raise TaxonomyError(f"{name}: each of '{kind}' is a name or an object")
            out.append(
                Dimension(
                    name=clean_name(item.get("name"), kind[:-1]),
                    description=_short_text(item.get("description", ""), name),
                    instruction=_short_text(item.get("instruction", ""), name),
                    system_bank=bool(item.get("system_bank", False)),
                )
            )
        seen = [d.name.casefold() for d in out]
        twice = next((d.name for d in out if seen.count(d.name.casefold()) > 1), None)
        if twice is not None:  # a cell would be drawn twice as often, and named ambiguously
            raise TaxonomyError(f"{name}: '{kind}' names {twice!r} more than once")
        setattr(dims, kind, out)
    return dims


def _short_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TaxonomyError(f"{name}: descriptions and instructions are text")
    text = " ".join(value.split())[:1000]
    _check_unicode(text, f"{name}: the description or instruction")
    return text


_HEADING = re.compile(r"^(#{1,3})\s+(.*)$")
_BULLET = re.compile(r"^[-*+]\s+|^\d+[.)]\s+")


def _from_outline(text: str, name: str) -> list[tuple[str, str, str]]:
    """``A / B / C`` lines, or a three-level outline by indentation or Markdown headings (with
    bulleted lines under the last heading one level below it)."""
    lines = [(i + 1, line.rstrip()) for i, line in enumerate(text.splitlines()) if line.strip()]
    paths = sum(1 for _, line in lines if _split_path(line))
    if lines and paths == len(lines):
        return [_path_row(line, n, name) for n, line in lines]
    try:
        rows = _outline_rows(lines, name)
    except TaxonomyError:
        if 2 * paths < len(lines):
            raise
        rows = []  # mostly "A / B / C" lines: the line that is not one is the mistake
    if not rows and (paths or any(re.search(r"\s[/>]\s", line) for _, line in lines)):
        return [_path_row(line, n, name) for n, line in lines]  # says which line is wrong
    if not rows and lines:  # an outline of subjects and topics with no third level
        n, line = lines[-1]
        raise TaxonomyError(
            f"{name} names no subtopic: the outline stops at {line.strip()[:60]!r} (line {n}); "
            "indent subtopics under each topic, or write lines as "
            '"Subject / Topic / Subtopic"'
        )
    return rows


def _outline_rows(lines: list[tuple[int, str]], name: str) -> list[tuple[str, str, str]]:
    """The rows of an outline by indentation or headings."""
    rows: list[tuple[str, str, str]] = []
    stack: list[str] = []
    indents: list[int] = []  # the indent widths open below the last heading, ascending
    base = 0  # the level of a line at the first indent width
    for n, line in lines:
        expanded = line.expandtabs(4)
        heading = _HEADING.match(expanded.strip())
        if heading:
            level, label = len(heading.group(1)) - 1, heading.group(2)
            base, indents = level + 1, []
        else:
            indent = len(expanded) - len(expanded.lstrip())
            while indents and indents[-1] > indent:
                indents.pop()
            if not indents or indents[-1] < indent:
                indents.append(indent)
            level, label = base + len(indents) - 1, _BULLET.sub("", expanded.strip())
        if level > 2:
            raise TaxonomyError(f"{name}, line {n}: deeper than subject > topic > subtopic")
        if level > len(stack):
            raise TaxonomyError(f"{name}, line {n}: {label[:60]!r} has no parent above it")
        try:
            stack[level:] = [clean_name(label, ("subject", "topic", "subtopic")[level])]
        except TaxonomyError as exc:
            raise TaxonomyError(f"{name}, line {n}: {exc}") from exc
        if level == 2:
            rows.append((stack[0], stack[1], stack[2]))
    return rows


def _split_path(line: str) -> list[str]:
    for sep in (" / ", " > "):
        parts = line.split(sep)
        if len(parts) == 3:
            return parts
    return []


def _path_row(line: str, n: int, name: str) -> tuple[str, str, str]:
    parts = _split_path(line)
    if not parts:
        raise TaxonomyError(
            f"{name}, line {n}: {line.strip()[:60]!r} {_path_problem(line)}; write each line as "
            '"Subject / Topic / Subtopic"'
        )
    try:
        s, t, st = parts
        return clean_name(s, "subject"), clean_name(t, "topic"), clean_name(st, "subtopic")
    except TaxonomyError as exc:
        raise TaxonomyError(f"{name}, line {n}: {exc}") from exc


def _path_problem(line: str) -> str:
    """What keeps a line from being ``Subject / Topic / Subtopic``, in a curator's words."""
    loose = re.split(r"\s*[/>]\s*", line.strip())
    if len(loose) == 1:
        return "has no ' / ' between a subject, a topic and a subtopic"
    if len(loose) != 3:
        return f"has {len(loose)} parts, not 3"
    if not all(loose):
        return "has an empty part"
    return "is not three names joined by ' / ' (with a space each side)"


# -- the project's taxonomy -------------------------------------------------------------------


def shipped() -> TaxonomyFile:
    """The taxonomy the studio ships (resources/taxonomy.json)."""
    return parse_taxonomy(resource("taxonomy.json").read_text("utf-8"), "taxonomy.json")


def ensure_taxonomy(store: Store) -> None:
    """Seed the project's taxonomy and dimensions from the shipped ones, once per project."""
    if store.get_meta(_SEEDED):
        return
    ship = shipped()
    try:
        with store.transaction():
            if store.get_meta(_SEEDED):  # another connection seeded it meanwhile
                return
            _seed(store, ship)
    except sqlite3.OperationalError as exc:
        if "readonly" not in str(exc).lower():
            raise
        # a read-only project (a read-only mount, a read-only connection): the plan is read from
        # copies of the two tables in this connection's own temporary schema, seeded there
        for table in ("gen_taxonomy", "meta"):
            sql = store.conn.execute(
                "SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()[0]
            store.conn.execute(sql.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
            store.conn.execute(f"INSERT INTO temp.{table} SELECT * FROM main.{table}")
        _seed(store, ship)


def _seed(store: Store, ship: TaxonomyFile) -> None:
    _insert_rows(store, ship.rows, "shipped", "active")
    if store.get_meta(_DIMENSIONS) is None and ship.dimensions is not None:
        store.set_meta(_DIMENSIONS, json.dumps(ship.dimensions.to_dict()))
    store.set_meta(_SEEDED, now())


def _insert_rows(store: Store, rows: list[tuple[str, str, str]], origin: str, status: str) -> int:
    stamp = now()
    before = store.conn.total_changes
    store.conn.executemany(
        "INSERT OR IGNORE INTO gen_taxonomy(subject, topic, subtopic, status, origin, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(s, t, st, status, origin, stamp) for s, t, st in rows],
    )
    return store.conn.total_changes - before


def subtopics(store: Store, status: str | None = "active") -> list[Subtopic]:
    """The project's subtopics (of one status, or all when ``status`` is None), in plan order."""
    ensure_taxonomy(store)
    sql = "SELECT id, subject, topic, subtopic, status, origin FROM gen_taxonomy"
    args: tuple[Any, ...] = ()
    if status is not None:
        sql += " WHERE status = ?"
        args = (status,)
    rows = store.conn.execute(sql + " ORDER BY id", args)
    return [Subtopic(*r) for r in rows]


def add_subtopic(
    store: Store,
    subject: str,
    topic: str,
    subtopic: str,
    *,
    origin: str = "curator",
    status: str = "active",
) -> int | None:
    """Add one subtopic; None when it is there already."""
    if status not in STATUSES:
        raise TaxonomyError(f"unknown status {status!r}")
    ensure_taxonomy(store)
    row = (
        clean_name(subject, "subject"),
        clean_name(topic, "topic"),
        clean_name(subtopic, "subtopic"),
    )
    cur = store.conn.execute(
        "INSERT OR IGNORE INTO gen_taxonomy(subject, topic, subtopic, status, origin, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (*row, status, origin, now()),
    )
    return int(cur.lastrowid) if cur.rowcount else None


def rename_subtopic(store: Store, subtopic_id: int, subtopic: str) -> None:
    name = clean_name(subtopic, "subtopic")
    if not -MAX_INTEGER - 1 <= subtopic_id <= MAX_INTEGER:  # SQLite could not even bind it
        raise TaxonomyError(f"no subtopic {subtopic_id}")
    try:
        cur = store.conn.execute(
            "UPDATE gen_taxonomy SET subtopic = ? WHERE id = ?", (name, subtopic_id)
        )
    except sqlite3.IntegrityError as exc:  # the topic has a subtopic of that name already
        raise TaxonomyError(f"the topic already has a subtopic {name!r}") from exc
    if not cur.rowcount:
        raise TaxonomyError(f"no subtopic {subtopic_id}")


def _statuses(store: Store, ids: list[int]) -> dict[int, str]:
    """id -> status of those of ``ids`` that name a subtopic (an id SQLite cannot hold names
    none)."""
    out = {}
    for i in dict.fromkeys(ids):
        if -MAX_INTEGER - 1 <= i <= MAX_INTEGER:
            row = store.conn.execute("SELECT status FROM gen_taxonomy WHERE id = ?", (i,))
            found = row.fetchone()
            if found is not None:
                out[i] = found[0]
    return out


def _ids_text(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:10]) + (
        f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    )


def _check_known(statuses: dict[int, str], ids: list[int]) -> None:
    unknown = [i for i in dict.fromkeys(ids) if i not in statuses]
    if unknown:
        raise TaxonomyError(
            f"no subtopic {_ids_text(unknown)} (`studio plan topics --status all` lists the ids); "
            "nothing was changed"
        )


def remove_subtopics(store: Store, ids: list[int]) -> int:
    """Take subtopics out of the plan (pages written for them keep their cell). Every id is
    checked first: one unknown id changes nothing (:class:`TaxonomyError`)."""
    ensure_taxonomy(store)
    with store.transaction():
        _check_known(_statuses(store, ids), ids)
        return sum(
            store.conn.execute("DELETE FROM gen_taxonomy WHERE id = ?", (i,)).rowcount
            for i in dict.fromkeys(ids)
        )


def set_status(store: Store, ids: list[int], status: str) -> int:
    """Accept (``active``) or reject proposed subtopics."""
    if status not in STATUSES:
        raise TaxonomyError(f"unknown status {status!r}")
    with store.transaction():
        return sum(
            store.conn.execute(
                "UPDATE gen_taxonomy SET status = ? WHERE id = ?", (status, i)
            ).rowcount
            for i in ids
        )


def review_proposals(store: Store, accept: list[int], reject: list[int]) -> tuple[int, int]:
    """Accept (plan) or reject subtopics a teacher proposed: (accepted, rejected). Every id must
    be a proposal, and in one list only, or nothing changes (:class:`TaxonomyError`): a review
    never touches a subtopic already planned or rejected."""
    both = sorted(set(accept) & set(reject))
    if both:
        what = "subtopics" if len(both) > 1 else "subtopic"
        raise TaxonomyError(
            f"{what} {_ids_text(both)} both accepted and rejected: name each id once; "
            "nothing was changed"
        )
    ids = [*accept, *reject]
    ensure_taxonomy(store)
    with store.transaction():
        statuses = _statuses(store, ids)
        _check_known(statuses, ids)
        settled = [i for i in dict.fromkeys(ids) if statuses[i] != "proposed"]
        if settled:
            i = settled[0]
            raise TaxonomyError(
                f"subtopic {i} is not proposed (it is {statuses[i]}): a review only takes "
                "proposals (`studio plan topics --status proposed`); nothing was changed"
            )
        for status, chosen in (("active", accept), ("rejected", reject)):
            store.conn.executemany(
                "UPDATE gen_taxonomy SET status = ? WHERE id = ?",
                [(status, i) for i in dict.fromkeys(chosen)],
            )
    return len(set(accept)), len(set(reject))


def import_taxonomy(store: Store, path: Path, *, replace: bool = False) -> ImportResult:
    """Add a file's subtopics to the plan (``replace``: instead of the active ones); its
    audiences, styles and difficulties, if it has them, replace the project's."""
    parsed = read_taxonomy_file(path)
    ensure_taxonomy(store)
    unique = list(dict.fromkeys(parsed.rows))
    with store.transaction():
        removed = 0
        if replace:
            removed = store.conn.execute(
                "DELETE FROM gen_taxonomy WHERE status = 'active'"
            ).rowcount
        added = _insert_rows(store, unique, "imported", "active")
        if parsed.dimensions is not None:
            store.set_meta(_DIMENSIONS, json.dumps(parsed.dimensions.to_dict()))
    return ImportResult(added, len(unique) - added, removed, parsed.dimensions is not None)


def export_taxonomy(store: Store) -> dict[str, Any]:
    """The project's active taxonomy and dimensions, in the shipped file's layout."""
    subjects: dict[str, dict[str, list[str]]] = {}
    for row in subtopics(store):
        subjects.setdefault(row.subject, {}).setdefault(row.topic, []).append(row.subtopic)
    return {
        "version": 1,
        "subjects": [
            {"name": s, "topics": [{"name": t, "subtopics": subs} for t, subs in topics.items()]}
            for s, topics in subjects.items()
        ],
        **dimensions(store).to_dict(),
    }


def dimensions(store: Store) -> Dimensions:
    """The project's audiences, styles and difficulties."""
    ensure_taxonomy(store)
    text = store.get_meta(_DIMENSIONS)
    if text is None:
        dims = shipped().dimensions
        assert dims is not None
        return dims
    name = "the plan's audiences, styles and difficulties stored in the project"
    fix = (
        "import a taxonomy JSON file that has them to replace them (studio plan import PROJECT "
        "FILE; the shipped resources/taxonomy.json has them)"
    )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise TaxonomyError(f"{name} are damaged ({reason}): {fix}") from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{name} are damaged (not a JSON object): {fix}")
    return _dimensions_from_json(data, name)
