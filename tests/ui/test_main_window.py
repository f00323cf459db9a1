"""The main window driven as a curator would: drop files, read the report, open and fix a page."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from studio.segment.blocks import BOILERPLATE, SIGNAL
from tests.core.test_segment import SHELL, TUTORIAL
from tests.fixtures.corpus import write_mixed_corpus
from tests.fixtures.hostile import write_hostile_files


def drop(window, paths: list[Path], web: tuple[str, ...] = ()) -> None:
    """A real drag-and-drop: enter, move and drop events carrying file URLs (and ``web``
    addresses, as a browser's tab or link dragged along with them would)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths] + [QUrl(u) for u in web])
    pos = QPoint(200, 200)
    actions = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos, actions, mime, buttons, mods)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted(), "the window must accept dragged files"
    QApplication.sendEvent(window, QDragMoveEvent(pos, actions, mime, buttons, mods))
    QApplication.sendEvent(window, QDropEvent(QPointF(pos), actions, mime, buttons, mods))


def import_by_drop(qtbot, window, paths: list[Path]):
    with qtbot.waitSignal(window.import_finished, timeout=90_000) as blocker:
        drop(window, paths)
    return blocker.args[0]


def open_dropped_page(qtbot, window, folder: Path, name: str, html: str):  # type: ignore[no-untyped-def]
    """Drop one page on the window and open it: the document view showing it."""
    page = folder / name
    page.write_text(html, "utf-8")
    import_by_drop(qtbot, window, [page])
    window.corpus.select_row(0)
    assert window.document.page is not None
    return window.document


def test_empty_project_invites_a_drop(qtbot, window, screenshot) -> None:
    qtbot.waitUntil(lambda: "No documents yet" in window.corpus.summary.text())
    assert window.windowTitle().startswith("Textbook Studio")
    screenshot(window, "main-window-empty")


def test_drop_a_folder_of_mixed_files(qtbot, window, tmp_path, screenshot) -> None:
    files = write_mixed_corpus(tmp_path / "corpus")
    report = import_by_drop(qtbot, window, [tmp_path / "corpus"])
    assert not report.failed_files, [f.summary() for f in report.failed_files]
    assert report.imported >= 10
    assert report.duplicates >= 1  # the corpus holds an exact duplicate across files
    formats = {f.format for f in report.files}
    assert {"html", "warc", "jsonl", "parquet", "text", "zip", "tar"} <= formats, formats
    assert window.corpus.model.rowCount() == report.imported
    assert window.report_dialog is not None and window.report_dialog.isVisible()
    assert window.report_dialog.table.rowCount() == len(report.files)
    screenshot(window.report_dialog, "import-report")
    window.report_dialog.close()
    qtbot.waitUntil(lambda: "signal" in window.corpus.summary.text())
    screenshot(window, "main-window-corpus")
    assert files  # the fixture returned what it wrote


