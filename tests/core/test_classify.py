"""The educational-value classifier on a small generated project: features, models saved without
pickles, cross-validation, versions and resumable scoring (real SQLite, real scikit-learn)."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest

from studio.classify.features import (
    FEATURE_SETS,
    HAND_NAMES,
    HAND_V1,
    HAND_V2,
    STATIC_DIMS,
    STOPWORDS,
    DocText,
    FeatureSet,
    hand_vector,
    load_docs,
)
from studio.classify.models import (
    KINDS,
    ForestModel,
    LinearModel,
    best_cut,
    expected_f1_cut,
    export_forest,
    load_model,
)
from studio.classify.score import keep_summary, score_documents
from studio.classify.train import (
    SPEARMAN_TIE,
    TrainError,
    comparisons,
    labelled_set,
    learning_sizes,
    make_folds,
    scoring_cost,
    train_classifier,
)
from studio.classify.versions import label_hash, load_classifier
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import NewDocument, Store

EDU = [
    "chapter",
    "lesson",
    "explain",
    "example",
    "theorem",
    "proof",
    "equation",
    "definition",
    "students",
    "learn",
    "photosynthesis",
    "energy",
    "cell",
    "molecule",
    "experiment",
    "hypothesis",
    "evidence",
    "therefore",
    "because",
    "understand",
    "concept",
    "exercise",
    "solution",
    "step",
    "derivative",
    "function",
    "variable",
    "history",
    "cause",
]
OTHER = [
    "buy",
    "now",
    "sale",
    "discount",
    "cart",
    "shipping",
    "login",
    "subscribe",
    "cookie",
    "offer",
    "deal",
    "price",
    "click",
    "account",
    "password",
    "coupon",
    "cheap",
    "free",
    "trial",
    "newsletter",
    "follow",
    "share",
    "like",
    "comment",
    "sponsored",
]
FILLER = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "it",
    "that",
    "this",
    "for",
    "with",
    "on",
    "as",
]


def _text(score: int, rng: random.Random) -> str:
    """A page whose share of textbook vocabulary grows with its score (with some noise)."""
    sentences = []
    for _ in range(rng.randint(4, 9)):
        words = []
        for _ in range(rng.randint(8, 14)):
            roll = rng.random()
            if roll < 0.35:
                words.append(rng.choice(FILLER))
            else:
                edu = rng.random() < 0.1 + 0.16 * score
                words.append(rng.choice(EDU if edu else OTHER))
        sentences.append(" ".join(words).capitalize() + ".")
    return "\n".join(sentences)


def make_labelled_project(store: Store, labelled: int = 120, unlabelled: int = 40) -> list[int]:
    """``labelled`` scored pages (scores 0-5 evenly, a second annotator on every fifth) and
    ``unlabelled`` more; returns every document id."""
    rng = random.Random(7)
    src = store.add_source(store.begin_import(), "/gen/pages.jsonl", 1, 1.0, "jsonl")
    ids = []
    for i in range(labelled + unlabelled):
        score = i % 6
        text = _text(score, rng)
        n = len(text.split())
        doc_id = store.insert_document(
            NewDocument(src, f"hash{i}", "text", text, text, n, n, url=f"https://gen/{i}")
        )
        assert doc_id is not None
        ids.append(doc_id)
        if i < labelled:
            store.set_label(doc_id, "ana", score)
            if i % 5 == 0:
                store.set_label(doc_id, "ben", min(5, score + 1))
    return ids


@pytest.fixture
def labelled(store: Store) -> list[int]:
    return make_labelled_project(store)


# -- features --------------------------------------------------------------------------------------


def test_hand_features_are_finite_and_cached(store: Store, labelled: list[int]) -> None:
    vec = hand_vector("def f(x):\n    return x + 1\n- a list item\nWhy? Because 2 + 2 = 4.", 0.5)
    assert vec.shape == (len(HAND_NAMES),) and np.isfinite(vec).all()
    assert vec[HAND_NAMES.index("code_line_share")] > 0
    assert vec[HAND_NAMES.index("list_line_share")] > 0
    # the register: a sales pitch and an explanation read differently, whatever their topic
    pitch = hand_vector("Buy now! Our prices start at $19.\nContact us for a free demo!", 1.0)
    lesson = hand_vector(
        "Water boils at a lower temperature on a mountain because the air pressure is lower. "
        "For example, at 3,000 m it boils at about 90 degrees; the effect is known to cooks.",
        1.0,
    )
    for name in ("selling", "we", "prices"):
        assert pitch[HAND_NAMES.index(f"{name}_per_100_words")] > 0, name
        assert lesson[HAND_NAMES.index(f"{name}_per_100_words")] == 0, name
    assert lesson[HAND_NAMES.index("explaining_per_100_words")] == pytest.approx(100 * 4 / 33)
    assert pitch[HAND_NAMES.index("exclamations_per_sentence")] == pytest.approx(2 / 3)
    assert pitch[HAND_NAMES.index("short_line_share")] == 0.0
    assert lesson[HAND_NAMES.index("log_prose_lines")] == pytest.approx(math.log(2))
    docs = load_docs(store, labelled[:10])
    features = FeatureSet("hand").fit(docs, store)
    first = features.transform(docs, store)
    cached = store.conn.execute(
        "SELECT count(*) FROM feature_cache WHERE feature_set = 'hand' AND version = '3'"
    ).fetchone()[0]
    assert cached == 10
    assert np.array_equal(features.transform(docs, store), first)
    # a second pass reads the cache: a changed cached vector shows through
    zeros = np.zeros(len(HAND_NAMES), dtype="<f4").tobytes()
    store.conn.execute(
        "UPDATE feature_cache SET vector = ? WHERE doc_id = ?", (zeros, docs[0].doc_id)
    )
    assert not np.array_equal(features.transform(docs, store)[0], first[0])
    empty = features.transform([DocText(-1, "")])
    assert np.isfinite(empty).all()


def test_static_features_embed_whole_pages_and_are_cached(
    store: Store, labelled: list[int], tmp_path: Path
) -> None:
    docs = load_docs(store, labelled[:10])
    features = FeatureSet("static").fit(docs, store)
    first = features.transform(docs, store)
    assert first.shape == (10, STATIC_DIMS) and first.dtype == np.float32
    assert np.isfinite(first).all()
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-3)
    cached = store.conn.execute(
        "SELECT count(*) FROM feature_cache WHERE feature_set = 'static' AND version = '1'"
    ).fetchone()[0]
    assert cached == 10
    # a reloaded extractor (a fresh model) computes the same vectors, and reads the cache
    folder = tmp_path / "saved"
    loaded = FeatureSet.load("static", folder, features.save(folder))
    assert np.array_equal(loaded.transform(docs, store), first)
    assert np.allclose(loaded.transform(docs), first, atol=1e-5)
    zeros = np.zeros(STATIC_DIMS, dtype="<f4").tobytes()
    store.conn.execute(
        "UPDATE feature_cache SET vector = ? WHERE feature_set = 'static' AND doc_id = ?",
        (zeros, docs[0].doc_id),
    )
    assert not loaded.transform(docs, store)[0].any()
    # the whole page counts: text past the first 512 tokens moves the vector
    page = "The derivative measures how fast a function changes. " * 100
    a, b = features.transform([DocText(-1, page), DocText(-2, page + "Buy shoes now! " * 400)])
    assert float(a @ b) < 0.95
    assert np.isfinite(features.transform([DocText(-3, "")])).all()


def test_feature_sets_round_trip_without_pickle(
    store: Store, labelled: list[int], tmp_path: Path
) -> None:
    docs = load_docs(store, labelled)
    features = FeatureSet("tfidf+hand").fit(docs, store)
    X = features.transform(docs, store)
    width = len(features.extractors[0].vocabulary) + len(HAND_NAMES)
    assert X.shape == (len(docs), width)
    folder = tmp_path / "saved"
    versions = features.save(folder)
    assert {p.suffix for p in folder.iterdir()} <= {".json", ".npz"}
    loaded = FeatureSet.load("tfidf+hand", folder, versions)
    assert (loaded.transform(docs, store) != X).nnz == 0
    with pytest.raises(ValueError, match="retrain"):
        FeatureSet.load("tfidf+hand", folder, {**versions, "hand": "0"})


@pytest.mark.parametrize("version, width", [("1", HAND_V1), ("2", HAND_V2)])
def test_an_older_hand_classifier_still_loads_and_scores(
    store: Store, labelled: list[int], tmp_path: Path, version: str, width: int
) -> None:
    # versions 1 and 2 saved the first HAND_V1 / HAND_V2 features' scaling: a project's older
    # classifier reads those columns of today's vectors, so scoring with it gives what it gave
    docs = load_docs(store, labelled)
    today = FeatureSet("hand").fit(docs, store)
    X = today.transform(docs, store)
    extractor = today.extractors[0]
    folder = tmp_path / f"v{version}"
    folder.mkdir()
    np.savez(folder / "hand.npz", mean=extractor.mean[:width], std=extractor.std[:width])
    old = FeatureSet.load("hand", folder, {"hand": version})
    X1 = old.transform(docs, store)
    assert X1.shape == (len(docs), width)
    # the same standardised values; only the 1/sqrt(width) row scaling differs
    scale = math.sqrt(len(HAND_NAMES)) / math.sqrt(width)
    assert np.allclose(X1, X[:, :width] * scale, atol=1e-6)
    np.savez(folder / "hand.npz", mean=np.zeros(7), std=np.ones(7))
    with pytest.raises(ValueError, match="7 columns"):
        FeatureSet.load("hand", folder, {"hand": "1"})
    with pytest.raises(ValueError, match="unknown features"):
        FeatureSet("tfidf+bert")


# -- models ----------------------------------------------------------------------------------------


def _matrix(store: Store, ids: list[int]):
    docs = load_docs(store, ids)
    y = np.array([t[1] for t in store.label_targets()])
    return FeatureSet("tfidf+hand").fit(docs, store).transform(docs, store), y


@pytest.mark.parametrize("kind", ["ridge", "logistic", "forest"])
def test_models_predict_the_same_after_saving(
    kind: str, store: Store, labelled: list[int], tmp_path: Path
) -> None:
    X, y = _matrix(store, labelled[:120])
    model = (ForestModel() if kind == "forest" else LinearModel(kind)).fit(X, y, 3.0)
    model.save(tmp_path)
    with np.load(tmp_path / "model.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    loaded = load_model(kind, tmp_path)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.cut == model.cut
    assert np.array_equal(loaded.decide(loaded.predict(X)), model.decide(model.predict(X)))


def test_blend_is_the_mean_of_two_ridges_and_saves_as_one(
    store: Store, labelled: list[int], tmp_path: Path
) -> None:
    from sklearn.linear_model import Ridge

    from studio.classify.models import RIDGE_ALPHA, new_model

    X, y = _matrix(store, labelled[:120])
    lead = X.shape[1] - len(HAND_NAMES)  # tfidf+hand: TF-IDF leads
    blend = new_model("blend", lead).fit(X, y, 3.0)
    whole = Ridge(alpha=RIDGE_ALPHA).fit(X, y).predict(X)
    part = Ridge(alpha=RIDGE_ALPHA).fit(X[:, :lead], y).predict(X[:, :lead])
    assert np.allclose(blend.predict(X), (whole + part) / 2, rtol=0, atol=1e-5)
    assert not np.allclose(blend.predict(X), whole, rtol=0, atol=1e-3)  # the lead block counts
    assert blend.predicts_score and 0.0 < blend.cut < 5.0
    blend.save(tmp_path)
    loaded = load_model("blend", tmp_path)
    assert loaded.kind == "blend" and loaded.cut == blend.cut
    assert np.array_equal(loaded.predict(X), blend.predict(X))
    # no lead block (or one as wide as the set): a plain ridge
    assert np.allclose(new_model("blend").fit(X, y, 3.0).predict(X), whole, rtol=0, atol=1e-5)
    # new_model gives the lead to a blend only
    assert new_model("ridge", lead).lead is None


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://www.cs.example.edu/courses/intro/", (1, 0, 1, 0, 0)),
        ("https://gov.uk/guidance/tax", (1, 0, 0, 0, 0)),
        ("https://physics.ox.ac.uk/", (1, 0, 0, 0, 1)),
        ("https://www.canada.gc.ca/en/services", (1, 0, 0, 0, 0)),
        ("https://en.wikipedia.org/wiki/Photosynthesis", (0, 1, 1, 0, 0)),
        ("https://shop.example.com/products/red-mug?size=2", (0, 0, 0, 1, 0)),
        ("https://www.example.com/dp/B000123", (0, 0, 0, 1, 0)),
        ("HTTPS://WWW.EXAMPLE.COM/", (0, 0, 0, 0, 1)),
        ("https://www.example.com/?page=2", (0, 0, 0, 0, 0)),
        # words that only contain a marker are not one
        ("https://governor.example.com/storefront-history", (0, 0, 0, 0, 0)),
        ("https://example.com/guidebook", (0, 0, 0, 0, 0)),
        # no web address: nothing is claimed
        ("", (0, 0, 0, 0, 0)),
        ("ftp://files.example.edu/docs/", (0, 0, 0, 0, 0)),
        ("file:///home/curator/page.html", (0, 0, 0, 0, 0)),
        ("http://[broken/docs/", (0, 0, 0, 0, 0)),
        ("https://" + "a" * 9000 + ".edu/", (0, 0, 0, 0, 0)),
    ],
)
def test_url_features_read_the_address_as_a_curator_does(url: str, expected: tuple) -> None:
    vec = hand_vector("Some text.", 1.0, url)
    names = ("institutional", "org", "teaching_path", "shop_path", "site_root")
    got = tuple(int(vec[HAND_NAMES.index(f"url_{n}")]) for n in names)
    assert got == expected
    assert HAND_NAMES[HAND_V2:] == tuple(f"url_{n}" for n in names)  # appended: v2 is a prefix


def test_url_features_reach_the_classifier_from_the_store_and_from_a_shard(
    store: Store, labelled: list[int], tmp_path: Path
) -> None:
    from studio.engines.shards import read_shard, write_shard

    doc = load_docs(store, labelled[:1])[0]
    assert doc.url == store.document(doc.doc_id).url
    store.conn.execute(
        "UPDATE documents SET url = ? WHERE id = ?", ("https://x.edu/learn/", doc.doc_id)
    )
    doc = load_docs(store, [doc.doc_id])[0]
    assert hand_vector(doc.text, 1.0, doc.url)[HAND_NAMES.index("url_institutional")] == 1
    write_shard(tmp_path / "s.parquet", store, [doc.doc_id], [])
    (read,), _cache = read_shard(tmp_path / "s.parquet")
    assert (read.doc_id, read.text, read.url) == (doc.doc_id, doc.text, "https://x.edu/learn/")
    # a shard planned before the url column existed still reads, its pages without an address
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "s.parquet")
    pq.write_table(table.drop(["url"]), tmp_path / "old.parquet")
    (old,), _cache = read_shard(tmp_path / "old.parquet")
    assert (old.doc_id, old.text, old.url) == (doc.doc_id, doc.text, "")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Plain words. And MORE words? 12 + 30 = 42!",
        "Unicode digits ² ٣ Ⅷ and capitals ΣΔ ÉTÉ; (a) [b] 'c' \"d\" e-f",
        "WORD word Word wOrD the THE The " * 50,
    ],
)
def test_hand_vector_counts_like_the_plain_definitions(text: str) -> None:
    # the character and word shares are counted over distinct characters and words: the same
    # numbers as one test per character or word, which is what they are defined as
    vec = hand_vector(text, 1.0)
    words = re.findall(r"\w+", text)
    nw, nc = max(len(words), 1), max(len(text), 1)
    lower = [w.lower() for w in words]
    expected = {
        "mean_word_length": sum(len(w) for w in words) / nw,
        "type_token_ratio": len(set(lower)) / math.sqrt(nw),
        "stopword_share": sum(w in STOPWORDS for w in lower) / nw,
        "digit_share": sum(c.isdigit() for c in text) / nc,
        "punctuation_share": sum(c in ".,;:!?()[]\"'-" for c in text) / nc,
        "uppercase_share": sum(c.isupper() for c in text) / nc,
        "long_word_share": sum(len(w) >= 9 for w in words) / nw,
    }
    for name, value in expected.items():
        assert vec[HAND_NAMES.index(name)] == np.float32(value), name


def test_forest_export_matches_scikit_learn_exactly(store: Store, labelled: list[int]) -> None:
    from sklearn.ensemble import RandomForestRegressor

    X, y = _matrix(store, labelled[:120])
    est = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    ours = ForestModel(export_forest(est)).predict(X)
    assert np.allclose(ours, est.predict(X), rtol=0, atol=1e-12)


def test_forest_trees_see_at_most_forest_rows_pages(
    store: Store, labelled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.classify import models

    X, y = _matrix(store, labelled[:120])

    def largest_tree(forest: ForestModel) -> int:
        roots = forest.arrays["roots"]
        return int(np.diff(np.append(roots, len(forest.arrays["left"]))).max())

    # min_samples_leaf=2: a tree grown on 30 drawn pages has at most 15 leaves, 29 nodes
    monkeypatch.setattr(models, "FOREST_ROWS", 30)
    capped = ForestModel().fit(X, y, 3.0)
    assert largest_tree(capped) <= 29
    assert np.isfinite(capped.cut) and np.isfinite(capped.predict(X)).all()
    monkeypatch.setattr(models, "FOREST_ROWS", 2_000)  # more than the pages: every page drawn
    assert largest_tree(ForestModel().fit(X, y, 3.0)) > 29


def test_the_learning_curve_doubles_its_labels_up_to_the_training_folds() -> None:
    assert learning_sizes(20) == []
    assert learning_sizes(96) == [25, 50]
    assert learning_sizes(100) == [25, 50]  # the full training set is the curve's last point
    assert learning_sizes(766.4) == [25, 50, 100, 200, 400]
    assert learning_sizes(8000) == [25, 50, 100, 200, 400, 800, 1600, 3200, 6400]


def test_best_cut_maximises_f1_on_held_out_outputs() -> None:
    held_out = np.array([0.1, 0.2, 0.3, 0.4, 2.0, 2.2, 0.35])
    keep = np.array([False, False, False, False, True, True, True])
    # keeping everything above 0.325 catches all three pages at 3 false positives... the top
    # two alone give F1 0.8, the top four (0.35 included) give 6/7
    assert best_cut(held_out, keep, 3.0) == pytest.approx((0.35 + 0.3) / 2)
    assert best_cut(held_out, np.zeros(7, dtype=bool), 3.0) == 3.0


def test_expected_f1_cut_serves_the_pages_to_come_better_than_the_held_out_peak() -> None:
    """Outputs and keep decisions drawn from a known model: the cut learnt from 250 held-out
    pages is judged by the F1 it gives on 200,000 more. The held-out peak follows the luck of a
    few pages; the expected-F1 cut does not."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        out = rng.normal(1.5, 1.0, n)
        return out, rng.random(n) < 1 / (1 + np.exp(-2.2 * (out - 3.0)))

    world, world_keep = draw(200_000)

    def f1_in_the_world(cut: float) -> float:
        kept = world >= cut
        return 2 * (kept & world_keep).sum() / (kept.sum() + world_keep.sum())

    peak, expected = [], []
    for _ in range(100):
        out, keep = draw(250)
        peak.append(f1_in_the_world(best_cut(out, keep, 3.0)))
        expected.append(f1_in_the_world(expected_f1_cut(out, keep, 3.0)))
    assert np.mean(expected) > np.mean(peak) + 0.005
    assert np.std(expected) < np.std(peak) / 2


