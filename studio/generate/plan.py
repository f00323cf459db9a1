"""The generation plan: cells (subtopic × audience × style × difficulty), how well each is covered
by accepted pages, and a balanced draw of the cells a batch writes next.

The draw takes the cells with the fewest pages first (accepted, plus those still being written,
so two batches do not pile on the same cells), breaking ties at random: coverage evens out
before any cell gets a second page.

Optional seeding (as Cosmopedia did): each drawn cell is paired with a kept web page of the
corpus on its subject, found by full-text search on the subtopic's words, and an extract of that
page goes into the prompt so the synthetic page follows a real one.
"""

from __future__ import annotations

import heapq
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from studio.generate.taxonomy import Dimensions, dimensions, subtopics
from studio.store import Store
from studio.text import abbreviated

GROUPS = ("cell", "subject", "topic", "subtopic", "audience", "style", "difficulty")
STATUSES = ("accepted", "rejected", "failed", "pending", "running")
EXTRACT_CHARS = 1500
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Cell:
    subject: str
    topic: str
    subtopic: str
    audience: str
    style: str
    difficulty: str

    @property
    def key(self) -> str:
        """The readable key pages are recorded under."""
        return (
            f"{self.subject} / {self.topic} / {self.subtopic} | {self.audience} | "
            f"{self.style} | {self.difficulty}"
        )

    def group(self, by: str) -> str:
        if by == "cell":
            return self.key
        if by == "topic":
            return f"{self.subject} / {self.topic}"
        if by == "subtopic":
            return f"{self.subject} / {self.topic} / {self.subtopic}"
        return str(getattr(self, by))

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "key": self.key}


@dataclass(slots=True)
class PlanChoice:
    """Which part of the plan a batch draws from: empty means every one of that dimension."""

    subjects: list[str] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    difficulties: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PlanChoice:
        data = data or {}
        return cls(
            **{
                k: list(data.get(k) or [])
                for k in ("subjects", "audiences", "styles", "difficulties")
            }
        )


class PlanError(ValueError):
    """The plan cannot give what was asked (no cells, no kept page to seed from)."""


def plan_cells(store: Store, choice: PlanChoice | None = None) -> list[Cell]:
    """Every cell of the plan's active subtopics and the chosen dimensions, in plan order."""
    choice = choice or PlanChoice()
    dims = dimensions(store)
    subs = subtopics(store)
    if choice.subjects:  # a subject the plan never had is a typo; one with none active, no cells
        known = list(dict.fromkeys(s.subject for s in subtopics(store, status=None)))
        unknown = [n for n in choice.subjects if n not in known]
        if unknown:
            raise PlanError(
                f"unknown subject {unknown[0]!r} (known: {abbreviated(', '.join(known), 300)})"
            )
        subs = [s for s in subs if s.subject in choice.subjects]
    audiences = _chosen(dims, "audiences", choice.audiences)
    styles = _chosen(dims, "styles", choice.styles)
    difficulties = _chosen(dims, "difficulties", choice.difficulties)
    return [
        Cell(s.subject, s.topic, s.subtopic, a, st, d)
        for s in subs
        for a in audiences
        for st in styles
        for d in difficulties
    ]


def _chosen(dims: Dimensions, kind: str, names: list[str]) -> list[str]:
    known = [d.name for d in getattr(dims, kind)]
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        singular = {"difficulties": "difficulty"}.get(kind, kind[:-1])
        raise PlanError(f"unknown {singular} {unknown[0]!r} (known: {', '.join(known)})")
    return [n for n in known if n in names]


def page_counts(store: Store) -> dict[str, Counter[str]]:
    """cell key -> pages by status, over every batch."""
    out: dict[str, Counter[str]] = {}
    for cell, status, n in store.conn.execute(
        "SELECT cell, status, count(*) FROM gen_pages GROUP BY cell, status"
    ):
        out.setdefault(cell, Counter())[status] = n
    return out


def draw_cells(
    store: Store, n: int, cells: list[Cell], rng: random.Random | None = None
) -> list[Cell]:
    """``n`` cells, those with the fewest accepted or in-flight pages first (ties at random)."""
    if not cells:
        raise PlanError("the plan has no cells: add subtopics, or choose fewer filters")
    rng = rng or random.Random()
    counts = page_counts(store)

    def weight(cell: Cell) -> int:
        c = counts.get(cell.key, Counter())
        return c["accepted"] + c["pending"] + c["running"]

    heap = [(weight(c), rng.random(), i) for i, c in enumerate(cells)]
    heapq.heapify(heap)
    drawn = []
    for _ in range(n):
        w, _tie, i = heapq.heappop(heap)
        drawn.append(cells[i])
        heapq.heappush(heap, (w + 1, rng.random(), i))
    return drawn


# -- coverage -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CoverageRow:
    group: str
    cells: int  # cells of the plan in this group
    covered: int  # of which with at least one accepted page
    counts: dict[str, int]  # pages by status

    @property
    def accepted(self) -> int:
        return self.counts.get("accepted", 0)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "cells": self.cells, "covered": self.covered, **self.counts}