def test_open_a_page_and_correct_a_block(qtbot, window, tmp_path, screenshot) -> None:
    page = tmp_path / "page.html"
    page.write_text(Path("resources/sample/photosynthesis.html").read_text("utf-8"), "utf-8")
    import_by_drop(qtbot, window, [page])
    window.corpus.select_row(0)
    view = window.document
    assert view.page is not None
    blocks = view.page.blocks
    assert any(b.label == SIGNAL for b in blocks) and any(b.label == BOILERPLATE for b in blocks)
    assert "signal" in view.header.text() and "%" in view.header.text()
    assert f"{len(blocks)} blocks (0 corrected)" in view.header.text()
    assert view.raw_source.toPlainText() == ""  # tabs are filled when opened
    view.tabs.setCurrentWidget(view.main_text)
    assert "Photosynthesis is the process" in view.main_text.toPlainText()
    assert "Accept all cookies" not in view.main_text.toPlainText()
    view.tabs.setCurrentWidget(view.raw_source)
    assert "<nav" in view.raw_source.toPlainText()
    view.tabs.setCurrentWidget(view.highlighted)
    # one paragraph per block, and every block explains its label when hovered
    assert view.highlighted.document().blockCount() == len(blocks)
    tips = [view.highlighted.tooltip(i) for i in range(len(blocks))]
    assert all("confidence" in t and "<table" in t for t in tips)
    assert all(b.locator in tip for b, tip in zip(blocks, tips, strict=True))
    # a real hover: the tooltip event on the first signal block shows that block's reasons
    browser = view.highlighted
    first = next(i for i, b in enumerate(blocks) if b.label == SIGNAL)
    browser.verticalScrollBar().setValue(0)
    rect = (
        browser.document()
        .documentLayout()
        .blockBoundingRect(browser.document().findBlockByNumber(first))
    )
    pos = QPoint(int(rect.left()) + 20, int(rect.center().y()))
    QApplication.sendEvent(
        browser.viewport(),
        QHelpEvent(QEvent.Type.ToolTip, pos, browser.viewport().mapToGlobal(pos)),
    )
    assert blocks[first].locator in QToolTip.text()
    screenshot(view, "document-view-highlighted")
    qtbot.waitUntil(lambda: "signal" in window.corpus.summary.text())
    screenshot(window, "main-window-document")

    target = next(b for b in blocks if b.label == SIGNAL)
    with qtbot.waitSignal(view.relabel_requested):
        view.highlighted.block_relabel_requested.emit(target.locator, BOILERPLATE, target.text)
    qtbot.waitUntil(lambda: target.locator in view.page.corrected, timeout=10_000)
    view.tabs.setCurrentWidget(view.main_text)
    assert target.text not in view.main_text.toPlainText()
    view.tabs.setCurrentWidget(view.highlighted)
    with window.project.store() as store:
        kept = store.segmentation_corrections()
    assert kept and kept[0]["label"] == BOILERPLATE and kept[0]["text"] == target.text
    screenshot(view, "document-view-corrected")


def test_a_program_on_a_page_is_shown_as_laid_out(qtbot, window, tmp_path, screenshot) -> None:
    view = open_dropped_page(qtbot, window, tmp_path, "loops.html", TUTORIAL)
    shown = view.highlighted.document().toPlainText()
    assert "\n    for i in range(n):\n" in shown  # its own lines, indentation kept
    assert "Lower mill on the river bend" in shown
    view.tabs.setCurrentWidget(view.main_text)
    text = view.main_text.toPlainText()
    assert "\n    for i in range(n):\n" in text and "Lower mill on the river bend | 1821" in text
    with window.project.store() as store:  # what was stored at import is what is shown
        assert store.main_text(view.page.record.id) == text
    screenshot(view, "document-view-main-text-program")
    view.tabs.setCurrentWidget(view.highlighted)
    pre = next(i for i, b in enumerate(view.page.blocks) if b.tag == "pre")
    block = view.highlighted.document().findBlockByNumber(pre)
    top = view.highlighted.document().documentLayout().blockBoundingRect(block).top()
    view.highlighted.verticalScrollBar().setValue(int(top) - 80)
    screenshot(view, "document-view-program")


def test_a_page_with_no_signal_says_so(qtbot, window, tmp_path, screenshot) -> None:
    view = open_dropped_page(qtbot, window, tmp_path, "shop.html", SHELL)
    assert view.page.blocks
    assert "0% signal" in view.header.text()
    view.tabs.setCurrentWidget(view.main_text)
    assert view.main_text.toPlainText() == ""
    assert "No block of this page was judged signal" in view.main_text.placeholderText()
    screenshot(view, "document-view-no-signal")
    # a page with signal shows no such note
    other = tmp_path / "page.html"
    other.write_text(Path("resources/sample/photosynthesis.html").read_text("utf-8"), "utf-8")
    import_by_drop(qtbot, window, [other])
    row = next(
        r for r in range(window.corpus.model.rowCount()) if window.corpus.model.doc_id(r) != 1
    )
    window.corpus.select_row(row)
    qtbot.waitUntil(lambda: "Photosynthesis" in view.main_text.toPlainText())
    assert view.main_text.placeholderText() == ""


