"""Scoring in shards: the documents to score as Parquet files, scored anywhere, gathered back.

A run lives in ``runs/score-<version>/`` under the project:

- ``manifest.json``: the version, and one entry per shard (name, rows, first and last doc id);
- ``shard-NNNNN.parquet``: ``doc_id``, ``text`` (the main text), ``signal_share``, ``url``, and one
  ``cache:<extractor>`` column per cached feature (the float32 vector the project already holds
  for that page, or null), so a worker reuses what the project computed;
- ``shard-NNNNN.done``: written once the shard's scores are committed (rows, seconds, engine);
  the shard's Parquet file is deleted then. A rerun skips every shard that has its marker,
  reuses shards that were written but not scored, and shards only the documents still unscored.

A worker gets the classifier version's files as bytes (``meta.json``, ``.npz``, ``.json``: no
pickles) and one shard, and returns (doc ids, scores, keep decisions, the vectors it computed).
It runs :meth:`studio.classify.versions.Classifier.predict`, the very call local scoring makes,
so it gives the same scores. The driver writes each shard's scores in one transaction and the
new vectors into the project's feature cache.

Example::

    with project.store() as store:
        report = score_in_shards(project, store, ProcessPool(workers=2))
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from studio import __version__
from studio.classify.features import DocText, load_docs
from studio.classify.score import ScoreReport
from studio.classify.versions import Classifier, load_classifier, load_folder
from studio.locks import Busy, exclusive
from studio.progress import Task
from studio.project import Project
from studio.store import Store, now

SHARD_ROWS = 2000  # documents per shard: a few MB of text, seconds to score with TF-IDF
WRITE_BATCH = 5000  # score rows per executemany
CACHE_PREFIX = "cache:"


class ShardError(Exception):
    """A shard could not be scored, or the workers are not running this studio."""


# -- the worker's side -----------------------------------------------------------------------------


class ShardCache:
    """The two feature-cache calls of a Store, over the vectors a shard carries; what the
    classifier computes afresh is kept in ``fresh`` to be sent back."""

    def __init__(self, vectors: dict[tuple[str, str], dict[int, bytes]]) -> None:
        self.vectors = vectors
        self.fresh: dict[tuple[str, str], dict[int, bytes]] = {}

    def cached_features(self, name: str, version: str, doc_ids: list[int]) -> dict[int, bytes]:
        have = self.vectors.get((name, version), {})
        return {i: have[i] for i in doc_ids if i in have}

    def cache_features(self, name: str, version: str, vectors: dict[int, bytes]) -> None:
        self.fresh.setdefault((name, version), {}).update(vectors)


_loaded: dict[str, Classifier] = {}  # per worker process: one load per version, not per shard


def classifier_from_files(files: dict[str, bytes], version: str) -> Classifier:
    """A classifier version rebuilt from its files' bytes (cached in this process)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    key = f"{version}:{digest.hexdigest()}"
    if key not in _loaded:
        with tempfile.TemporaryDirectory(prefix="studio-classifier-") as tmp:
            for name, data in files.items():
                if Path(name).name != name:
                    raise ShardError(f"refused classifier file name {name!r}")
                (Path(tmp) / name).write_bytes(data)
            _loaded[key] = load_folder(Path(tmp), version)  # every file is read into memory
    return _loaded[key]


