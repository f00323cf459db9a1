"""``studio bench classify``: scoring speed beside the bare extractor, on a generated project."""

from __future__ import annotations

import pytest

from studio.bench import classify as clf_bench
from studio.classify.features import FEATURE_SETS
from studio.project import Project
from studio.store import Store
from tests.core.test_classify import make_labelled_project


def test_bench_measures_every_feature_set(project: Project, store: Store) -> None:
    make_labelled_project(store, labelled=60, unlabelled=20)
    before = store.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0]
    result = clf_bench.run(project, store, model="logistic", repeats=2)
    assert result["pages"] == 80 and result["labels"] == 60
    assert [r["features"] for r in result["rows"]] == list(FEATURE_SETS)
    for r in result["rows"]:
        assert r["full_pages_per_second"] > 0 and r["bare_pages_per_second"] > 0
        assert r["full_pages_per_cpu_second"] > 0
        assert isinstance(r["overhead"], float) and r["overhead"] > -1.0
    assert result["default"] == "tfidf"  # no version trained: the studio's default
    assert {"overhead", "speed", "overhead_met", "speed_met"} <= set(result["targets"])
    table = clf_bench.format_table(result)
    for name in FEATURE_SETS:
        assert name in table
    assert "overhead < 15%" in table and "200 full pages/s" in table
    # nothing written: no version, no cached features
    assert store.classifier_versions() == []
    assert store.conn.execute("SELECT count(*) FROM feature_cache").fetchone()[0] == before


def test_bench_limit_and_needs_both_sides(project: Project, store: Store) -> None:
    make_labelled_project(store, labelled=30, unlabelled=10)
    result = clf_bench.run(project, store, model="ridge", limit=15, repeats=1)
    assert result["pages"] == 15
    with pytest.raises(ValueError):
        clf_bench.run(project, store, threshold=5.5, repeats=1)
