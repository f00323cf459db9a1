"""Active learning simulated on a generated labelled project: seeded, two comparable curves."""

from __future__ import annotations

import numpy as np
import pytest

from studio.classify.features import load_docs
from studio.classify.simulate import (
    _fit_predict,
    auto_step,
    default_choice,
    format_table,
    schedule,
    simulate,
    summarise,
)
from studio.classify.train import fit_extractors, labelled_set, set_matrix, train_classifier
from studio.progress import Task
from studio.project import Project
from studio.store import Store
from tests.core.test_classify import make_labelled_project


def test_schedule_ends_with_the_whole_pool() -> None:
    assert schedule(96, 20, 20) == [20, 40, 60, 80, 96]
    assert schedule(100, 20, 20) == [20, 40, 60, 80, 100]
    assert schedule(10, 20, 5) == [10]


def test_the_step_left_to_the_pool_keeps_a_simulation_about_40_rounds_long() -> None:
    # the demo's pools (512, 766 pages) keep the step of 20 the figures were measured with
    assert [auto_step(n) for n in (60, 512, 766, 800)] == [20, 20, 20, 20]
    assert auto_step(801) == 30 and auto_step(8_000) == 200
    for pool in (801, 3_333, 8_000, 80_000):
        step = auto_step(pool)
        assert step % 10 == 0 and 27 <= len(schedule(pool, 20, step)) <= 41, pool


def test_summary_finds_the_first_count_reaching_random_final_f1() -> None:
    s = summarise([20, 40, 60, 80, 100], [0.5, 0.6, 0.7, 0.75, 0.8], [0.6, 0.7, 0.81, 0.8, 0.8])
    assert s["labels_needed"] == 60 and s["share"] == 0.6 and s["target_met"]
    assert "60%" in s["text"]


@pytest.mark.slow  # two logistic runs: ~30 s on two cores
def test_simulation_returns_two_curves(store: Store) -> None:
    make_labelled_project(store, labelled=90, unlabelled=10)
    result = simulate(store, features="tfidf", model="logistic", start=10, step=15, folds=3)
    counts = result["label_counts"]
    assert counts[0] == 10 and counts == sorted(set(counts))
    assert counts[-1] == 60  # the smallest pool: 90 labels less a held-out third
    curves = result["curves"]
    assert set(curves) == {"random", "uncertainty"}
    assert len(curves["random"]) == len(curves["uncertainty"]) == len(counts)
    for f1s in curves.values():
        assert all(0.0 <= f <= 1.0 for f in f1s)
    s = result["summary"]
    assert counts[0] <= s["labels_needed"] <= counts[-1]
    assert 0.0 < s["share"] <= 1.0 and s["random_final_f1"] == curves["random"][-1]
    # every pool is 60 pages: at the end both ways have labelled the same pages
    assert curves["random"][-1] == curves["uncertainty"][-1]
    assert "of the labels" in format_table(result)
    # seeded: the same run gives the same figures
    again = simulate(store, features="tfidf", model="logistic", start=10, step=15, folds=3)
    assert again == result
    # no step asked for: 20 on a pool this small, and the result says which
    auto = simulate(store, features="tfidf", model="logistic", start=10, folds=3)
    assert auto["step"] == 20 and auto["label_counts"] == [10, 30, 50, 60]


def test_the_model_does_not_depend_on_the_order_labels_came_in(store: Store) -> None:
    """Random sampling and active learning label the same pages in other orders: the models
    they fit on the same pages must be the same (the keep cut's inner folds included)."""
    make_labelled_project(store, labelled=90, unlabelled=0)
    labels = labelled_set(store)
    docs = load_docs(store, labels.doc_ids)
    fitted = fit_extractors(["hand"], docs, docs, store, Task())
    X, y = set_matrix("hand", fitted), labels.targets
    pages = list(range(0, 90, 2))
    models = [
        _fit_predict(X, y, "ridge", 3.0, order, seed=0, lead=0)
        for order in (pages, pages[::-1], pages[1::2] + pages[::2])
    ]
    for model in models[1:]:
        assert model.cut == models[0].cut
        assert np.array_equal(model.predict(X), models[0].predict(X))


def test_simulation_with_ridge_and_checks(store: Store) -> None:
    make_labelled_project(store, labelled=60, unlabelled=0)
    result = simulate(store, features="hand", model="ridge", start=10, step=15, folds=3)
    assert len(result["curves"]["random"]) == len(result["label_counts"])
    with pytest.raises(ValueError):
        simulate(store, model="nope")
    with pytest.raises(ValueError):
        simulate(store, threshold=5.5)
    # 60 labels in 3 folds: each pool holds 40; a start of 40 leaves nothing to choose
    with pytest.raises(ValueError, match="--start 40 is not below the 40 labelled pages"):
        simulate(store, features="hand", model="ridge", start=40, folds=3)


def test_simulation_defaults_to_the_latest_version_and_averages_seeds(
    project: Project, store: Store
) -> None:
    make_labelled_project(store, labelled=60, unlabelled=0)
    assert default_choice(store) == ("tfidf", "ridge")  # nothing trained yet
    train_classifier(project, store, features="tfidf+hand", model="blend", folds=3)
    assert default_choice(store) == ("tfidf+hand", "blend")
    one = simulate(store, start=10, step=15, folds=3)
    assert (one["features"], one["model"], one["seeds"]) == ("tfidf+hand", "blend", 1)
    two = simulate(store, start=10, step=15, folds=3, seeds=2)
    assert two["seeds"] == 2 and two["label_counts"] == one["label_counts"]
    # the second repeat has other folds and orders: the mean moves, the first seed's run does not
    assert two["curves"] != one["curves"]
    assert simulate(store, start=10, step=15, folds=3) == one
    assert "seeds 0-1" in format_table(two) and "folds), seed 0\n" in format_table(one)
    with pytest.raises(ValueError, match="seeds"):
        simulate(store, seeds=0)