def test_hostile_files_are_explained_and_nothing_is_lost(
    qtbot, window, tmp_path, screenshot
) -> None:
    page = tmp_path / "good.html"
    page.write_text(Path("resources/sample/photosynthesis.html").read_text("utf-8"), "utf-8")
    import_by_drop(qtbot, window, [page])
    with window.project.store() as store:
        before = store.conn.execute(
            "SELECT d.id, d.content_hash, t.main_text FROM documents d "
            "JOIN document_text t ON t.doc_id = d.id ORDER BY d.id"
        ).fetchall()
    hostile = write_hostile_files(tmp_path / "hostile")
    # enough ordinary work that an import on the UI thread would freeze it visibly
    slow = tmp_path / "hostile" / "zz-many-lines.jsonl"
    slow.write_text(
        "".join(f'{{"text": "note {i} about rivers and lakes"}}\n' for i in range(5000))
    )
    ticks: list[float] = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    report = import_by_drop(qtbot, window, [*sorted(hostile.values()), slow])
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) > 5 and max(gaps) < 0.5, "the UI thread must keep turning while importing"
    window.report_dialog.resize(1300, 520)
    screenshot(window.report_dialog, "import-report-hostile")
    by_name = {Path(f.path).name: f for f in report.files}
    for name, f in by_name.items():
        problem = f.status == "failed" or f.failed > 0
        assert problem or f.status == "imported", (name, f.summary())
        if f.status == "failed":
            assert f.reason, name
    with window.project.store() as store:
        after = store.conn.execute(
            "SELECT d.id, d.content_hash, t.main_text FROM documents d "
            "JOIN document_text t ON t.doc_id = d.id WHERE d.id <= ? ORDER BY d.id",
            (before[-1][0],),
        ).fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]


def test_web_addresses_dropped_with_files_are_said_to_be_left_out(qtbot, window, tmp_path):
    page = tmp_path / "lesson.txt"
    page.write_text("A lesson on the water cycle and how clouds form.")
    with qtbot.waitSignal(window.import_finished, timeout=60_000):
        drop(window, [page], web=("https://example.org/a", "ftp://example.org/b"))
        assert "2 web address(es) left out" in window.status_label.text()
    assert window.store.totals()["documents"] == 1
    window.corpus.select_row(0)  # a text page has no blocks: its header does not say "0 blocks"
    qtbot.waitUntil(lambda: window.document.page is not None, timeout=5_000)
    assert "100% signal" in window.document.header.text()
    assert "block" not in window.document.header.text()


def test_search_filters_the_list(qtbot, window, tmp_path) -> None:
    write_mixed_corpus(tmp_path / "corpus")
    import_by_drop(qtbot, window, [tmp_path / "corpus"])
    total = window.corpus.model.rowCount()
    window.corpus.search.setText("zzzznotaword")
    qtbot.waitUntil(lambda: window.corpus.model.rowCount() == 0, timeout=5000)
    window.corpus.search.clear()
    qtbot.waitUntil(lambda: window.corpus.model.rowCount() == total, timeout=5000)
    window.corpus.kind.setCurrentIndex(window.corpus.kind.findData("text"))
    assert 0 < window.corpus.model.rowCount() < total
    window.corpus.kind.setCurrentIndex(0)
    # pasted text: a NUL separates words; a page of prefix terms is cut to a search, and said
    window.corpus.search.setText("zzzz\x00notaword")
    qtbot.waitUntil(lambda: window.corpus.model.rowCount() == 0, timeout=5000)
    window.corpus.search.setText(" ".join(f"w{i}*" for i in range(400)))
    qtbot.waitUntil(lambda: "only the first 32 of the" in window.corpus.summary.text())
    assert len(window.corpus.search.text()) <= 2000
    window.corpus.search.clear()
    qtbot.waitUntil(lambda: window.corpus.model.rowCount() == total, timeout=5000)
    assert "search terms" not in window.corpus.summary.text()


def test_cancel_keeps_what_was_imported_before(qtbot, window, tmp_path) -> None:
    write_mixed_corpus(tmp_path / "first")
    first = import_by_drop(qtbot, window, [tmp_path / "first"])
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i in range(200_000):
            f.write(f'{{"text": "line {i} of a long file that the curator will cancel"}}\n')
    with qtbot.waitSignal(window.import_finished, timeout=120_000) as blocker:
        drop(window, [big])
        qtbot.waitUntil(lambda: window.import_op is not None and window.import_op.running)
        qtbot.wait(300)
        window.cancel_button.click()
    report = blocker.args[0]
    assert report.cancelled and report.files[-1].status == "cancelled"
    assert window.corpus.model.rowCount() == first.imported


