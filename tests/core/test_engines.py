"""Scoring engines: the sharded path (Parquet shards, worker processes, a real local Ray) gives
the local engine's scores, resumes from finished shards, and survives damaged run folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.classify.features import HandFeatures
from studio.classify.train import train_classifier
from studio.engines import ENGINES, make_engine
from studio.engines.shards import ShardRun, read_shard, score_shard, version_files
from studio.progress import Task
from studio.project import Project
from tests.core.test_classify import make_labelled_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project of 150 pages (60 labelled) and a tfidf+hand ridge version, never scored."""
    project = Project.open(tmp_path_factory.mktemp("engines") / "trained")
    with project.store() as store:
        make_labelled_project(store, labelled=60, unlabelled=90)
        train_classifier(project, store, features="tfidf+hand", model="ridge")
    return project.root


def _copy(trained: Path, tmp_path: Path, name: str) -> Project:
    return Project.open(shutil.copytree(trained, tmp_path / name), create=False)


def _scores(project: Project) -> dict[int, tuple[float, int]]:
    with project.store() as store:
        rows = store.conn.execute("SELECT doc_id, score, keep FROM classifier_scores")
        return {r[0]: (r[1], r[2]) for r in rows}


def _score(project: Project, engine: str, task: Task | None = None, **options):
    with project.store() as store, make_engine(engine, **options) as runner:
        return runner.score(project, store, task=task)


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) == 150
    assert max(abs(a[k][0] - b[k][0]) for k in a) <= 1e-9
    assert all(a[k][1] == b[k][1] for k in a)


