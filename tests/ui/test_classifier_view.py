"""The Classifier tab: train on labels, read the metrics, score, move the threshold."""

from __future__ import annotations

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
    corpus.min_score.setValue(0.5)
    corpus._apply_filters()
    assert corpus.model.rowCount() == sum(s >= 0.5 for s in shown)
    corpus.labelled_only.setChecked(True)
    assert corpus.model.rowCount() <= 80
    window.tabs.setCurrentIndex(0)
    screenshot(window, "corpus-with-scores")
