"""Label files made elsewhere: import into a project, export out of it (CSV or JSONL).

A row names its document by ``content_hash``, ``url`` or ``doc_id`` and gives a ``score`` from
0 to 5 (or an ``int_score``, which then decides: FineWeb-Edu's files carry the rubric level there
and a fractional mean in ``score``), optionally an ``annotator``, a ``note`` and a ``created_at``
(ISO 8601; stored in UTC like
the studio's own times, a time without a zone read as UTC). The content hash is the
page's identity in every project, so it decides when a row has one (a file exported from another
project names its own ``doc_id``s, which mean other pages here); a row with a hash no document
here has is unmatched, never moved to whatever its ``doc_id`` names here. Without a hash the URL
decides, and a ``doc_id`` given beside it must name the same document. A bare ``doc_id`` names a
document of this project.

Rows that name no stored document, or are malformed (a score that is not a whole number from 0 to
5, an id that is not a whole number, a text field that is not text, a time that is not one, an
annotator's name with control or text-direction characters or longer than a name), are skipped,
counted and explained with their line numbers; the other rows are imported in one transaction, so
a file that cannot be read at all imports nothing. Nothing already stored is changed by a skipped
row. A document and annotator given twice keep the last row's score, and the report says so.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from studio.labelling import annotator_problem
from studio.paths import require_regular_file
from studio.store import MAX_INTEGER, Store
from studio.text import MAX_NOTE, abbreviated, clean_note

EXPORT_FIELDS = (
    "doc_id",
    "content_hash",
    "url",
    "title",
    "annotator",
    "score",
    "note",
    "created_at",
)
MAX_EXAMPLES = 20


class LabelFileError(ValueError):
    """A label file that cannot be read at all."""


@dataclass(slots=True)
class LabelImportReport:
    imported: int = 0  # labels stored (a document and annotator given twice count once)
    unmatched: int = 0
    invalid: int = 0
    repeated: int = 0  # rows that gave a document and annotator again: the last one counts
    moved: int = 0  # rows whose doc_id names another document here than their content hash
    replaced: int = 0  # labels the project held before, for a document and annotator, replaced
    problems: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.unmatched + self.invalid

    def note(self, line: int, problem: str) -> None:
        if len(self.problems) < MAX_EXAMPLES:
            self.problems.append(f"line {line}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# a label row is a few hundred characters; a line this long is not one (and a file of one
# endless line, /dev/zero renamed, must not be read into memory whole)
MAX_LINE = 16 * 1024 * 1024


def _lines(handle: Any, path: Path) -> Iterator[str]:
    """The file's lines, each at most ``MAX_LINE`` characters, or LabelFileError."""
    n = 0
    while line := handle.readline(MAX_LINE + 1):
        n += 1
        if len(line) > MAX_LINE:
            raise LabelFileError(
                f"{path.name}: line {n} is longer than {MAX_LINE:,} characters: not a label "
                "file; nothing imported"
            )
        yield line


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each row; a row that cannot be parsed comes as an error string."""
    try:
        require_regular_file(path)
    except ValueError as exc:
        raise LabelFileError(str(exc)) from exc
    except FileNotFoundError:
        pass  # said below, as every unreadable file is
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_rows(path)
        return
    try:  # utf-8-sig: a spreadsheet's byte-order mark must not hide the first column's name
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise LabelFileError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            if suffix == ".csv":
                # a long note is fine up to a line's limit (csv's own stops at 128 KiB)
                csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE))
                reader = csv.DictReader(_lines(handle, path))
                if reader.fieldnames is None:  # not even a header: "needs a 'score' column" misled
                    raise LabelFileError(f"{path.name}: the file is empty; nothing imported")
                _check_columns(path, "CSV", [c.strip() for c in reader.fieldnames])
                for row in reader:
                    yield reader.line_num, {(k or "").strip(): v for k, v in row.items()}
            elif suffix in (".jsonl", ".ndjson", ".json"):
                for n, line in enumerate(_lines(handle, path), 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError as exc:  # JSONDecodeError, or an integer of 5,000 digits
                        yield n, f"invalid JSON ({getattr(exc, 'msg', exc)})"
                        continue
                    except RecursionError:  # 100,000 nested brackets
                        yield n, "invalid JSON (nested too deeply to read)"
                        continue
                    yield n, row if isinstance(row, dict) else "not a JSON object"
            else:
                raise LabelFileError(f"{path.name}: label files are .csv, .jsonl or .parquet")
        except UnicodeDecodeError as exc:
            raise LabelFileError(f"{path.name}: not UTF-8 text (byte {exc.start})") from exc
        except csv.Error as exc:  # a field past the limit: a quote left open over many lines
            line = reader.line_num if suffix == ".csv" else 0
            raise LabelFileError(
                f"{path.name}: not a readable CSV file at line {line} ({exc}); nothing imported"
            ) from exc


IDS = ("doc_id", "content_hash", "url")
SCORES = ("score", "int_score")
FIELDS = (*IDS, *SCORES, "annotator", "note", "created_at")  # the columns read from a Parquet file


def _check_columns(path: Path, kind: str, names: list[str]) -> None:
    """A label file's columns name a score and a document, each once, or it cannot be imported
    (with two 'score' columns, which one the curator meant is a guess)."""
    columns = set(names)
    twice = sorted({c for c in names if c in FIELDS and names.count(c) > 1})
    if twice:
        raise LabelFileError(
            f"{path.name}: the {kind} file has more than one {twice[0]!r} column; "
            "keep the one that holds the labels"
        )
    if not columns & set(SCORES):
        raise LabelFileError(f"{path.name}: a {kind} label file needs a 'score' column")
    if not columns & set(IDS):
        raise LabelFileError(
            f"{path.name}: a {kind} label file needs a doc_id, content_hash or url column"
        )


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Rows of a Parquet label file (row numbers from 1), read a batch at a time and only the
    columns a label uses, so a dataset's text column is never loaded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
        columns = [c for c in handle.schema_arrow.names if c in FIELDS]
    except (OSError, pa.ArrowException) as exc:
        raise LabelFileError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    _check_columns(path, "Parquet", columns)
    n = 0
    try:
        for batch in handle.iter_batches(batch_size=4096, columns=columns):
            try:
                rows = batch.to_pylist()
            except (ValueError, OverflowError) as exc:  # a timestamp Python cannot hold
                raise LabelFileError(
                    f"{path.name}: rows {n + 1}-{n + batch.num_rows} hold a value that cannot be "
                    f"read ({exc}); nothing imported"
                ) from exc
            for row in rows:
                n += 1
                yield n, row
    except (OSError, pa.ArrowException) as exc:
        # rows already read stay imported only if the whole file reads: fail the file
        raise LabelFileError(f"{path.name}: unreadable after row {n} ({exc})") from exc


def _score(value: Any, name: str = "score") -> int:
    if value is None or value == "":
        raise ValueError(f"no {name}")
    # Decimal: a SQL or Spark export's numeric column, read from Parquet
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{name} {value!r} is not a whole number from 0 to 5")
    try:
        score = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer of hundreds of digits
        shown = repr(value) if len(str(value)) <= 40 else abbreviated(str(value), 20)
        raise ValueError(f"{name} {shown} is not a whole number from 0 to 5") from None
    if not score.is_integer() or not 0 <= score <= 5:  # NaN fails both
        raise ValueError(f"{name} {value!r} is not a whole number from 0 to 5")
    return int(score)


def _row_score(row: dict[str, Any]) -> int:
    """The row's ``int_score`` where it has one (blank, null or NaN: none), else its ``score``."""
    level = row.get("int_score")
    blank = level is None or (isinstance(level, str) and not level.strip())
    if blank or (isinstance(level, float) and level != level):  # NaN: pyarrow's missing float
        return _score(row.get("score"))
    return _score(level, "int_score")