def test_expected_f1_cut_falls_back_where_no_curve_can_be_fitted() -> None:
    held_out = np.array([0.1, 0.2, 0.3, 0.4, 2.0, 2.2, 0.35])
    assert expected_f1_cut(held_out, np.zeros(7, dtype=bool), 3.0) == 3.0
    # outputs that rank the kept pages last: no increasing curve, the held-out peak decides
    keep = np.array([True, True, True, False, False, False, False])
    assert expected_f1_cut(held_out, keep, 3.0) == best_cut(held_out, keep, 3.0)
    with_gap = np.array([0.1, np.nan, 0.3, 2.0, 2.2, 2.4])
    cut = expected_f1_cut(with_gap, np.array([False, False, False, True, True, True]), 3.0)
    assert 0.3 < cut < 2.0


# -- training --------------------------------------------------------------------------------------


def test_folds_are_stratified_and_cover_every_label() -> None:
    y = np.array([0, 1, 2, 3, 4, 5] * 10, dtype=float)
    folds = make_folds(y, 3.0, 5, 0)
    assert len(folds) == 5
    tested = np.sort(np.concatenate([test for _, test in folds]))
    assert np.array_equal(tested, np.arange(60))
    for _, test in folds:
        assert np.bincount(y[test].astype(int)).tolist() == [2] * 6


