"""The Diversity tab: measure rounds, read the plots and alarms, open the documents behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_diversity_cli import make_generated_project


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project for the tests that only read it (measuring writes nothing but caches)."""
    return make_generated_project(tmp_path_factory.mktemp("diversity") / "p").root


def test_no_attribute_hides_a_qt_method(qtbot, tmp_path: Path) -> None:
    """PySide calls a Python attribute named like a virtual method of the widget in its place:
    a combo box once stored as ``self.metric`` stood in for ``QWidget.metric()``, and painting
    the view on its own (as a window) crashed the studio."""
    from PySide6.QtCore import Signal
    from PySide6.QtWidgets import QWidget

    from studio.project import Project
    from studio.ui.qt_diversity import DiversityView

    project = Project.open(tmp_path / "p")
    with project.store() as store:
        view = DiversityView(project, store)
        qtbot.addWidget(view)
        # PySide keeps the signals it has bound in the instance too: those are its own
        ours = [n for n in vars(view) if not isinstance(getattr(QWidget, n, None), Signal)]
        assert [n for n in ours if hasattr(QWidget, n)] == []
        assert "metric_choice" in ours


@pytest.mark.slow
def test_the_view_on_its_own_measures_and_paints(qtbot, generated_root: Path, screenshot) -> None:
    """The view as its own top-level window (undocked, or in a test): progress repaints it while
    the measurement runs in the background; this is where the studio used to crash."""
    from studio.project import Project
    from studio.ui.qt_diversity import DiversityView

    project = Project.open(generated_root)
    with project.store() as store:
        view = DiversityView(project, store)
        qtbot.addWidget(view)
        view.resize(1300, 850)
        view.show()
        qtbot.waitExposed(view)
        seen: list[str] = []
        with qtbot.waitSignal(view.measured, timeout=180_000) as done:
            view.measure_button.click()
            view.op.on_progress(lambda *_: seen.append(view.progress.text()))
        assert len(seen) > 3 and any("embedding pages" in s for s in seen)
        assert [s.name for s in done.args[0].sets] == ["round 1", "round 2", "round 3"]
        assert view.measure_button.isEnabled() and not view.progress.isVisible()
        for index in range(view.plots.count()):
            view.plots.setCurrentIndex(index)
            assert not view.grab().isNull()
        view.plots.setCurrentIndex(0)
        screenshot(view, "diversity-standalone")


def test_cancel_keeps_what_was_shown(qtbot, generated_root: Path) -> None:
    from studio.project import Project
    from studio.ui.qt_diversity import DiversityView

    project = Project.open(generated_root)
    with project.store() as store:
        view = DiversityView(project, store)
        qtbot.addWidget(view)
        view.show()
        view.measure_button.click()
        view.cancel_button.click()  # before the op starts: its first check stops it
        qtbot.waitUntil(lambda: not view.op.running, timeout=60_000)
        assert view.summary.text().startswith("Cancelled")
        assert view.failed_box is None and view.report is None
        assert view.measure_button.isEnabled()


@pytest.mark.slow
def test_measure_rounds_and_open_an_alarm(qtbot, tmp_path: Path, screenshot) -> None:
    from studio.ui.qt_main import MainWindow

    project = make_generated_project(tmp_path / "p")
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
    assert view.alarms.currentRow() == -1  # the alarm no longer marked as these pages' own
    with qtbot.waitSignal(view.document_opened, timeout=5_000):  # and choosing it again works
        view.alarms.setCurrentRow(row)
    assert view.documents.count() == len(report.alarms[row].documents[:50])
    scatter.sigClicked.emit(scatter, points, None)
    for index, name in ((1, "map"), (2, "neighbours"), (3, "perplexity"), (4, "coverage")):
        view.plots.setCurrentIndex(index)
        screenshot(window, f"diversity-{name}")

    # crosses mark the sets where the measure shown is evidence of an alarm
    def crosses() -> list:
        items = view.metric_plot.getPlotItem().listDataItems()
        return [i for i in items if i.name() == "alarm on this measure"]

    view.plots.setCurrentIndex(0)
    assert view.metric_choice.currentData() == "vendi" and not crosses()
    view.metric_choice.setCurrentIndex(view.metric_choice.findData("repeated_openings"))
    assert len(crosses()) == 1
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


def test_nothing_measured_is_not_a_clean_bill_and_a_failure_marks_the_old_report(
    qtbot, window, screenshot
) -> None:
    """A filter matching nothing once read "No alarm: every set stays within reach of the real
    pages" over pages never measured; and a failed Measure left the previous report's summary
    standing as if it were this one's."""
    from studio.store import DocumentQuery
    from tests.core.test_classify import make_labelled_project

    make_labelled_project(window.store, labelled=60, unlabelled=30)  # real pages, none generated
    view = window.view("Diversity")
    view.grouping.setCurrentIndex(view.grouping.findData("query"))
    view.query = DocumentQuery(search="zzqxnothingmatches")
    with qtbot.waitSignal(view.measured, timeout=180_000):
        view.measure_button.click()
    text = view.summary.text()
    assert "(0 measured)" in text and "Nothing was measured" in text, text
    assert "No alarm: every set" not in text
    assert "needs at least 20 documents" in text and "“zzqxnothingmatches”: 0 documents" in text
    assert view.alarms.item(0).text().startswith("Nothing measured")
    window.resize(1400, 900)
    screenshot(window, "diversity-nothing-measured")

    view.grouping.setCurrentIndex(view.grouping.findData("round"))  # no generated pages
    view.measure_button.click()
    qtbot.waitUntil(lambda: view.failed_box is not None, timeout=60_000)
    text = view.summary.text()
    assert text.startswith("<b>Measuring failed</b>: ") and "no accepted generated pages" in text
    assert "still the previous measure's (by current corpus filter)" in text
    assert view.report is not None and view.report.by == "query"
