"""The transformer embedding as classifier features: cached per model, compared by
cross-validation when asked or cached, recorded in every version, scored and shared (real
SQLite, real torch; a tiny random-weight BERT stands in for a chosen model folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.classify.embedding import embed_pages
from studio.classify.features import (
    EMBEDDING_SETS,
    FEATURE_SETS,
    EmbeddingFeatures,
    FeatureSet,
    load_docs,
)
from studio.classify.score import score_documents
from studio.classify.share import export_version, import_version
from studio.classify.train import train_classifier
from studio.classify.versions import load_classifier
from studio.embed import EmbeddingError
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import Store
from tests.core.test_classify import make_labelled_project
from tests.core.test_embed import make_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bert")


def _cached(store: Store, key: str | None = None) -> int:
    sql = "SELECT count(*) FROM feature_cache WHERE feature_set = 'minilm'"
    args: tuple = ()
    if key:
        sql, args = sql + " AND version = ?", (key,)
    return store.conn.execute(sql, args).fetchone()[0]


def test_vectors_are_cached_per_model_and_a_cancel_keeps_finished_batches(
    store: Store, tiny: Path, tmp_path: Path
) -> None:
    ids = make_labelled_project(store, labelled=40, unlabelled=0)
    docs = load_docs(store, ids)
    features = EmbeddingFeatures(tiny)
    features.BATCH = 10
    task, seen = Task(), []

    def on_progress(done: int, total: int, msg: str) -> None:
        seen.append((done, total))
        if done >= 20:
            task.cancel()

    task._on_progress = on_progress
    with pytest.raises(Cancelled):
        features.transform(docs, store, task)
    assert _cached(store, features.cache_version) == 20  # two batches of ten, committed
    assert seen[:2] == [(0, 40), (10, 40)] and "tiny-bert" in features.describe()["name"]

    X = features.transform(docs, store)
    assert X.shape == (40, 32) and _cached(store) == 40
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    # a cached vector is read back, not recomputed
    zeros = np.zeros(32, dtype="<f4").tobytes()
    store.conn.execute("UPDATE feature_cache SET vector = ? WHERE doc_id = ?", (zeros, ids[0]))
    assert not features.transform(docs[:1], store).any()
    # another model never reads these vectors: its key holds its own fingerprint
    other = EmbeddingFeatures(make_tiny_model(tmp_path / "other", seed=3))
    assert other.cache_version != features.cache_version
    assert other.cached_count(store, ids) == 0
    fresh = other.transform(docs[:1], store)
    assert fresh.any() and not np.allclose(fresh[0], X[0], atol=1e-3)


@pytest.mark.slow
def test_training_compares_the_transformer_when_asked_and_records_the_model(
    project: Project, store: Store, tiny: Path
) -> None:
    make_labelled_project(store, labelled=60, unlabelled=20)
    plain = train_classifier(project, store, model="ridge")
    assert {r["features"] for r in plain.table} == set(FEATURE_SETS)
    assert "not compared: 0 of 60 labelled pages are embedded" in plain.notes[0]
    assert "--embed" in plain.notes[0]

    report = train_classifier(project, store, model="ridge", embedding=str(tiny))
    assert {r["features"] for r in report.table} == set(FEATURE_SETS) | set(EMBEDDING_SETS)
    assert report.notes == ["transformer embeddings (tiny-bert) compared, as asked"]
    folder = project.root / report.version["path"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["notes"] == report.notes
    if "minilm" in report.chosen["features"]:
        assert meta["embedding"]["minilm"]["name"] == "tiny-bert"
        assert (folder / "minilm.json").is_file()
    # the static set's model is recorded too, whenever a version uses it
    static = train_classifier(project, store, features="tfidf+static", model="ridge")
    assert static.version["id"].endswith("tfidf_static-ridge")
    static_meta = json.loads((project.root / static.version["path"] / "meta.json").read_text())
    assert static_meta["embedding"]["static"]["name"] == "minilm-static"
    assert static.notes == []  # a named set: nothing else was compared

    # once every labelled page is cached for a model, auto compares it without being asked
    embed = json.loads(json.dumps(embed_pages(store, embedding=tiny)))
    assert embed["embedded"] == 0 and embed["cached_before"] == 60
    cached = train_classifier(project, store, model="ridge", embed=None, embedding=None)
    assert len(cached.table) == len(FEATURE_SETS)  # the shipped model's vectors are not cached
    off = train_classifier(project, store, model="ridge", embed=False, embedding=str(tiny))
    assert len(off.table) == len(FEATURE_SETS) and "turned off" in off.notes[0]


def test_embed_pages_then_auto_includes_the_cached_model(
    project: Project, store: Store, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_labelled_project(store, labelled=30, unlabelled=10)
    first = embed_pages(store, embedding=tiny, batch=8)
    assert (first["pages"], first["embedded"], first["cached_before"]) == (30, 30, 0)
    assert "30 labelled pages embedded with tiny-bert" in first["text"]
    every = embed_pages(store, every=True, embedding=tiny)
    assert (every["pages"], every["embedded"]) == (40, 10) and _cached(store) == len(ids)
    report = train_classifier(project, store, features="minilm", model="logistic", embedding=tiny)
    assert report.table[0]["features"] == "minilm"
    with pytest.raises(EmbeddingError, match="not a folder"):
        embed_pages(store, embedding=project.root / "nowhere")


@pytest.mark.slow
def test_a_minilm_version_scores_shares_and_refuses_a_changed_model(
    project: Project, store: Store, tiny: Path, tmp_path: Path
) -> None:
    model = shutil.copytree(tiny, tmp_path / "chosen")
    ids = make_labelled_project(store, labelled=40, unlabelled=20)
    report = train_classifier(
        project, store, features="tfidf+minilm", model="logistic", embedding=model
    )
    version = report.version["id"]
    scored = score_documents(project, store)
    assert (scored.version, scored.scored) == (version, 60)
    classifier = load_classifier(project, store)
    assert isinstance(classifier.features, FeatureSet)
    expected, _ = classifier.predict(load_docs(store, ids))  # computed afresh, no cache
    stored = dict(store.conn.execute("SELECT doc_id, score FROM classifier_scores").fetchall())
    assert np.allclose([stored[i] for i in ids], expected, atol=1e-6)

    # the version travels between projects (its model folder named by path)
    package = tmp_path / "edu.zip"
    export_version(project, store, package, version)
    other = Project.open(tmp_path / "other")
    with other.store() as other_store:
        imported = import_version(other, other_store, package)
    assert imported.feature_set == "tfidf+minilm"

    make_tiny_model(model, seed=5)  # the folder now holds another model
    with pytest.raises(EmbeddingError, match="retrain the classifier"):
        load_classifier(project, store)
    shutil.rmtree(model)
    with pytest.raises(EmbeddingError, match="not a folder"):
        load_classifier(project, store)


@pytest.mark.slow
def test_shipped_minilm_trains_on_whole_pages(project: Project, store: Store) -> None:
    make_labelled_project(store, labelled=30, unlabelled=0)
    report = train_classifier(project, store, features="minilm", model="logistic", embed=True)
    meta = json.loads((project.root / report.version["path"] / "meta.json").read_text())
    info = meta["embedding"]["minilm"]
    assert info["name"] == "all-MiniLM-L6-v2" and info["shipped"] and info["path"] is None
    assert info["dims"] == 384 and info["chunk_tokens"] == 256 and len(info["fingerprint"]) == 64
    # the generated pages carry their score in their vocabulary: the embedding sees it too
    assert report.table[0]["metrics"]["roc_auc"] > 0.8