def coverage(
    store: Store, by: str = "subject", choice: PlanChoice | None = None
) -> list[CoverageRow]:
    """Pages per group of cells (by ``cell``, ``subject``, ``topic``, …), in plan order.

    Pages are counted by the cell they are recorded under (``gen_pages.cell``), as the draw of
    the next batch counts them, so "covered" says what that draw sees. A page recorded under a
    cell that is not in the plan (its subtopic left the plan, or its cell was written in an old
    format, edited or imported) still counts: under its own subject, topic, … (read from the
    page's columns), and by ``cell`` under the cell it is recorded as, a row of 0 planned cells,
    so a curator sees those pages rather than losing them from the totals."""
    if by not in GROUPS:
        raise PlanError(f"unknown grouping {by!r} (known: {', '.join(GROUPS)})")
    counts = page_counts(store)
    rows: dict[str, CoverageRow] = {}
    for cell in plan_cells(store, choice):
        row = rows.setdefault(cell.group(by), CoverageRow(cell.group(by), 0, 0, _zero()))
        row.cells += 1
        c = counts.pop(cell.key, None)
        if c:
            _add(row, c)
            row.covered += c["accepted"] > 0
    for key, cell in _cells_of(store, set(counts)).items():  # cells the plan does not have
        group = key if by == "cell" else cell.group(by)
        _add(rows.setdefault(group, CoverageRow(group, 0, 0, _zero())), counts[key])
    return list(rows.values())


def _add(row: CoverageRow, counts: Counter[str]) -> None:
    for status, k in counts.items():
        row.counts[status] = row.counts.get(status, 0) + k


def _zero() -> dict[str, int]:
    return dict.fromkeys(STATUSES, 0)


def _cells_of(store: Store, keys: set[str]) -> dict[str, Cell]:
    """Recorded cell -> the cell its pages' columns name (one page's, should they differ)."""
    out: dict[str, Cell] = {}
    for r in store.conn.execute(
        "SELECT DISTINCT cell, subject, topic, subtopic, audience, style, difficulty FROM gen_pages"
    ):
        if r[0] in keys and r[0] not in out:
            out[r[0]] = Cell(*r[1:])
    return out


def coverage_summary(store: Store, choice: PlanChoice | None = None) -> dict[str, Any]:
    """How many cells the plan has, how many hold an accepted page, and the spread."""
    counts = page_counts(store)
    cells = plan_cells(store, choice)
    accepted = [counts.get(c.key, Counter())["accepted"] for c in cells]
    return {
        "cells": len(cells),
        "covered": sum(1 for a in accepted if a),
        "accepted": sum(accepted),
        "min_per_cell": min(accepted, default=0),
        "max_per_cell": max(accepted, default=0),
    }


# -- seeding from kept web pages ----------------------------------------------------------------


def kept_web_pages(store: Store) -> list[int]:
    """Web pages the corpus keeps: by the latest classifier's decision, else by the curators'
    labels (mean score 3 or more). Synthetic pages never seed."""
    version = store.conn.execute(
        "SELECT id FROM classifier_versions ORDER BY created_at DESC, id DESC LIMIT 1"
    ).fetchone()
    if version is not None:
        rows = store.conn.execute(
            "SELECT s.doc_id FROM classifier_scores s JOIN documents d ON d.id = s.doc_id "
            "WHERE s.version = ? AND s.keep = 1 AND d.kind != 'synthetic' ORDER BY s.doc_id",
            (version[0],),
        ).fetchall()
        if rows:
            return [r[0] for r in rows]
    rows = store.conn.execute(
        "SELECT l.doc_id FROM labels l JOIN documents d ON d.id = l.doc_id "
        "WHERE d.kind != 'synthetic' GROUP BY l.doc_id HAVING avg(l.score) >= 3 ORDER BY l.doc_id"
    ).fetchall()
    return [r[0] for r in rows]


class SeedPicker:
    """Pairs cells with kept web pages: the best full-text match among the kept pages that were
    used least, else the least-used kept page."""

    def __init__(self, store: Store, kept: list[int] | None = None) -> None:
        self.store = store
        self.kept = kept if kept is not None else kept_web_pages(store)
        if not self.kept:
            raise PlanError(
                "no kept web page to seed from: label pages (score 3 or more) or train and "
                "run the classifier first"
            )
        self._kept_set = set(self.kept)
        self.used: Counter[int] = Counter()

    def pick(self, cell: Cell) -> int:
        matches = self._search(cell.subtopic) or self._search(f"{cell.topic} {cell.subject}")
        pool = matches or self.kept
        least = min(self.used[d] for d in pool)
        doc_id = next(d for d in pool if self.used[d] == least)
        self.used[doc_id] += 1
        return doc_id

    def _search(self, text: str) -> list[int]:
        words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))[:8]
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in words)
        rows = self.store.conn.execute(
            "SELECT rowid FROM document_fts WHERE document_fts MATCH ? ORDER BY rank LIMIT 200",
            (query,),
        ).fetchall()
        return [r[0] for r in rows if r[0] in self._kept_set]


def extract(store: Store, doc_id: int, limit: int = EXTRACT_CHARS) -> str:
    """The start of a page's main text, cut at a paragraph or sentence end near ``limit``."""
    text = store.main_text(doc_id).strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    for sep in ("\n\n", ". ", "\n"):
        cut = head.rfind(sep)
        if cut > limit // 2:
            return head[: cut + 1].strip()
    return head.strip()
