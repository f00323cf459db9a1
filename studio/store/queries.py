"""The corpus view's query: filters, sort and full-text search turned into one SQL statement."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

# Annotators named ``teacher:...`` are models that scored pages with the rubric
# (:mod:`studio.teacher_labels`). A page's label is the mean of the people's scores, and the
# teachers' mean only where no person scored the page: a teacher extends the labels and can be
# measured against the people, but never outvotes them.
TEACHER_PREFIX = "teacher:"


def label_mean(alias: str = "") -> str:
    """The SQL aggregate of a page's label over its rows in ``labels`` (``alias``: the table's
    alias, e.g. ``"l."``)."""
    person = f"{alias}annotator NOT LIKE '{TEACHER_PREFIX}%'"
    return f"coalesce(avg(CASE WHEN {person} THEN {alias}score END), avg({alias}score))"


# column name shown to the curator -> SQL expression it sorts by (each has an index)
SORT_COLUMNS: dict[str, str] = {
    "id": "d.id",
    "title": "d.title",
    "words": "d.n_words",
    "signal": "d.signal_share",
    "lang": "d.lang",
    "kind": "d.kind",
    "source": "d.source_id",
    "score": "cs.score",
    "label": f"(SELECT {label_mean('l.')} FROM labels l WHERE l.doc_id = d.id)",
}

LIST_COLUMNS = (
    "d.id, d.title, d.url, d.kind, d.lang, d.n_words, d.signal_share, s.path AS source, "
    "s.format AS format"
)


@dataclass(frozen=True, slots=True)
class DocumentQuery:
    """What the curator asked the corpus view to show."""

    search: str = ""
    source_id: int | None = None
    kind: str | None = None
    lang: str | None = None
    min_words: int | None = None
    max_words: int | None = None
    sort: str = "id"
    descending: bool = False
    # the classifier version whose scores the view shows, sorts and filters by
    score_version: str | None = None
    min_score: float | None = None
    labelled_only: bool = False
    # only documents up to this id: the corpus view's bound while another process imports
    max_id: int | None = None

    def with_(self, **changes: Any) -> DocumentQuery:
        return replace(self, **changes)


# terms of one search: every prefix term is a scan of the index's terms, and a pasted page
# of them would hold the corpus view (and the database) for minutes
MAX_SEARCH_TERMS = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# a letter or a digit: the index holds nothing else, so a term of punctuation alone ("-", "(")
# would match no page while an empty one ('"', "*") matches every page; both are dropped
_WORDY = re.compile(r"[^\W_]")


def fts_terms(text: str) -> list[str]:
    """The FTS5 terms of what a curator types, each once, in order (see :func:`fts_expression`)."""
    parts: dict[str, None] = {}
    for phrase, word in re.findall(r'"([^"]*)"|(\S+)', _CONTROL.sub(" ", text)):
        if _WORDY.search(phrase):
            parts['"' + phrase.replace('"', "") + '"'] = None
        elif word:
            prefix = word.endswith("*")
            token = word.rstrip("*").replace('"', "")
            if _WORDY.search(token):
                parts['"' + token + '"' + ("*" if prefix else "")] = None
    return list(parts)


def fts_expression(text: str) -> str:
    """Turn what a curator types into a safe FTS5 query: words are ANDed, "quoted phrases" kept,
    a trailing * makes a prefix; control characters separate words, a term given twice counts
    once, and only the first :data:`MAX_SEARCH_TERMS` terms are used. Nothing the curator types
    can be an FTS5 syntax error."""
    return " ".join(fts_terms(text)[:MAX_SEARCH_TERMS])


def _uses_scores(q: DocumentQuery) -> bool:
    return q.score_version is not None and (q.sort == "score" or q.min_score is not None)


def from_clause(q: DocumentQuery) -> str:
    """With a search, the full-text index drives the query: it yields matches in id order, so
    the first page of a million matches costs no more than the first page of ten. The scores of
    the view's classifier version join in when the view sorts or filters by them."""
    source = "documents d"
    if q.search and fts_expression(q.search):
        source = "document_fts f JOIN documents d ON d.id = f.rowid"
    if _uses_scores(q):
        source += " LEFT JOIN classifier_scores cs ON cs.doc_id = d.id AND cs.version = ?"
    return source


def where_clause(q: DocumentQuery) -> tuple[str, list[Any]]:
    """The WHERE clause and the arguments of the whole statement's placeholders: those of
    :func:`from_clause` first, as they come first in the SQL text."""
    conds: list[str] = []
    args: list[Any] = [q.score_version] if _uses_scores(q) else []
    match = fts_expression(q.search) if q.search else ""
    if match:
        conds.append("document_fts MATCH ?")
        args.append(match)
    for column, value in (("d.source_id", q.source_id), ("d.kind", q.kind), ("d.lang", q.lang)):
        if value is not None:
            conds.append(f"{column} = ?")
            args.append(value)
    if q.min_words is not None:
        conds.append("d.n_words >= ?")
        args.append(q.min_words)
    if q.max_words is not None:
        conds.append("d.n_words <= ?")
        args.append(q.max_words)
    if q.min_score is not None and _uses_scores(q):
        conds.append("cs.score >= ?")
        args.append(q.min_score)
    if q.labelled_only:
        conds.append("d.id IN (SELECT doc_id FROM labels)")
    if q.max_id is not None:
        conds.append("+d.id <= ?")  # "+": a bound, not an index to scan by (the sort has one)
        args.append(q.max_id)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


def order_clause(q: DocumentQuery) -> str:
    column = SORT_COLUMNS.get(q.sort, "d.id")
    if column == "cs.score" and not _uses_scores(q):
        column = "d.id"  # no classifier version to sort by
    if column == "d.id" and "f." in from_clause(q):
        column = "f.rowid"  # the index's own order: no sort step at all
    direction = "DESC" if q.descending else "ASC"
    tiebreak = "" if column in ("d.id", "f.rowid") else f", d.id {direction}"
    return f" ORDER BY {column} {direction}{tiebreak}"
