"""The document sets a curator compares: generation rounds, batches, plan cells, teachers, sources,
classifier score bands, the corpus view's current filter, and the real pages.

Generated pages come from the ``gen_pages`` table when the project has one (a project that never
generated has none): only accepted pages that became documents count. The real pages are every
document that is not of kind ``synthetic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.store import DocumentQuery, Store
from studio.store.queries import fts_expression
from studio.text import visible

GROUPINGS = ("round", "batch", "cell", "teacher", "source", "band", "kind", "query")
GENERATION_COLUMNS = {"round": "round", "batch": "batch_id", "cell": "cell", "teacher": "teacher"}
SYNTHETIC = "synthetic"
BANDS = 5  # score bands are quintiles of the latest classifier version's scores
MAX_SETS = 40  # by source, the largest sources only: a plot of 500 sets helps nobody


class SetError(ValueError):
    """A grouping this project cannot offer (no generated pages, no classifier scores...)."""


@dataclass(slots=True)
class DocSet:
    """A named set of documents; ``x`` places it on the round axis of the plots."""

    name: str
    doc_ids: list[int]
    x: float | None = None
    info: dict[str, Any] = field(default_factory=dict)


def has_table(store: Store, name: str) -> bool:
    row = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def has_generation(store: Store) -> bool:
    """True when the project has generated pages that became documents."""
    if not has_table(store, "gen_pages"):
        return False
    row = store.conn.execute(
        "SELECT 1 FROM gen_pages WHERE status = 'accepted' AND doc_id IS NOT NULL LIMIT 1"
    ).fetchone()
    return row is not None


def real_ids(store: Store) -> list[int]:
    """Every document that is not synthetic, by id."""
    rows = store.conn.execute("SELECT id FROM documents WHERE kind != ? ORDER BY id", (SYNTHETIC,))
    return [int(r[0]) for r in rows]


def group_sets(store: Store, by: str, *, query: DocumentQuery | None = None) -> list[DocSet]:
    """The sets of grouping ``by`` (one of :data:`GROUPINGS`), in a natural order."""
    if by in GENERATION_COLUMNS:
        return _generation_sets(store, GENERATION_COLUMNS[by], by)
    if by == "source":
        return _source_sets(store)
    if by == "band":
        return _band_sets(store)
    if by == "kind":
        rows = store.conn.execute("SELECT kind, id FROM documents ORDER BY kind, id").fetchall()
        return _collect(rows, lambda k: str(k))
    if by == "query":
        q = query or DocumentQuery()
        if q.search and not fts_expression(q.search):  # "*" or "(": it would select everything
            raise SetError(f"the search “{visible(q.search[:80])}” has no words to look for")
        name = f"matching “{visible(q.search)}”" if q.search else "the corpus filter"
        return [DocSet(name, store.document_ids(q.with_(sort="id", descending=False)))]
    raise SetError(f"unknown grouping {by!r} (choose from {', '.join(GROUPINGS)})")


def _collect(rows: list[Any], name: Any, x: Any = None) -> list[DocSet]:
    sets: dict[Any, DocSet] = {}
    for key, doc_id in rows:
        if key not in sets:
            sets[key] = DocSet(name(key), [], x(key) if x else None)
        sets[key].doc_ids.append(int(doc_id))
    return list(sets.values())


def _generation_sets(store: Store, column: str, by: str) -> list[DocSet]:
    if not has_generation(store):
        raise SetError(
            "this project has no accepted generated pages yet: group by source, band or kind, "
            "or generate pages first"
        )
    rows = store.conn.execute(
        f"SELECT g.{column}, g.doc_id FROM gen_pages g JOIN documents d ON d.id = g.doc_id "
        f"WHERE g.status = 'accepted' ORDER BY g.{column} IS NULL, g.{column}, g.doc_id"
    ).fetchall()
    if by == "round":
        return _collect(rows, lambda r: f"round {r}", lambda r: float(r) if r is not None else None)
    return _collect(rows, lambda k: str(k) if k is not None else "(none)")


def _source_sets(store: Store) -> list[DocSet]:
    top = store.conn.execute(
        "SELECT source_id FROM documents GROUP BY source_id ORDER BY count(*) DESC, source_id "
        "LIMIT ?",
        (MAX_SETS,),
    ).fetchall()
    keep = [int(r[0]) for r in top]
    if not keep:
        return []
    marks = ",".join("?" * len(keep))
    rows = store.conn.execute(
        f"SELECT s.path, d.id FROM documents d JOIN sources s ON s.id = d.source_id "
        f"WHERE d.source_id IN ({marks}) ORDER BY s.path, d.id",
        keep,
    ).fetchall()
    return _collect(rows, lambda p: str(p))


def _band_sets(store: Store) -> list[DocSet]:
    from studio.classify.versions import latest_version

    version = latest_version(store)
    if version is None:
        raise SetError("no classifier version has scored the corpus: score it first")
    rows = store.conn.execute(
        "SELECT doc_id, score FROM classifier_scores WHERE version = ? ORDER BY score, doc_id",
        (version,),
    ).fetchall()
    if not rows:
        raise SetError(f"classifier version {version} has scored no document yet")
    scores = np.array([r[1] for r in rows], dtype=np.float64)
    edges = np.quantile(scores, np.linspace(0, 1, BANDS + 1))
    band = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, BANDS - 1)
    sets = []
    for b in range(BANDS):
        ids = [int(rows[i][0]) for i in np.flatnonzero(band == b)]
        if ids:
            name = f"score {edges[b]:.2f}–{edges[b + 1]:.2f}"
            sets.append(DocSet(name, ids, float(b + 1), {"version": version}))
    return sets