def _doc_id(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        number = int(value)  # pandas writes a column of ids with a gap in it as floats
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise ValueError(f"doc_id {value!r} is not a document id (a whole number)")
    if not 0 < number <= MAX_INTEGER:
        raise ValueError(f"doc_id {value!r} is not a document id (a whole number)")
    return number


def _text(row: dict[str, Any], key: str) -> str | None:
    """A text field of the row, None when absent or empty; anything else is malformed."""
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):  # default=str: a Parquet cell may be bytes, a date...
        raise ValueError(f"{key} {json.dumps(value, default=str)[:40]} is not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{key} holds an invalid character (a lone surrogate)") from None
    return value


def _note(row: dict[str, Any]) -> str | None:
    """The row's note, cleaned of characters that would hide or reorder it; a note longer than
    a reason (a pasted page) refuses the row rather than be cut without the curator knowing."""
    note = _text(row, "note")
    if note is None:
        return None
    note = clean_note(note)
    if len(note) > MAX_NOTE:
        raise ValueError(f"the note holds {len(note):,} characters (at most {MAX_NOTE:,})")
    return note or None


def _annotator(row: dict[str, Any], default: str) -> str:
    """The row's annotator, else ``default``: a name agreement can tell apart (see
    :func:`studio.labelling.annotator_problem`)."""
    named = (_text(row, "annotator") or "").strip()  # " ana" and "ana" are one person
    who = named or default
    problem = annotator_problem(who, teacher_ok=True)
    if problem:
        raise ValueError(f"annotator {json.dumps(who)[:40]}: {problem}")
    return who


