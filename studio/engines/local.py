"""Engines of this machine: ``local`` scores in this process (batches of 256, the feature
cache read and filled as it goes); ``processes`` runs the sharded path of :mod:`shards` on
worker processes, the same path a Ray cluster runs."""

from __future__ import annotations

from typing import Any

from studio.classify.score import ScoreReport, score_documents
from studio.classify.versions import version_info
from studio.engines.shards import SHARD_ROWS, ProcessPool, ShardEngine, score_lock
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
        version = version_info(store, version).version  # the newest when None; unknown: said
        with score_lock(project, version):  # two runs would score the same pages twice
            return score_documents(project, store, version, task=task)

    def close(self) -> None:
        """Nothing held."""


class ProcessEngine(ShardEngine):
    name = "processes"

    def __init__(self, workers: int = 2, *, shard_rows: int = SHARD_ROWS) -> None:
        self.workers, self.shard_rows = max(1, workers), shard_rows

    def open_pool(self, files: dict[str, bytes], version: str) -> Any:  # a ProcessPool context
        return ProcessPool.opened(files, version, self.workers)

    def close(self) -> None:
        """The worker processes end with each run."""