def test_train_cross_validates_every_combination_and_stores_a_version(
    project: Project, store: Store, labelled: list[int]
) -> None:
    seen: list[tuple[int, int]] = []
    report = train_classifier(
        project, store, threshold=3, task=Task(lambda d, t, m: seen.append((d, t)))
    )
    pairs = [(r["features"], r["model"]) for r in report.table]
    assert pairs == comparisons(list(FEATURE_SETS), KINDS)
    assert len(pairs) == (len(KINDS) - 1) * len(FEATURE_SETS) + sum("+" in n for n in FEATURE_SETS)
    rows = {(r["features"], r["model"]): r["metrics"] for r in report.table}
    assert set(rows) >= {("tfidf+hand", "forest"), ("tfidf+hand", "blend")}
    # a blend of one block is that block's ridge: auto does not train it twice
    assert ("tfidf", "ridge") in rows and ("tfidf", "blend") not in rows
    assert seen[-1][0] == seen[-1][1]
    for row in report.table:
        m = row["metrics"]
        assert m["n"] == 120 and 0 <= m["f1_keep"] <= 1
        size = 6 if row["model"] != "logistic" else 2
        assert np.array(m["confusion"]["matrix"]).shape == (size, size)
        assert np.array(m["confusion"]["matrix"]).sum() == 120
        assert np.array(m["keep_confusion"]).sum() == 120
        assert sum(m["calibration"]["count"]) == 120
        curve = m["pr_curve"]
        assert len(curve["precision"]) == len(curve["recall"]) == len(curve["threshold"])
    chosen = next(
        r
        for r in report.table
        if (r["features"], r["model"]) == (report.chosen["features"], report.chosen["model"])
    )
    best_f1 = max(r["metrics"]["f1_keep"] for r in report.table)
    # a tie within one bootstrap standard error of the best F1, Spearman deciding
    assert 0.01 <= report.f1_band < 0.2
    assert chosen["metrics"]["f1_keep"] > best_f1 - report.f1_band
    tied = [r for r in report.table if best_f1 - r["metrics"]["f1_keep"] < report.f1_band]
    top_rho = max(r["metrics"]["spearman"] for r in tied)
    # ... and the cheaper features among those whose Spearman is within SPEARMAN_TIE of it
    assert chosen["metrics"]["spearman"] > top_rho - SPEARMAN_TIE
    close = [r for r in tied if top_rho - r["metrics"]["spearman"] < SPEARMAN_TIE]
    assert scoring_cost(chosen["features"]) == min(scoring_cost(r["features"]) for r in close)
    assert report.reason.startswith(f"{chosen['features']} with {chosen['model']}: F1")
    # the generated pages carry their score in their vocabulary: anything less is a bug
    assert chosen["metrics"]["spearman"] > 0.7 and chosen["metrics"]["f1_keep"] > 0.8
    assert [p["labels"] for p in report.learning_curve] == [25, 50, 96]
    assert report.learning_curve[-1]["f1_keep"] == chosen["metrics"]["f1_keep"]

    [version] = store.classifier_versions()
    assert version["id"] == report.version["id"]
    assert version["label_hash"] == label_hash(store.label_triples())
    assert version["n_labels"] == 120 + 24 and version["threshold"] == 3
    folder = project.root / version["path"]
    assert folder.parent == project.root / "models" / "classifier"
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["reason"] == report.reason and len(meta["cv_table"]) == len(report.table)
    assert not list(folder.parent.glob("*.tmp"))