def _timestamp(row: dict[str, Any]) -> str | None:
    """``created_at`` as the studio writes times (UTC, ISO 8601, to the second)."""
    when = row.get("created_at")
    if isinstance(when, date) and not isinstance(when, datetime):  # a Parquet date column
        when = datetime(when.year, when.month, when.day)  # midnight, as "2024-01-02" reads
    if isinstance(when, datetime):  # a Parquet timestamp column
        problem = f"created_at {when} leaves the calendar in UTC"
    else:
        value = _text(row, "created_at")
        if value is None:
            return None
        problem = f"created_at {json.dumps(value)[:40]} is not an ISO 8601 date and time"
        try:
            when = datetime.fromisoformat(value.strip())
        except (ValueError, OverflowError):
            raise ValueError(problem) from None
    try:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        return when.astimezone(UTC).isoformat(timespec="seconds")
    except OverflowError:  # year 1 east of UTC, or 9999 west of it
        raise ValueError(problem) from None


def _find(store: Store, row: dict[str, Any]) -> tuple[int | None, int | None]:
    """(the document the row names, its own doc_id when the content hash put it elsewhere)."""
    doc_id = _doc_id(row.get("doc_id"))
    content_hash, url = _text(row, "content_hash"), _text(row, "url")
    if content_hash is not None:  # hex, as the studio writes it: a spreadsheet may pad or upper it
        content_hash = content_hash.strip().lower()
        found = store.find_document(content_hash=content_hash)
        return found, (doc_id if found is not None and doc_id not in (None, found) else None)
    if url is not None:
        found = store.find_document(url=url)
        if found is not None and doc_id is not None and doc_id != found:
            raise ValueError(f"doc_id {doc_id} and url {url[:60]} name different documents")
        return found, None
    if doc_id is None:
        raise ValueError("names no document (no doc_id, content_hash or url)")
    return store.find_document(doc_id=doc_id), None


def import_labels(store: Store, path: Path, annotator: str) -> LabelImportReport:
    """Import a label file; ``annotator`` is used for rows that do not name one."""
    report = LabelImportReport()
    stored: set[tuple[int, str]] = set()
    rows = 0
    with store.transaction():
        held = store.label_keys()
        for line, row in _rows(path):
            rows += 1
            if isinstance(row, str):
                report.invalid += 1
                report.note(line, row)
                continue
            try:
                score = _row_score(row)
                who = _annotator(row, annotator)
                note, created_at = _note(row), _timestamp(row)
                doc_id, own_id = _find(store, row)
            except ValueError as exc:
                report.invalid += 1
                report.note(line, str(exc))
                continue
            if doc_id is None:
                report.unmatched += 1
                report.note(line, "names no document in this project (doc_id, content_hash, url)")
                continue
            if own_id is not None:
                report.moved += 1
            if (doc_id, who) in stored:
                report.repeated += 1
            elif (doc_id, who) in held:
                report.replaced += 1
            stored.add((doc_id, who))
            store.set_label(doc_id, who, score, note, created_at)
    if rows == 0:  # an empty file imported 0 without a word
        raise LabelFileError(f"{path.name}: the file holds no labels; nothing imported")
    report.imported = len(stored)
    return report


def export_labels(store: Store, path: Path) -> int:
    """Write every label to ``path`` (.csv or .jsonl); returns how many."""
    rows = store.labels()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise LabelFileError(f"{path.name}: label files are .csv or .jsonl")
    if path.is_symlink() or (path.exists() and not path.is_file()):  # never replaced by a file
        raise LabelFileError(f"{path} is a link, device or pipe: write the labels to a file")
    # a short hidden name of its own: NAME.part would be too long for a 252-character NAME,
    # and would be whatever already sits there under that name (a folder, say)
    tmp = path.with_name(f".labels-{os.getpid()}-{secrets.token_hex(4)}.part")
    try:
        with tmp.open("w", encoding="utf-8", newline="") as out:
            if suffix == ".csv":
                writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
                writer.writeheader()
                writer.writerows(rows)
            else:
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)
    except OSError as exc:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise LabelFileError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(rows)