def score_shard(files: dict[str, bytes], version: str, shard: bytes) -> dict[str, Any]:
    """Score one shard (the Parquet file's bytes) with the version whose files are given."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    classifier = classifier_from_files(files, version)
    docs, cache = read_shard(shard)
    scores, keep = classifier.predict(docs, cache)
    return {
        "doc_ids": np.array([d.doc_id for d in docs], dtype=np.int64),
        "scores": np.asarray(scores, dtype=np.float64),
        "keep": np.asarray(keep, dtype=bool),
        "fresh": {f"{n}\0{v}": vecs for (n, v), vecs in cache.fresh.items()},
        "seconds": time.perf_counter() - t0,
        "studio_version": __version__,
        "host": os.uname().nodename if hasattr(os, "uname") else "",
    }


def read_shard(shard: bytes | Path) -> tuple[list[DocText], ShardCache]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pa.BufferReader(shard) if isinstance(shard, bytes) else str(shard)
    table = pq.read_table(source)
    ids = table.column("doc_id").to_pylist()
    texts = table.column("text").to_pylist()
    shares = table.column("signal_share").to_pylist()
    # a shard without a url column (planned by an older studio; a resumed run writes such
    # shards again, see _shard_ids): its pages read as URL-less
    urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * len(ids)
    docs = [
        DocText(int(i), t or "", float(s or 0.0), u or "")
        for i, t, s, u in zip(ids, texts, shares, urls, strict=True)
    ]
    vectors: dict[tuple[str, str], dict[int, bytes]] = {}
    for name in table.column_names:
        if name.startswith(CACHE_PREFIX):
            extractor, _, version = name[len(CACHE_PREFIX) :].partition("\0")
            column = table.column(name).to_pylist()
            vectors[(extractor, version)] = {
                i: blob for i, blob in zip(ids, column, strict=True) if blob is not None
            }
    return docs, ShardCache(vectors)


# -- the driver's side -----------------------------------------------------------------------------


def cache_keys(classifier: Classifier) -> list[tuple[str, str]]:
    """(name, version) of the extractors whose per-page vectors the project caches."""
    return [
        (ex.name, getattr(ex, "cache_version", ex.version))
        for ex in classifier.features.extractors
        if hasattr(ex, "raw")
    ]


def version_files(project: Project, store: Store, version: str) -> dict[str, bytes]:
    """The version folder's files, as bytes for the workers."""
    row = next(v for v in store.classifier_versions() if v["id"] == version)
    folder = project.root / row["path"]
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@dataclass(slots=True)
class Shard:
    name: str
    rows: int
    first: int
    last: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "first": self.first, "last": self.last}


class ShardRun:
    """The run folder of one version: its manifest, shards and completion markers."""

    def __init__(self, project: Project, version: str) -> None:
        self.version = version
        self.folder = project.dir("runs") / f"score-{version}"
        self.shards: list[Shard] = []
        path = self.folder / "manifest.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text("utf-8"))
                self.shards = [Shard(**s) for s in data.get("shards", [])]
            except (ValueError, TypeError, KeyError):
                self.shards = []  # a damaged manifest: unscored pages are sharded again

    def path(self, shard: Shard) -> Path:
        return self.folder / shard.name

    def done(self, shard: Shard) -> bool:
        return (self.folder / shard.name).with_suffix(".done").is_file()

    def mark_done(self, shard: Shard, info: dict[str, Any]) -> None:
        marker = self.path(shard).with_suffix(".done")
        _write_atomic(marker, json.dumps({**info, "finished_at": now()}, indent=1))
        self.path(shard).unlink(missing_ok=True)

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "version": self.version,
            "studio_version": __version__,
            "shards": [s.to_dict() for s in self.shards],
        }
        _write_atomic(self.folder / "manifest.json", json.dumps(manifest, indent=1))

    def plan(
        self,
        store: Store,
        classifier: Classifier,
        todo: list[int],
        shard_rows: int,
        task: Task,
    ) -> list[Shard]:
        """The shards left to score: those written before and not done (when still readable),
        then new ones for the unscored documents no such shard holds."""
        pending, covered = [], set()
        for shard in self.shards:
            if self.done(shard):
                continue
            ids = _shard_ids(self.path(shard))
            if ids is None:  # missing or unreadable: its pages are sharded again below
                self.path(shard).unlink(missing_ok=True)
                continue
            pending.append(shard)
            covered.update(ids)
        self.shards = [s for s in self.shards if self.done(s) or s in pending]
        rest = [i for i in todo if i not in covered]
        keys = cache_keys(classifier)
        number = max((int(s.name[6:11]) for s in self.shards), default=-1) + 1
        for start in range(0, len(rest), shard_rows):
            task.check()
            task.progress(start, len(rest), "writing shards")
            ids = rest[start : start + shard_rows]
            shard = Shard(f"shard-{number:05d}.parquet", len(ids), ids[0], ids[-1])
            write_shard(self.path(shard), store, ids, keys)
            self.shards.append(shard)
            pending.append(shard)
            number += 1
            self.save()  # after every shard: an interrupted planning resumes too
        self.save()
        return pending


