"""Hand labelling: what to label next, the rubric beside the page, undo, and agreement.

A :class:`LabelSession` walks a queue of documents for one annotator; every score is stored
the moment it is given, so nothing is lost if the studio is killed. Undo restores what the
annotator's label for that document was before.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from studio import paths
from studio.store import DocumentQuery, Store

RUBRIC_FILE = "rubric.md"
QUEUES = ("random", "search")


def rubric_text(project_root: Path | None) -> str:
    """The project's own rubric (``rubric.md`` in the project folder) or the shipped one."""
    if project_root is not None and (project_root / RUBRIC_FILE).is_file():
        return (project_root / RUBRIC_FILE).read_text("utf-8")
    return paths.resource(RUBRIC_FILE).read_text("utf-8")


def queue_ids(
    store: Store,
    annotator: str,
    query: DocumentQuery | None = None,
    seed: int = 0,
    limit: int = 100_000,
) -> list[int]:
    """Documents this annotator has not labelled, matching ``query``, in a seeded random order."""
    query = query or DocumentQuery()
    done = {
        r[0]
        for r in store.conn.execute("SELECT doc_id FROM labels WHERE annotator = ?", (annotator,))
    }
    ids = [i for i in store.document_ids(query, 0, limit) if i not in done]
    random.Random(seed).shuffle(ids)
    return ids


@dataclass
class LabelSession:
    """One annotator working through a queue. ``position`` points at the current document."""

    store: Store
    annotator: str
    ids: list[int]
    position: int = 0
    given: int = 0
    _undo: list[tuple[int, int, int | None]] = field(default_factory=list)  # (pos, doc, old)

    @property
    def current(self) -> int | None:
        return self.ids[self.position] if 0 <= self.position < len(self.ids) else None

    def peek(self, offset: int = 1) -> int | None:
        i = self.position + offset
        return self.ids[i] if 0 <= i < len(self.ids) else None

    def score(self, value: int) -> int | None:
        """Store ``value`` for the current document (committed at once) and move on; returns
        the document scored (None at the end of the queue)."""
        doc_id = self.current
        if doc_id is None:
            return None
        if not 0 <= value <= 5:
            raise ValueError(f"a score is 0 to 5, not {value}")
        self._undo.append((self.position, doc_id, self.store.label_of(doc_id, self.annotator)))
        self.store.set_label(doc_id, self.annotator, value)
        self.given += 1
        self.position += 1
        return doc_id

    def skip(self) -> None:
        if self.position < len(self.ids):
            self.position += 1

    def back(self) -> None:
        if self.position > 0:
            self.position -= 1

    def undo(self) -> bool:
        """Take back the last score given in this session; False when there is none."""
        if not self._undo:
            return False
        position, doc_id, old = self._undo.pop()
        if old is None:
            self.store.delete_label(doc_id, self.annotator)
        else:
            self.store.set_label(doc_id, self.annotator, old)
        self.given -= 1
        self.position = position
        return True


# -- agreement between annotators -----------------------------------------------------------------


@dataclass(slots=True)
class Agreement:
    a: str
    b: str
    shared: int
    kappa: float | None  # quadratic-weighted Cohen's kappa; None when undefined
    disagreements: list[tuple[int, int, int]]  # (doc id, a's score, b's score), widest first


def weighted_kappa(x: list[int], y: list[int], k: int = 6) -> float | None:
    """Cohen's kappa with quadratic weights for ordinal scores 0..k-1."""
    n = len(x)
    if n == 0:
        return None
    observed = [[0.0] * k for _ in range(k)]
    for i, j in zip(x, y, strict=True):
        observed[i][j] += 1
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            w = (i - j) ** 2 / (k - 1) ** 2
            num += w * observed[i][j]
            den += w * row[i] * col[j] / n
    return None if den == 0 else 1.0 - num / den


def agreement(store: Store, min_gap: int = 2) -> list[Agreement]:
    """Kappa for every pair of annotators over the documents both labelled, and the documents
    where their scores are ``min_gap`` or more apart."""
    by_annotator: dict[str, dict[int, int]] = {}
    for doc_id, annotator, score in store.conn.execute(
        "SELECT doc_id, annotator, score FROM labels"
    ):
        by_annotator.setdefault(annotator, {})[doc_id] = score
    out = []
    for a, b in combinations(sorted(by_annotator), 2):
        shared = sorted(set(by_annotator[a]) & set(by_annotator[b]))
        xa = [by_annotator[a][d] for d in shared]
        xb = [by_annotator[b][d] for d in shared]
        gaps = [
            (d, sa, sb) for d, sa, sb in zip(shared, xa, xb, strict=True) if abs(sa - sb) >= min_gap
        ]
        gaps.sort(key=lambda t: -abs(t[1] - t[2]))
        out.append(Agreement(a, b, len(shared), weighted_kappa(xa, xb), gaps))
    return out
