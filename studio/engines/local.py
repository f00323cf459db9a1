"""Engines of this machine: ``local`` scores in this process (batches of 256, the feature
cache read and filled as it goes); ``processes`` runs the sharded path of :mod:`shards` on
worker processes, the same path a Ray cluster runs."""

from __future__ import annotations

from studio.classify.score import ScoreReport, score_documents
from studio.engines.shards import SHARD_ROWS, ProcessPool, score_in_shards
from studio.progress import Task
from studio.project import Project
from studio.store import Store


class LocalEngine:
    name = "local"

    def score(
        self,
        project: Project,
        store: Store,
        version: str | None = None,
        *,
        task: Task | None = None,
    ) -> ScoreReport:
        return score_documents(project, store, version, task=task)

    def close(self) -> None:
        """Nothing held."""


class ProcessEngine:
    name = "processes"

    def __init__(self, workers: int = 2, *, shard_rows: int = SHARD_ROWS) -> None:
        self.workers, self.shard_rows = max(1, workers), shard_rows

    def score(
        self,
        project: Project,
        store: Store,
        version: str | None = None,
        *,
        task: Task | None = None,
    ) -> ScoreReport:
        def pool(files: dict[str, bytes], version: str):  # -> ProcessPool context
            return ProcessPool.opened(files, version, self.workers)

        report = score_in_shards(
            project, store, pool, version, shard_rows=self.shard_rows, task=task
        )
        report.engine = self.name
        return report

    def close(self) -> None:
        """The worker processes end with each run."""
