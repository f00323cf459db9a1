"""The Classifier tab: train on labels, read the metrics, score, move the threshold."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.classify.features import FEATURE_SETS
from studio.classify.models import KINDS
from studio.ui.qt_corpus import COLUMNS
from tests.core.test_classify import make_labelled_project


def test_train_score_and_choose_a_threshold(qtbot, window, screenshot) -> None:
    make_labelled_project(window.store, labelled=80, unlabelled=40)
    view = window.view("Classifier")  # built on first use
    assert window.tabs.currentWidget() is view
    assert "No classifier yet" in view.reason.text()

    with qtbot.waitSignal(view.trained, timeout=120_000) as trained:
        view.train_button.click()
    version = trained.args[0]
    assert view.versions.currentData() == version
    # every feature set x model, cross-validated
    assert view.table.rowCount() == len(FEATURE_SETS) * len(KINDS)
    assert "F1" in view.reason.text() and "cross-validation" in view.reason.text()
    assert view.pr_plot.getPlotItem().listDataItems()  # curves drawn from the stored metrics

    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()
    assert view.curve is not None and len(view.curve.scores) == 120
    view.slider.setValue(0)
    assert "keeping <b>100% of pages</b>" in view.keep_label.text()
    view.slider.setValue(400)
    pages, _words = view.curve.kept(view.threshold_line.value())
    assert f"({pages:,} of 120)" in view.keep_label.text()
    window.resize(1500, 950)
    screenshot(window, "classifier-view")

    # the corpus view now shows, sorts and filters by the scores
    corpus = window.corpus
    qtbot.waitUntil(lambda: corpus.model.query.score_version == version, timeout=10_000)
    score_col = [c[1] for c in COLUMNS].index("score")
    corpus.table.sortByColumn(score_col, Qt.SortOrder.DescendingOrder)
    shown = [corpus.model.row(i)["score"] for i in range(corpus.model.rowCount())]
    assert shown == sorted(shown, reverse=True) and len(shown) == 120
    corpus.min_score.setValue(0.5)  # applied by the search box's debounce timer, as typed
    qtbot.waitUntil(lambda: not corpus._search_timer.isActive(), timeout=5_000)
    assert corpus.model.rowCount() == sum(s >= 0.5 for s in shown)
    corpus.labelled_only.setChecked(True)
    assert corpus.model.rowCount() <= 80
    window.tabs.setCurrentIndex(0)
    screenshot(window, "corpus-with-scores")


@pytest.mark.slow
def test_transformer_embeddings_chosen_by_folder(qtbot, window, screenshot, tmp_path) -> None:
    from studio.classify.features import EMBEDDING_SETS
    from tests.core.test_embed import make_tiny_model

    make_labelled_project(window.store, labelled=40, unlabelled=10)
    view = window.view("Classifier")
    assert not view.embed_check.isChecked() and "all-MiniLM-L6-v2" in view.embedding_label.text()
    assert not view.embedding_reset.isVisible()

    # a folder that is not a model is refused with the reason; nothing changes
    (tmp_path / "notes").mkdir()
    assert not view.set_embedding_folder(str(tmp_path / "notes"))
    assert "no config.json" in view.failed_box.text()
    view.failed_box.close()
    assert view.embedding_path is None and not view.embed_check.isChecked()

    tiny = make_tiny_model(tmp_path / "tiny-bert")
    assert view.set_embedding_folder(str(tiny))
    assert view.embed_check.isChecked() and "tiny-bert" in view.embedding_label.text()
    assert view.embedding_reset.isVisible()
    with qtbot.waitSignal(view.trained, timeout=300_000):
        view.train_button.click()
    rows = {view.table.item(r, 0).text() for r in range(view.table.rowCount())}
    assert rows == set(FEATURE_SETS) | set(EMBEDDING_SETS)
    assert view.table.rowCount() == len(rows) * len(KINDS)
    assert "compared, as asked" in view.reason.text()
    window.resize(1500, 950)
    screenshot(window, "classifier-embeddings")

    view.embedding_reset.click()
    assert view.embedding_path is None and "all-MiniLM-L6-v2" in view.embedding_label.text()
