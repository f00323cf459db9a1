"""Label files made elsewhere: import into a project, export out of it (CSV or JSONL).

A row names its document by ``doc_id``, ``content_hash`` or ``url`` (tried in that order) and
gives a ``score`` from 0 to 5, optionally an ``annotator``, a ``note`` and a ``created_at``.
An import is all or nothing; rows that name no stored document, or are malformed, are counted and
explained with their line numbers, and nothing already stored is changed by them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.store import Store

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
    imported: int = 0
    unmatched: int = 0
    invalid: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, line: int, problem: str) -> None:
        if len(self.problems) < MAX_EXAMPLES:
            self.problems.append(f"line {line}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, row) for each row; a row that cannot be parsed comes as an error string."""
    suffix = path.suffix.lower()
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise LabelFileError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            if suffix == ".csv":
                reader = csv.DictReader(handle)
                if not reader.fieldnames or "score" not in reader.fieldnames:
                    raise LabelFileError(f"{path.name}: a CSV label file needs a 'score' column")
                for row in reader:
                    yield reader.line_num, dict(row)
            elif suffix in (".jsonl", ".ndjson", ".json"):
                for n, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield n, f"invalid JSON ({exc.msg})"
                        continue
                    yield n, row if isinstance(row, dict) else "not a JSON object"
            else:
                raise LabelFileError(f"{path.name}: label files are .csv or .jsonl")
        except UnicodeDecodeError as exc:
            raise LabelFileError(f"{path.name}: not UTF-8 text (byte {exc.start})") from exc


def _score(value: Any) -> int:
    score = float(value)
    if not score.is_integer() or not 0 <= score <= 5:
        raise ValueError(f"score {value!r} is not a whole number from 0 to 5")
    return int(score)


def _doc_id(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def import_labels(store: Store, path: Path, annotator: str) -> LabelImportReport:
    """Import a label file; ``annotator`` is used for rows that do not name one."""
    report = LabelImportReport()
    with store.transaction():
        for line, row in _rows(path):
            if isinstance(row, str):
                report.invalid += 1
                report.note(line, row)
                continue
            try:
                score = _score(row.get("score"))
                doc_id = store.find_document(
                    doc_id=_doc_id(row.get("doc_id")),
                    content_hash=row.get("content_hash"),
                    url=row.get("url"),
                )
            except (TypeError, ValueError) as exc:
                report.invalid += 1
                report.note(line, str(exc))
                continue
            if doc_id is None:
                report.unmatched += 1
                report.note(line, "names no document in this project (doc_id, content_hash, url)")
                continue
            store.set_label(
                doc_id,
                str(row.get("annotator") or annotator),
                score,
                row.get("note") or None,
                row.get("created_at") or None,
            )
            report.imported += 1
    return report


def export_labels(store: Store, path: Path) -> int:
    """Write every label to ``path`` (.csv or .jsonl); returns how many."""
    rows = store.labels()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise LabelFileError(f"{path.name}: label files are .csv or .jsonl")
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        if suffix == ".csv":
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return len(rows)