def test_labels_hash_follows_the_labels(store: Store, labelled: list[int]) -> None:
    before = labelled_set(store)
    assert before.n_labels == 144 and len(before.doc_ids) == 120
    # a page scored 0 by ana and 1 by ben is a 0.5
    assert before.targets[0] == pytest.approx(0.5)
    store.set_label(labelled[1], "ana", 5)
    assert labelled_set(store).label_hash != before.label_hash


def test_training_refuses_labels_it_cannot_learn_from(project: Project, store: Store) -> None:
    ids = make_labelled_project(store, labelled=8, unlabelled=0)
    assert len(ids) == 8
    with pytest.raises(TrainError, match="label at least"):
        train_classifier(project, store)


def test_training_needs_both_sides_of_the_threshold(project: Project, store: Store) -> None:
    make_labelled_project(store, labelled=24, unlabelled=0)  # four pages score 5
    with pytest.raises(TrainError, match="each side of the threshold"):
        train_classifier(project, store, threshold=5)


def test_cancelled_training_stores_nothing(
    project: Project, store: Store, labelled: list[int]
) -> None:
    task = Task()

    def on_progress(done: int, total: int, msg: str) -> None:
        if msg.startswith("cross-validating"):
            task.cancel()

    task._on_progress = on_progress
    with pytest.raises(Cancelled):
        train_classifier(project, store, features="hand", model="ridge", task=task)
    assert store.classifier_versions() == []
    assert not (project.root / "models" / "classifier").exists()