def write_shard(path: Path, store: Store, ids: list[int], keys: list[tuple[str, str]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = load_docs(store, ids)
    columns: dict[str, Any] = {
        "doc_id": pa.array(ids, type=pa.int64()),
        "text": pa.array([d.text for d in docs], type=pa.large_string()),
        "signal_share": pa.array([d.signal_share for d in docs], type=pa.float64()),
        "url": pa.array([d.url for d in docs], type=pa.large_string()),
    }
    for name, version in keys:
        have = store.cached_features(name, version, ids)
        columns[f"{CACHE_PREFIX}{name}\0{version}"] = pa.array(
            [have.get(i) for i in ids], type=pa.large_binary()
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table(columns), tmp, compression="zstd")
    os.replace(tmp, path)


def _shard_ids(path: Path) -> list[int] | None:
    """The shard's document ids; None when it is missing, unreadable, or was written by a studio
    before the ``url`` column (its pages' URL features would be computed as URL-less and cached
    under the current hand features' version): such a shard is written again."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as shard:
            if "url" not in shard.schema_arrow.names:
                return None
            return shard.read(columns=["doc_id"]).column("doc_id").to_pylist()
    except (OSError, ValueError, KeyError, Exception):  # pyarrow raises its own error types
        return None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)


# -- pools: where the shards are scored ------------------------------------------------------------


class ShardPool(Protocol):
    """Runs :func:`score_shard` calls somewhere; handles are opaque."""

    name: str
    parallelism: int

    def submit(self, shard: Path) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[Any]: ...

    def result(self, handle: Any) -> dict[str, Any]: ...

    def cancel(self, handles: list[Any]) -> None: ...


PoolFactory = Callable[[dict[str, bytes], str], Any]  # (files, version) -> context manager


def score_in_shards(
    project: Project,
    store: Store,
    pool_factory: PoolFactory,
    version: str | None = None,
    *,
    shard_rows: int = SHARD_ROWS,
    task: Task | None = None,
) -> ScoreReport:
    """Score the documents ``version`` has not scored yet, shard by shard, on the pool the
    factory opens; stops cleanly between shards and resumes from the run folder."""
    task = task or Task()
    if shard_rows < 1:
        raise ValueError("a shard holds at least one document")
    classifier = load_classifier(project, store, version)
    with score_lock(project, classifier.version):  # two runs would share the shard files
        return _score_in_shards(project, store, pool_factory, classifier, shard_rows, task)


@contextmanager
def score_lock(project: Project, version: str) -> Iterator[None]:
    """Hold the scoring of ``version`` for one process, whatever the engine: a second run is
    refused with :class:`ShardError` instead of scoring the same pages (or shards) again."""
    try:
        with exclusive(project.root, f"score-{version}", f"scoring with {version}"):
            yield
    except Busy as exc:
        raise ShardError(str(exc)) from None


def _score_in_shards(
    project: Project,
    store: Store,
    pool_factory: PoolFactory,
    classifier: Classifier,
    shard_rows: int,
    task: Task,
) -> ScoreReport:
    version = classifier.version
    todo = store.unscored_documents(version)
    total = len(store.document_ids())
    run = ShardRun(project, version)
    report = ScoreReport(version, 0, total - len(todo), total)
    report.shards = len(run.shards)
    report.shards_skipped = sum(run.done(s) for s in run.shards)
    if not todo:
        task.progress(total, total, "done")
        return report
    files = version_files(project, store, version)
    # the pool first: a cluster that cannot be reached fails before any shard is written
    with pool_factory(files, version) as pool:
        pending = run.plan(store, classifier, todo, shard_rows, task)
        report.shards = len(run.shards)
        _drive(pool, run, pending, store, report, task)
    task.progress(
        report.skipped + report.scored, total, "cancelled" if report.cancelled else "done"
    )
    return report


class ShardEngine:
    """An engine that scores through :func:`score_in_shards` on the pool its subclass opens
    (:meth:`open_pool`: a context manager that yields a :class:`ShardPool`)."""

    name: str
    shard_rows: int = SHARD_ROWS

    def open_pool(self, files: dict[str, bytes], version: str) -> Any:
        raise NotImplementedError

    def score(
        self,
        project: Project,
        store: Store,
        version: str | None = None,
        *,
        task: Task | None = None,
    ) -> ScoreReport:
        report = score_in_shards(
            project, store, self.open_pool, version, shard_rows=self.shard_rows, task=task
        )
        report.engine = self.name
        return report


def _drive(
    pool: ShardPool,
    run: ShardRun,
    pending: list[Shard],
    store: Store,
    report: ScoreReport,
    task: Task,
) -> None:
    queue, inflight = list(pending), {}
    try:
        while queue or inflight:
            if task.cancelled():
                report.cancelled = True
                break
            while queue and len(inflight) < 2 * max(pool.parallelism, 1):
                shard = queue.pop(0)
                inflight[pool.submit(run.path(shard))] = shard
            for handle in pool.wait(list(inflight), 0.5):
                shard = inflight.pop(handle)
                try:
                    result = pool.result(handle)
                except Exception as exc:  # a worker's failure, whatever its type
                    raise ShardError(f"{shard.name} could not be scored: {exc}") from exc
                report.scored += _gather(run, shard, result, store, pool.name)
                task.progress(report.skipped + report.scored, report.total, f"{shard.name} done")
                if task.cancelled():
                    break
    finally:
        if inflight:
            pool.cancel(list(inflight))


def _gather(run: ShardRun, shard: Shard, result: dict[str, Any], store: Store, engine: str) -> int:
    """Commit a shard's scores and new vectors, then mark it done; returns the rows written."""
    if result.get("studio_version") != __version__:
        raise ShardError(
            f"the workers run studio {result.get('studio_version')}, this is {__version__}: "
            "install the same version on the cluster"
        )
    ids, scores, keep = result["doc_ids"], result["scores"], result["keep"]
    if not (len(ids) == len(scores) == len(keep)) or not np.all(np.isfinite(scores)):
        raise ShardError(f"{shard.name}: the worker returned malformed scores")
    rows = [(int(i), float(s), bool(k)) for i, s, k in zip(ids, scores, keep, strict=True)]
    for start in range(0, len(rows), WRITE_BATCH):
        store.add_scores(run.version, rows[start : start + WRITE_BATCH])
    for key, vectors in result.get("fresh", {}).items():
        name, _, version = key.partition("\0")
        store.cache_features(name, version, vectors)
    run.mark_done(
        shard,
        {"rows": len(rows), "seconds": round(float(result["seconds"]), 3), "engine": engine},
    )
    return len(rows)


# -- local worker processes ------------------------------------------------------------------------


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """A worker's initializer: end the worker when the process that started it is gone (killed
    with -9, it cannot shut its pool down, and its workers would wait for work forever)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class ProcessPool:
    """Shards scored by worker processes of this machine (spawned: safe beside Qt threads)."""

    name = "processes"

    def __init__(self, files: dict[str, bytes], version: str, workers: int = 2) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.files, self.version, self.parallelism = files, version, max(1, workers)
        self._executor = ProcessPoolExecutor(
            self.parallelism,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )

    def submit(self, shard: Path) -> Any:
        return self._executor.submit(score_shard, self.files, self.version, shard.read_bytes())

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [h for h in handles if h in done]  # in submission order

    def result(self, handle: Any) -> dict[str, Any]:
        return handle.result()

    def cancel(self, handles: list[Any]) -> None:
        for h in handles:
            h.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    @classmethod
    @contextmanager
    def opened(
        cls, files: dict[str, bytes], version: str, workers: int = 2
    ) -> Iterator[ProcessPool]:
        pool = cls(files, version, workers)
        try:
            yield pool
        finally:
            pool.close()