@pytest.fixture(scope="module")
def local_scores(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = _copy(trained, tmp_path_factory.mktemp("local"), "local")
    report = _score(project, "local")
    assert (report.engine, report.scored, report.shards) == ("local", 150, 0)
    return _scores(project)


def test_a_shard_carries_text_and_cached_vectors(trained: Path, tmp_path: Path) -> None:
    project = _copy(trained, tmp_path, "p")
    with project.store() as store:
        from studio.classify.versions import load_classifier

        classifier = load_classifier(project, store)
        run = ShardRun(project, classifier.version)
        ids = store.document_ids()
        [shard] = run.plan(store, classifier, ids[:40], 100, Task())
        docs, cache = read_shard(run.path(shard))
        assert [d.doc_id for d in docs] == ids[:40] and docs[0].text
        # the hand vectors training cached for the labelled pages travel with the shard
        assert len(cache.vectors[("hand", HandFeatures.version)]) == 40
        files = version_files(project, store, classifier.version)
        assert {Path(n).suffix for n in files} <= {".json", ".npz"}
        result = score_shard(files, classifier.version, run.path(shard).read_bytes())
        expected, keep = classifier.predict(docs, store)
        assert np.array_equal(result["scores"], expected)
        assert np.array_equal(result["keep"], keep)
        manifest = json.loads((run.folder / "manifest.json").read_text())
        assert manifest["shards"] == [shard.to_dict()] and manifest["version"] == run.version


@pytest.mark.slow
def test_worker_processes_give_the_local_scores_and_resume_by_shard(
    trained: Path, tmp_path: Path, local_scores: dict
) -> None:
    project = _copy(trained, tmp_path, "p")
    task = Task()
    task._on_progress = lambda done, total, msg: msg.endswith(" done") and task.cancel()
    first = _score(project, "processes", task, workers=2, shard_rows=40)
    assert first.cancelled and first.engine == "processes" and first.shards == 4
    assert first.scored == 40  # one shard gathered, then the cancel was seen
    run = ShardRun(project, first.version)
    done = [s for s in run.shards if run.done(s)]
    assert len(done) == 1 and not run.path(done[0]).exists()  # its Parquet file is gone

    second = _score(project, "processes", workers=2, shard_rows=40)
    assert (second.scored, second.skipped, second.shards_skipped) == (110, 40, 1)
    assert not second.cancelled and second.shards == 4
    _assert_same(_scores(project), local_scores)
    assert _score(project, "processes").scored == 0  # nothing left: no pool started


def test_a_version_being_scored_in_shards_elsewhere_is_refused(trained: Path, tmp_path: Path):
    """Two sharded runs of one version wrote and deleted the same shard files: the second failed
    on a shard the first had finished ('No such file or directory')."""
    from studio.engines.shards import ShardError
    from studio.locks import exclusive

    project = _copy(trained, tmp_path, "p")
    with project.store() as store:
        from studio.classify.versions import latest_version

        version = latest_version(store)
    busy = f"scoring with {version} is being run by another"
    with exclusive(project.root, f"score-{version}", "another"):  # as a second terminal holds it
        for engine, options in (("processes", {"workers": 1, "shard_rows": 40}), ("local", {})):
            with pytest.raises(ShardError, match=busy):
                _score(project, engine, **options)
    assert _scores(project) == {}  # nothing written by the refused run
    assert not (project.root / "runs" / f"score-{version}").exists()


@pytest.mark.slow
def test_damaged_run_folders_are_repaired(trained: Path, tmp_path: Path, local_scores: dict):
    project = _copy(trained, tmp_path, "p")
    with project.store() as store:
        from studio.classify.versions import load_classifier

        classifier = load_classifier(project, store)
        run = ShardRun(project, classifier.version)
        shards = run.plan(store, classifier, store.document_ids(), 50, Task())
    assert len(shards) == 3
    run.path(shards[0]).write_bytes(b"PAR1 not really parquet")  # a torn write
    run.path(shards[1]).unlink()  # a lost file
    # a shard an older studio planned, without the url column: written again, or its pages'
    # URL features would be computed as URL-less and cached under today's hand version
    import pyarrow.parquet as pq

    old = pq.read_table(run.path(shards[2])).drop(["url"])
    pq.write_table(old, run.path(shards[2]))
    with project.store() as store:
        again = ShardRun(project, classifier.version)
        pending = again.plan(store, classifier, store.document_ids(), 50, Task())
    assert sum(s.rows for s in pending) == 150
    assert all("url" in pq.read_schema(again.path(s)).names for s in pending)
    report = _score(project, "processes", workers=1, shard_rows=50)
    assert report.scored == 150 and not report.cancelled
    _assert_same(_scores(project), local_scores)
    # a garbled manifest: the pages still unscored are sharded again, nothing is lost
    other = _copy(trained, tmp_path, "q")
    folder = ShardRun(other, classifier.version).folder
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{garbage")
    assert _score(other, "processes", workers=1).scored == 150


def test_engine_choices_are_checked() -> None:
    assert ENGINES == ("local", "processes", "ray")
    with pytest.raises(ValueError, match="unknown engine"):
        make_engine("spark")
    with pytest.raises(ValueError, match="--address names a Ray cluster"):
        make_engine("local", address="ray://head:10001")


@pytest.mark.slow
def test_ray_scores_like_the_local_engine_and_resumes(
    trained: Path, tmp_path: Path, local_scores: dict
) -> None:
    """One real local Ray (13-22 s to start, ~1.6 GB): the same scores as local scoring, to
    1e-9, over shards written under runs/, and a cancelled run resumed by shard."""
    pytest.importorskip("ray")
    from studio.engines.ray_engine import RayEngine

    project = _copy(trained, tmp_path, "p")
    task = Task()
    task._on_progress = lambda done, total, msg: msg.endswith(" done") and task.cancel()
    with RayEngine(num_cpus=2, shard_rows=50) as engine, project.store() as store:
        first = engine.score(project, store, task=task)
        assert first.cancelled and first.engine == "ray" and first.scored == 50
        second = engine.score(project, store)  # the same Ray, still running
        assert (second.scored, second.skipped, second.shards_skipped) == (100, 50, 1)
    _assert_same(_scores(project), local_scores)
    run = ShardRun(project, first.version)
    assert len(run.shards) == 3 and all(run.done(s) for s in run.shards)
    assert not list(run.folder.glob("*.parquet"))


@pytest.mark.slow
def test_embedding_versions_score_in_shards_and_cache_what_workers_embed(tmp_path: Path) -> None:
    from studio.classify.features import EmbeddingFeatures
    from tests.core.test_embed import make_tiny_model

    tiny = make_tiny_model(tmp_path / "tiny-bert")
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        ids = make_labelled_project(store, labelled=40, unlabelled=40)
        train_classifier(project, store, features="tfidf+minilm", model="ridge", embedding=tiny)
        key = EmbeddingFeatures(tiny).cache_version
        assert EmbeddingFeatures(tiny).cached_count(store, ids) == 40  # the labelled pages
    copy = _copy(project.root, tmp_path, "copy")
    _score(project, "local")
    report = _score(copy, "processes", workers=2, shard_rows=30)
    assert (report.scored, report.shards) == (80, 3)
    local, sharded = _scores(project), _scores(copy)
    # the labelled pages' vectors travel in the shards: exactly the local scores; the others
    # are embedded in other batches, equal to float32 rounding
    assert max(abs(local[i][0] - sharded[i][0]) for i in ids[:40]) <= 1e-9
    assert max(abs(local[i][0] - sharded[i][0]) for i in ids) < 1e-5
    with copy.store() as store:
        rows = store.conn.execute(
            "SELECT count(*) FROM feature_cache WHERE feature_set = 'minilm' AND version = ?",
            (key,),
        ).fetchone()[0]
    assert rows == 80  # what the workers embedded came back into the project's cache


def test_a_mistyped_ray_address_is_refused_before_anything_runs() -> None:
    """A project already scored had nothing left to send to the cluster, so a mistyped address
    was never looked at and the run reported "scored 0 pages in Ray tasks"."""
    from studio.engines.ray_engine import RayEngine

    for address in ("head", "--help", "h" * 300 + ":10001", "ray://:10001"):
        with pytest.raises(ConnectionError, match="is not a Ray address"):
            RayEngine(address)
    RayEngine("auto")  # Ray finds it itself
    RayEngine("ray://head.example:10001")  # well formed: reached only when there is work


def test_an_address_that_is_not_a_ray_head_fails_in_seconds(tmp_path: Path) -> None:
    """A port that accepts and never answers made Ray wait for minutes (two were still waiting
    when killed); one that answers junk too. The address is checked to speak gRPC, as a Ray
    head's GCS and client ports do, before Ray is started."""
    import socket
    import threading

    from studio.engines.ray_engine import RayEngine, reachable

    with pytest.raises(ConnectionError, match="a port is a number from 1 to 65535"):
        RayEngine("localhost:99999")
    RayEngine("ray://[::1]:10001")  # an IPv6 host in brackets is an address

    silent, junk = socket.socket(), socket.socket()
    accepted: list[socket.socket] = []
    for server in (silent, junk):
        server.bind(("127.0.0.1", 0))
        server.listen(4)

    def serve(server: socket.socket, reply: bytes) -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        if reply:
            conn.sendall(reply)

    threads = [
        threading.Thread(target=serve, args=(silent, b""), daemon=True),
        threading.Thread(
            target=serve, args=(junk, b"HTTP/1.1 400 Bad Request\r\n\r\n"), daemon=True
        ),
    ]
    for thread in threads:
        thread.start()
    silent_at = f"127.0.0.1:{silent.getsockname()[1]}"
    with pytest.raises(ConnectionError, match="did not answer in 0.5 s"):
        reachable(silent_at, timeout=0.5)
    junk_at = f"ray://127.0.0.1:{junk.getsockname()[1]}"
    with pytest.raises(ConnectionError, match="answers, but not as a Ray cluster"):
        reachable(junk_at, timeout=5)
    for sock in (silent, junk, *accepted):
        sock.close()


def test_a_grpc_server_that_is_not_ray_or_wants_a_token_is_named_in_seconds(monkeypatch) -> None:
    """A gRPC server without Ray's services passed the HTTP/2 check, and Ray then retried for
    over five minutes; so did one that replied junk or failed the call. A head that asks for a
    token (as `ray start` heads do) made Ray try for 20-30 s and blame the connection. All are
    real gRPC servers here: one with no services, one replying junk, one failing every call,
    one refusing every call for want of a token as a token-mode Ray head does."""
    from concurrent import futures

    import grpc

    from studio.engines.ray_engine import reachable

    class Answer(grpc.GenericRpcHandler):
        def __init__(self, status: grpc.StatusCode | None) -> None:
            self.status = status

        def service(self, call_details):
            def answer(request, context):
                if self.status is not None:
                    context.abort(self.status, "missing authentication token")
                return b"\xff\xfe not a reply \x00"

            return grpc.unary_unary_rpc_method_handler(answer)

    servers = {}
    for kind, handlers in (
        ("bare", ()),
        ("junk", (Answer(None),)),
        ("failing", (Answer(grpc.StatusCode.INTERNAL),)),
        ("token", (Answer(grpc.StatusCode.UNAUTHENTICATED),)),
    ):
        server = grpc.server(futures.ThreadPoolExecutor(2), handlers=handlers)
        servers[kind] = (server, server.add_insecure_port("127.0.0.1:0"))
        server.start()
    port = {kind: p for kind, (_, p) in servers.items()}
    try:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
        for address in (
            f"127.0.0.1:{port['bare']}",
            f"ray://127.0.0.1:{port['bare']}",
            f"127.0.0.1:{port['junk']}",  # a GCS replies with its cluster id
            f"127.0.0.1:{port['failing']}",
            f"ray://127.0.0.1:{port['failing']}",
        ):
            with pytest.raises(ConnectionError, match="answers, but not as a Ray cluster"):
                reachable(address, timeout=5)
        for address in (f"127.0.0.1:{port['token']}", f"ray://127.0.0.1:{port['token']}"):
            with pytest.raises(ConnectionError, match="asks for a token: set RAY_AUTH_MODE=token"):
                reachable(address, timeout=5)
        monkeypatch.setenv("RAY_AUTH_MODE", "token")  # Ray sends the token: its call
        reachable(f"127.0.0.1:{port['token']}", timeout=5)
    finally:
        for server, _ in servers.values():
            server.stop(None)


def test_worker_processes_end_when_the_run_is_killed() -> None:
    """A 'score --engine processes' killed with -9 left its workers waiting for work, their
    parent gone, until someone found them."""
    import subprocess
    import sys
    import time

    script = (
        "import os, signal\n"
        "from studio.engines.shards import ProcessPool\n"
        "pool = ProcessPool({}, 'v', 1)\n"
        "print(pool._executor.submit(os.getpid).result(timeout=120), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    worker = int(proc.stdout.split()[0])

    def running() -> bool:  # a zombie nobody has reaped yet has ended too
        try:
            status = Path(f"/proc/{worker}/status").read_text()
        except FileNotFoundError:
            return False
        return "\nState:\tZ" not in status

    deadline = time.monotonic() + 30
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(), f"worker {worker} outlived its killed parent"