def test_no_view_hides_a_qt_method_behind_an_attribute(qtbot, window) -> None:
    """PySide calls an instance attribute in place of a Qt virtual of the same name (a widget kept
    as ``self.metric`` stood in for ``QWidget.metric()`` and crashed a repaint), so no view of any
    mode, nor the teacher settings dialog, may name an attribute after a Qt method."""
    from PySide6.QtCore import Signal
    from PySide6.QtWidgets import QDialog

    from studio.ui.qt_main import LAZY_TABS
    from studio.ui.qt_teacher_settings import TeacherSettingsDialog

    widgets = [window.view(name) for name in ("Corpus", "Label", *LAZY_TABS)]
    widgets.append(TeacherSettingsDialog(window.project, window))
    for widget in widgets:
        base = QDialog if isinstance(widget, QDialog) else type(widget).__mro__[1]
        hidden = [
            name
            for name in vars(widget)
            if hasattr(base, name) and not isinstance(getattr(base, name, None), Signal)
        ]
        assert hidden == [], f"{type(widget).__name__} hides {hidden}"
    for name in LAZY_TABS:
        assert window.views[name] is window.view(name)  # built once, kept


def test_refresh_shows_what_another_program_imported(qtbot, window, tmp_path) -> None:
    import subprocess
    import sys

    page = tmp_path / "lesson.txt"
    page.write_text("A lesson on tides, the moon and the pull of gravity on the oceans.")
    assert window.corpus.model.rowCount() == 0
    subprocess.run(  # a `studio import` in a terminal while the window is open
        [sys.executable, "-m", "studio", "import", str(window.project.root), str(page)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [refresh] = [a for a in window.menuBar().actions() if a.text() == "&View"][0].menu().actions()
    assert refresh.shortcut().toString() == "F5"
    refresh.trigger()
    assert window.corpus.model.rowCount() == 1
    qtbot.waitUntil(lambda: "1 document" in window.corpus.summary.text(), timeout=10_000)


def test_rows_stay_put_while_another_program_imports(qtbot, window, tmp_path) -> None:
    """The list pages by offset: a page another process imported while the curator scrolled
    shifted the rows fetched after it (a row shown twice, one never shown) until a refresh."""
    import subprocess
    import sys

    write_mixed_corpus(tmp_path / "corpus")
    import_by_drop(qtbot, window, [tmp_path / "corpus"])
    model = window.corpus.model
    model.set_query(model.query.with_(sort="id", descending=True))  # newest first
    before = [model.doc_id(r) for r in range(model.rowCount())]
    assert len(before) >= 10
    page = tmp_path / "late.txt"
    page.write_text("A lesson on tides, the moon and the pull of gravity on the oceans.")
    subprocess.run(  # a `studio import` in a terminal while the window is open
        [sys.executable, "-m", "studio", "import", str(window.project.root), str(page)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    model._pages.clear()  # as when the curator has scrolled far and back: pages fetched again
    assert [model.doc_id(r) for r in range(model.rowCount())] == before
    model.refresh()
    assert model.rowCount() == len(before) + 1
    assert model.doc_id(0) > before[0]  # the new page, at the top once the view is refreshed


def test_counts_that_come_back_after_the_project_closed_are_dropped(qtbot, window) -> None:
    """The corpus totals come from a reader thread: one that answered after the window closed
    the project's database asked that closed database for the newest page (a CI run's error)."""
    from studio.classify.score import score_documents
    from studio.classify.train import train_classifier
    from tests.core.test_classify import make_labelled_project

    make_labelled_project(window.store, labelled=30, unlabelled=5)
    train_classifier(window.project, window.store, features="hand", model="ridge", folds=3)
    score_documents(window.project, window.store)
    window.corpus.refresh()  # counted in the background; the scores' version is new to the list
    window.close()  # closes the database before the count is back
    qtbot.wait(1_000)  # the count arrives: nothing may touch the closed database
