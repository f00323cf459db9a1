"""What ``studio bench ui`` measures inside a freshly started studio process.

The parent sets STUDIO_T0 (its clock just before starting this process) so that "start to
first paint" includes interpreter start and every import, as a curator experiences it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer

from studio.ui.commands import SEARCHES


class _FirstPaint(QObject):
    def __init__(self, on_paint) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.on_paint = on_paint
        self.seen = False

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if not self.seen and event.type() == QEvent.Type.Paint:
            self.seen = True
            self.on_paint()
        return False


def _timed(fn, app) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    app.processEvents()
    return (time.perf_counter() - start) * 1000


def measure(project_path: Path) -> int:
    t0 = float(os.environ.get("STUDIO_T0", time.time()))
    from studio.project import Project
    from studio.ui.app import application
    from studio.ui.qt_main import MainWindow

    app = application()
    window = MainWindow(Project.open(project_path, create=False))
    results: dict[str, float | list[float] | int] = {}

    def painted() -> None:
        results["first_paint_s"] = time.time() - t0
        QTimer.singleShot(0, run_interactions)

    def run_interactions() -> None:
        try:
            interact()
        finally:
            window.close()
            app.quit()

    def interact() -> None:
        table = window.corpus.table
        start = time.perf_counter()
        while not window.corpus.model.exact:
            app.processEvents()
        results["first_count_ms"] = (time.perf_counter() - start) * 1000
        n = window.corpus.model.rowCount()
        results["documents"] = n
        results["open_first_ms"] = _timed(lambda: window.corpus.select_row(0), app)
        results["open_middle_ms"] = _timed(lambda: window.corpus.select_row(n // 2), app)
        results["scroll_bottom_ms"] = _timed(table.scrollToBottom, app)
        results["scroll_top_ms"] = _timed(table.scrollToTop, app)
        pages = []
        bar = table.verticalScrollBar()
        for i in range(20):
            pages.append(_timed(lambda i=i: bar.setValue(bar.maximum() * i // 20), app))
        results["scroll_jump_ms_max"] = max(pages)
        results["sort_words_ms"] = _timed(
            lambda: table.sortByColumn(2, Qt.SortOrder.DescendingOrder), app
        )
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        searches, counts = [], []
        for q in SEARCHES:

            def search(q=q) -> None:  # type: ignore[no-untyped-def]
                window.corpus.search.setText(q)
                window.corpus._apply_filters()
                window.corpus.table.viewport().repaint()

            start = time.perf_counter()
            searches.append(_timed(search, app))
            while not window.corpus.model.exact:
                app.processEvents()
            counts.append((time.perf_counter() - start) * 1000)
        results["search_ms"] = searches
        results["search_count_ms"] = counts
        results["search_hits"] = window.corpus.model.rowCount()
        print(json.dumps(results), flush=True)

    watcher = _FirstPaint(painted)
    window.installEventFilter(watcher)
    window.show()
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    return 0 if "search_ms" in results else 1


def measure_labelling(project_path: Path, pages: int) -> dict[str, float | int]:
    """Score ``pages`` pages with the keyboard in the Label tab; time from the keypress until the
    next page is on screen (the score itself is written on the writer thread meanwhile)."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from studio.project import Project
    from studio.ui.app import application
    from studio.ui.qt_main import MainWindow

    app = application()
    window = MainWindow(Project.open(project_path, create=False))
    window.show()
    window.tabs.setCurrentWidget(window.label_view)
    view = window.label_view
    view.annotator.setText("bench")
    view.start_button.click()
    while view.session is None:
        app.processEvents()
    window.activateWindow()
    view.setFocus()
    QApplication.processEvents()
    times = []
    for i in range(pages):
        if view.session.current is None:
            break
        expected = view.session.peek()
        start = time.perf_counter()
        QTest.keyClick(view, Qt.Key(Qt.Key.Key_0 + i % 6))
        shown = view.document.page.record.id if view.document.page else None
        view.document.repaint()
        times.append((time.perf_counter() - start) * 1000)
        assert shown == expected, "the next page must be on screen when the keypress returns"
        while view.session.position < i + 1:  # let the writer catch up before the next key
            app.processEvents()
        app.processEvents()
    window.close()
    times.sort()
    return {
        "pages": len(times),
        "p50_ms": times[len(times) // 2],
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
        "max_ms": times[-1],
    }


if __name__ == "__main__":  # pragma: no cover
    sys.exit(measure(Path(sys.argv[1])))