def test_a_version_the_database_refuses_leaves_no_folder(
    project: Project, store: Store, labelled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only studio.db read-only, training stored its files, then failed on the row: the
    folder stayed behind with no version naming it."""
    import sqlite3

    def read_only(_row: object) -> None:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(store, "add_classifier_version", read_only)
    with pytest.raises(sqlite3.OperationalError):
        train_classifier(project, store, features="hand", model="ridge")
    assert list((project.root / "models" / "classifier").iterdir()) == []


# -- scoring ---------------------------------------------------------------------------------------


def test_scoring_resumes_after_a_cancel_and_matches_the_model(
    project: Project, store: Store, labelled: list[int]
) -> None:
    report = train_classifier(project, store, features="tfidf+hand", model="ridge")
    version = report.version["id"]
    task = Task()
    task._on_progress = lambda done, total, msg: task.cancel()  # stop after the first batch
    first = score_documents(project, store, batch=50, task=task)
    assert (first.version, first.scored, first.cancelled) == (version, 50, True)
    second = score_documents(project, store, batch=50)
    assert (second.scored, second.skipped, second.total) == (110, 50, 160)
    assert score_documents(project, store).scored == 0

    stored = dict(
        store.conn.execute(
            "SELECT doc_id, score FROM classifier_scores WHERE version = ?", (version,)
        ).fetchall()
    )
    classifier = load_classifier(project, store)
    expected, keep = classifier.predict(load_docs(store, labelled), store)
    assert np.allclose([stored[i] for i in labelled], expected)

    summary = keep_summary(store)
    assert summary.pages == 160 and summary.kept_pages == int(
        store.conn.execute("SELECT sum(keep) FROM classifier_scores").fetchone()[0]
    )
    assert 0 < summary.page_share < 1 and 0 < summary.kept_words < summary.words
    assert summary.text.startswith(f"keeping {summary.page_share:.0%} of pages")
    assert keep_summary(store, threshold=5.1).kept_pages <= summary.kept_pages


def test_scoring_without_a_classifier_says_so(project: Project, store: Store) -> None:
    with pytest.raises(LookupError, match="no classifier trained"):
        score_documents(project, store)
    make_labelled_project(store, labelled=60, unlabelled=0)
    train_classifier(project, store, features="hand", model="logistic")
    with pytest.raises(LookupError, match="no classifier version nope"):
        score_documents(project, store, "nope")
    with pytest.raises(ValueError, match="P\\(keep\\)"):
        keep_summary(store, threshold=4)


def test_keep_curve_matches_the_store_at_every_threshold(tmp_path) -> None:
    import numpy as np

    from studio.classify.score import KeepCurve
    from studio.project import Project
    from studio.store import NewDocument

    project = Project.open(tmp_path / "p")
    with project.store() as store:
        imp = store.begin_import()
        src = store.add_source(imp, "/x", 1, 1.0, "jsonl")
        store.conn.execute(
            "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold,"
            " metrics, label_hash, n_labels, path) VALUES ('v', 'now', 'hand', 'ridge', 3, '{}',"
            " 'h', 0, 'x')"
        )
        rng = np.random.default_rng(0)
        scores = []
        for i in range(50):
            n = int(rng.integers(1, 100))
            doc = store.insert_document(
                NewDocument(
                    source_id=src,
                    content_hash=str(i),
                    kind="text",
                    raw="w " * n,
                    main_text="w " * n,
                    n_words=n,
                    signal_words=n,
                )
            )
            scores.append((doc, float(rng.uniform(0, 5)), False))
        store.add_scores("v", scores)
        curve = KeepCurve.load(store, "v")
        for t in (0.0, 1.3, 2.5, 4.99, 5.1):
            want = store.kept_totals("v", t)
            assert curve.kept(t) == (want["kept_pages"], want["kept_words"])
        counts, edges = curve.histogram(10)
        assert counts.sum() == 50 and len(edges) == 11


def test_choice_is_f1_then_spearman_then_cost_within_their_noise() -> None:
    from studio.classify.train import choose, f1_standard_error

    def row(features: str, f1: float, rho: float) -> dict:
        return {"features": features, "model": "ridge", "metrics": {"f1_keep": f1, "spearman": rho}}

    table = [row("a", 0.70, 0.60), row("b", 0.66, 0.80), row("c", 0.60, 0.90)]
    best, why = choose(table, 3.0)  # the narrowest band: F1 decides
    assert best["features"] == "a" and "vs 0.66 for the next best (b with ridge)" in why
    best, why = choose(table, 3.0, band=0.05)
    assert best["features"] == "b"
    assert "within one standard error (0.05) of a with ridge (0.70)" in why
    assert "(0.80 vs 0.60)" in why
    # Spearman within SPEARMAN_TIE: the cheaper features decide, and the reason says so
    close = [row("tfidf+minilm", 0.66, 0.821), row("tfidf+hand", 0.67, 0.815), row("x", 0.5, 0.9)]
    best, why = choose(close, 3.0, band=0.05)
    assert best["features"] == "tfidf+hand"
    assert "within 0.01 of tfidf+minilm with ridge (0.821 vs 0.815)" in why
    assert "cheaper features decide" in why
    close[1]["metrics"]["spearman"] = 0.80  # 0.021 apart: Spearman decides again
    assert choose(close, 3.0, band=0.05)[0]["features"] == "tfidf+minilm"
    # the bootstrap spread shrinks as the labels grow, and is 0 for a perfect, unanimous set
    rng = np.random.default_rng(0)
    truth = rng.random(2000) < 0.2
    guess = np.where(rng.random(2000) < 0.8, truth, ~truth)
    small, large = f1_standard_error(truth[:200], guess[:200]), f1_standard_error(truth, guess)
    assert 0 < large < small < 0.15
    assert f1_standard_error(truth, truth) == 0.0


def test_a_damaged_version_says_so_and_names_its_files(
    project: Project, store: Store, labelled: list[int]
) -> None:
    from studio.classify.versions import ClassifierFileError, version_info

    version = train_classifier(project, store, features="hand", model="ridge").version["id"]
    assert load_classifier(project, store, "latest").version == version  # a curator's word
    folder = project.root / store.classifier_versions()[0]["path"]
    model = folder / "model.npz"
    model.write_bytes(model.read_bytes()[:1000])  # a copy cut short
    with pytest.raises(ClassifierFileError, match=f"classifier {version} cannot be read") as err:
        load_classifier(project, store)
    assert isinstance(err.value, LookupError) and "damaged" in str(err.value)
    (folder / "meta.json").write_text("{bad", "utf-8")
    with pytest.raises(ClassifierFileError, match="meta.json cannot be read"):
        version_info(store, version)


def test_a_damaged_project_database_is_refused_with_its_reason(tmp_path: Path) -> None:
    from studio.project import ProjectError

    project = Project.open(tmp_path / "p")
    project.db_path.write_bytes(random.Random(0).randbytes(100_000))
    with pytest.raises(ProjectError, match="is damaged or is not a Textbook Studio database"):
        Project.open(tmp_path / "p", create=False)


def test_each_way_meta_json_is_unusable_is_named(
    project: Project, store: Store, labelled: list[int]
) -> None:
    """A version's meta.json is a file a curator can delete, overwrite or edit: each way it is
    unusable is said in words, not as the first lookup's KeyError or TypeError."""
    import json
    import shutil

    from studio.classify.versions import ClassifierFileError, load_folder, read_meta

    version = train_classifier(project, store, features="hand", model="ridge").version["id"]
    folder = project.root / store.classifier_versions()[0]["path"]
    meta = folder / "meta.json"
    saved = json.loads(meta.read_text("utf-8"))
    assert read_meta(folder, version) == saved
    damages = [
        (lambda: meta.write_bytes(b"\xff{garbage"), "meta.json is not UTF-8 text"),
        (lambda: meta.write_text("{bad", "utf-8"), "meta.json is not valid JSON"),
        (lambda: meta.write_text("[]", "utf-8"), "meta.json holds a list, not a JSON object"),
        (
            lambda: meta.write_text(json.dumps({**saved, "model_kind": None}), "utf-8"),
            None,  # a key that is there, though wrong, is the model loader's to refuse
        ),
        (
            lambda: meta.write_text(
                json.dumps({k: v for k, v in saved.items() if k != "threshold"}), "utf-8"
            ),
            "meta.json names no threshold",
        ),
        (meta.unlink, "meta.json is missing"),
        (lambda: shutil.rmtree(folder), "its folder is missing"),
    ]
    for damage, reason in damages:
        damage()
        if reason is None:
            with pytest.raises(ClassifierFileError, match=f"classifier {version} cannot be read"):
                load_folder(folder, version)
            continue
        with pytest.raises(ClassifierFileError, match=reason) as err:
            read_meta(folder, version)
        assert str(folder) in str(err.value) and "train it again" in str(err.value)
        with pytest.raises(ClassifierFileError, match=reason):
            load_folder(folder, version)
    # a version without its cross-validated metrics (an import may lack them) still loads
    version2 = train_classifier(project, store, features="hand", model="ridge").version["id"]
    folder2 = project.root / store.classifier_versions()[-1]["path"]
    kept = json.loads((folder2 / "meta.json").read_text("utf-8"))
    del kept["metrics"]
    (folder2 / "meta.json").write_text(json.dumps(kept), "utf-8")
    assert load_folder(folder2, version2).version == version2
