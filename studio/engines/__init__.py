"""Running a step over many documents: in this process, on local worker processes, or as Ray
tasks on a cluster. Today the step is scoring the corpus with a classifier version.

Every engine gives the same scores: the sharded engines (``processes``, ``ray``) write the
documents to Parquet shards under ``runs/score-<version>/``, ship the version's files (no
pickles) to the workers, and run there the very ``Classifier.predict`` local scoring runs.
All resume: local scoring skips scored documents, the sharded engines skip finished shards.

Example::

    with make_engine("ray", address="ray://head:10001") as engine, project.store() as store:
        report = engine.score(project, store, task=task)
"""

from __future__ import annotations

from typing import Any, Protocol

from studio.classify.score import ScoreReport
from studio.progress import Task
from studio.project import Project
from studio.store import Store

ENGINES = ("local", "processes", "ray")


class Engine(Protocol):
    name: str

    def score(
        self,
        project: Project,
        store: Store,
        version: str | None = None,
        *,
        task: Task | None = None,
    ) -> ScoreReport: ...

    def close(self) -> None: ...


class _Closing:
    """``with make_engine(...) as engine``: the engine is closed on the way out."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __enter__(self) -> Any:
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.engine.close()


def make_engine(
    name: str = "local",
    *,
    address: str | None = None,
    workers: int | None = None,
    num_cpus: int | None = None,
    shard_rows: int | None = None,
) -> _Closing:
    """An engine by name, as a context manager that closes it (a local Ray shuts down)."""
    from studio.engines.shards import SHARD_ROWS

    rows = shard_rows or SHARD_ROWS
    if address and name != "ray":
        raise ValueError("--address names a Ray cluster: use it with --engine ray")
    if name == "local":
        from studio.engines.local import LocalEngine

        return _Closing(LocalEngine())
    if name == "processes":
        from studio.engines.local import ProcessEngine

        return _Closing(ProcessEngine(workers or 2, shard_rows=rows))
    if name == "ray":
        from studio.engines.ray_engine import RayEngine

        return _Closing(RayEngine(address, num_cpus=num_cpus or workers, shard_rows=rows))
    raise ValueError(f"unknown engine {name} (known: {', '.join(ENGINES)})")
