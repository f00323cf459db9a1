"""The Diversity tab: measure rounds, read the plots and alarms, open the documents behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_diversity_cli import make_generated_project


@pytest.mark.slow
def test_measure_rounds_and_open_an_alarm(qtbot, tmp_path: Path, shared_dir, screenshot) -> None:
    from studio.ui.qt_main import MainWindow

    project = make_generated_project(tmp_path / "p", shared_dir)
    window = MainWindow(project)
    qtbot.addWidget(window)
    window.show()
    window.resize(1500, 950)
    view = window.view("Diversity")  # built on first use
    assert "Measure" in view.summary.text()

    with qtbot.waitSignal(view.measured, timeout=180_000) as done:
        view.measure_button.click()
    report = done.args[0]
    assert [s.name for s in report.sets] == ["round 1", "round 2", "round 3"]
    assert "Alarms:" in view.summary.text() and "template collapse" in view.summary.text()
    assert view.metric_plot.getPlotItem().listDataItems()  # sets and the real median drawn
    screenshot(window, "diversity-measures")

    # the alarm lists the documents that show it; choosing one shows its text
    row = next(i for i, a in enumerate(report.alarms) if a.kind == "template collapse")
    with qtbot.waitSignal(view.document_opened, timeout=5_000) as opened:
        view.alarms.setCurrentRow(row)
    assert opened.args[0] == report.alarms[row].documents[0]
    assert view.reader.toPlainText() == window.store.main_text(opened.args[0])
    screenshot(window, "diversity-alarm")

    # the map: clicking points opens their documents too
    scatter = view.map_plot.getPlotItem().listDataItems()[-1]
    points = scatter.points()[:3]
    scatter.sigClicked.emit(scatter, points, None)
    assert view.documents.count() == 3
    for index, name in ((1, "map"), (2, "neighbours"), (3, "perplexity"), (4, "coverage")):
        view.plots.setCurrentIndex(index)
        screenshot(window, f"diversity-{name}")
    view.metric.setCurrentIndex(view.metric.findData("repeated_openings"))
    screenshot(window, "diversity-openings")

    # by plan cell, the coverage tab shows how many pages each cell of the plan has
    view.grouping.setCurrentIndex(view.grouping.findData("cell"))
    with qtbot.waitSignal(view.measured, timeout=180_000) as done:
        view.measure_button.click()
    assert done.args[0].by == "cell" and len(done.args[0].sets) == 3
    view.plots.setCurrentIndex(4)
    assert "Plan coverage" in view.cov_plot.getPlotItem().titleLabel.text
    screenshot(window, "diversity-plan-coverage")


def test_an_unfit_grouping_says_why(qtbot, window) -> None:
    view = window.view("Diversity")
    view.grouping.setCurrentIndex(view.grouping.findData("round"))
    view.measure_button.click()
    qtbot.waitUntil(lambda: view.failed_box is not None, timeout=60_000)
    assert "no accepted generated pages" in view.failed_box.text()
    assert view.measure_button.isEnabled()
