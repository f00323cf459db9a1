"""Score every document of the project with a classifier version, and say what a threshold keeps.

Scoring goes in batches, each committed on its own: a cancelled or interrupted run keeps what it
scored, and the next run skips documents that version has already scored.

Example::

    with project.store() as store:
        report = score_documents(project, store)          # the latest version
        print(keep_summary(store, report.version).text)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from studio.classify.features import load_docs
from studio.classify.versions import latest_version, load_classifier
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import Store

BATCH = 256


@dataclass(slots=True)
class ScoreReport:
    version: str
    scored: int  # by this run
    skipped: int  # scored by an earlier run
    total: int
    cancelled: bool = False
    engine: str = "local"
    shards: int = 0  # the sharded engines: shards of this version's run, in all
    shards_skipped: int = 0  # shards an earlier run had finished

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class KeepSummary:
    version: str
    threshold: float | None  # None: the version's own keep decision
    pages: int
    words: int
    kept_pages: int
    kept_words: int

    @property
    def page_share(self) -> float:
        return self.kept_pages / self.pages if self.pages else 0.0

    @property
    def word_share(self) -> float:
        return self.kept_words / self.words if self.words else 0.0

    @property
    def text(self) -> str:
        return (
            f"keeping {self.page_share:.0%} of pages ({self.kept_pages:,} of {self.pages:,}), "
            f"{short_count(self.kept_words)} of {short_count(self.words)} main-text words"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "page_share": round(self.page_share, 4),
            "word_share": round(self.word_share, 4),
            "text": self.text,
        }


def short_count(n: int) -> str:
    """580000 -> '580k': counts of words as a curator reads them."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def score_documents(
    project: Project,
    store: Store,
    version: str | None = None,
    *,
    batch: int = BATCH,
    task: Task | None = None,
) -> ScoreReport:
    """Score the documents this version has not scored yet; stops cleanly between batches."""
    task = task or Task()
    classifier = load_classifier(project, store, version)
    todo = store.unscored_documents(classifier.version)
    total = len(store.document_ids())
    report = ScoreReport(classifier.version, 0, total - len(todo), total)
    for start in range(0, len(todo), batch):
        if task.cancelled():
            report.cancelled = True
            break
        task.progress(report.skipped + report.scored, total, f"scoring with {classifier.version}")
        docs = load_docs(store, todo[start : start + batch])
        # a slow extractor (embeddings) reports pages and checks for a cancel inside the batch
        done = report.skipped + report.scored
        part = task.part(done, total, f"scoring with {classifier.version}")
        try:
            scores, keep = classifier.predict(docs, store, part)
        except Cancelled:
            report.cancelled = True
            break
        report.scored += store.add_scores(
            classifier.version,
            [(d.doc_id, float(s), bool(k)) for d, s, k in zip(docs, scores, keep, strict=True)],
        )
    task.progress(report.skipped + report.scored, total, "done")
    return report


def keep_summary(
    store: Store, version: str | None = None, threshold: float | None = None
) -> KeepSummary:
    """Pages and main-text words kept by a version (the latest when none is named): by its own
    decision, or by predicted score >= ``threshold`` (score-predicting models only)."""
    version = version or latest_version(store)
    if version is None:
        raise LookupError("no classifier trained yet: run `studio classifier train` first")
    rows = {v["id"]: v for v in store.classifier_versions()}
    if version not in rows:
        raise LookupError(f"no classifier version {version}")
    if threshold is not None and rows[version]["model_kind"] == "logistic":
        raise ValueError(
            "a logistic classifier predicts P(keep) at the threshold it was trained for; "
            "retrain it with another --threshold instead"
        )
    totals = store.kept_totals(version, threshold)
    return KeepSummary(version, threshold, **totals)


@dataclass(slots=True)
class KeepCurve:
    """Pages and words kept at any threshold, for a slider: one query, then numpy lookups."""

    scores: np.ndarray  # ascending
    words_above: np.ndarray  # words of the pages at or above each position
    total_words: int

    @classmethod
    def load(cls, store: Store, version: str) -> KeepCurve:
        rows = store.conn.execute(
            "SELECT s.score, d.signal_words FROM classifier_scores s "
            "JOIN documents d ON d.id = s.doc_id WHERE s.version = ?",
            (version,),
        ).fetchall()
        data = np.array(rows, dtype=np.float64).reshape(-1, 2)
        order = np.argsort(data[:, 0], kind="stable")
        scores, words = data[order, 0], data[order, 1]
        above = np.cumsum(words[::-1])[::-1] if len(words) else words
        return cls(scores, above, int(words.sum()))

    def kept(self, threshold: float) -> tuple[int, int]:
        """(pages, words) with score >= threshold."""
        i = int(np.searchsorted(self.scores, threshold, side="left"))
        pages = len(self.scores) - i
        return pages, int(self.words_above[i]) if pages else 0

    def histogram(self, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.scores):
            return np.zeros(0), np.zeros(1)
        return np.histogram(self.scores, bins=bins)
