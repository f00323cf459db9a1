"""The export gate of near-duplicates and benchmark overlap: what export drops and the funnel
counts, from the marks ``studio dedup`` and ``studio decontam`` stored.

A gate is shown once its step has run on the project (a funnel stage it never ran would claim
nothing was removed). A document dropped by both gates counts as a near-duplicate: that stage
comes first in the funnel.
"""

from __future__ import annotations

from studio.store import Store

# name, funnel label, the table a run leaves a row in, SQL: the document ``d`` is dropped
GATES: tuple[tuple[str, str, str, str], ...] = (
    (
        "near_duplicates",
        "without near-duplicates",
        "dedup_runs",
        "d.id IN (SELECT doc_id FROM dedup_marks WHERE doc_id != kept_doc_id)",
    ),
    (
        "decontamination",
        "without benchmark overlap",
        "decontam_runs",
        "d.id IN (SELECT doc_id FROM decontam_hits)",
    ),
)


def gate_stages(store: Store) -> list[tuple[str, str, str]]:
    """(stage name, funnel label, SQL condition on ``d``: dropped) of each gate that has run."""
    return [
        (name, label, cond)
        for name, label, table, cond in GATES
        if store.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
    ]


def gate_reasons(store: Store, doc_ids: list[int]) -> dict[int, tuple[str, str]]:
    """doc_id -> (kind of reason, the reason) for each of these documents a gate drops."""
    out: dict[int, tuple[str, str]] = {}
    for i in range(0, len(doc_ids), 500):
        chunk = doc_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        # min(id): the bare columns come from the document's first hit (an SQLite rule)
        for doc_id, _, benchmark, item_id, words, n, more in store.conn.execute(
            f"SELECT doc_id, min(id), benchmark, item_id, length(ngram), n, count(*) - 1 "
            f"FROM decontam_hits WHERE doc_id IN ({marks}) GROUP BY doc_id",
            chunk,
        ):
            others = f" (and {more} more span(s))" if more else ""
            out[doc_id] = (
                f"benchmark overlap ({benchmark})",
                f"shares a {n}-gram or longer span ({words} characters) with {benchmark} "
                f"item {item_id}{others}",
            )
        for doc_id, why in store.conn.execute(
            f"SELECT doc_id, reason FROM dedup_marks WHERE doc_id != kept_doc_id "
            f"AND doc_id IN ({marks})",
            chunk,
        ):
            out[doc_id] = ("near-duplicate", why)
    return out
