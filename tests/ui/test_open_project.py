"""Opening projects from the File menu: a folder that is no project, a damaged database or a
project that cannot be shown leaves the window on the project it was showing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from studio.project import Project
from studio.store import DocumentQuery, NewDocument


@pytest.fixture
def told(monkeypatch) -> list[tuple[str, str]]:
    """The warnings the window gave, instead of modal boxes that would wait for a click."""
    said: list[tuple[str, str]] = []

    def warning(_parent, title, text, *_args, **_kwargs):  # type: ignore[no-untyped-def]
        said.append((title, text))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    return said


def choose(monkeypatch, window, folder: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(folder))
    )
    window.choose_project()


def one_document(project: Project) -> None:
    with project.store() as store:
        src = store.add_source(store.begin_import(), "/data/a.txt", 5, 0.0, "text")
        store.insert_document(
            NewDocument(
                source_id=src, content_hash="h1", kind="text", raw="A lesson on tides.",
                main_text="A lesson on tides.", n_words=4, signal_words=4,
            )
        )  # fmt: skip


def still_on(window, project: Project) -> None:  # type: ignore[no-untyped-def]
    assert window.project.root == project.root and project.name in window.windowTitle()
    assert window.store.totals()["documents"] == 1  # the open project's store still answers
    window.corpus.refresh()


def test_folders_that_are_no_project_are_refused(
    qtbot, window, project, told, monkeypatch, tmp_path
) -> None:
    one_document(project)
    window.corpus.refresh()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "studio.db").write_bytes(os.urandom(50_000))
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (a_file, garbage, empty):
        choose(monkeypatch, window, folder)
        assert told and told[-1][0] == "Cannot open project" and str(folder) in told[-1][1]
        still_on(window, project)
    assert len(told) == 3
    assert (garbage / "studio.db").stat().st_size == 50_000  # a damaged file is left as it was


def test_a_rubric_that_is_not_utf8_opens_with_a_note(
    qtbot, window, project, told, monkeypatch, tmp_path, screenshot
) -> None:
    other = Project.open(tmp_path / "other")
    (other.root / "rubric.md").write_bytes(b"# R\xe9sum\xe9 of our rubric\n")  # saved as Latin-1
    choose(monkeypatch, window, other.root)
    assert told == [] and window.project.root == other.root
    rubric = window.label_view.rubric.toPlainText()
    assert "is not UTF-8 text" in rubric and "sum" in rubric
    window.tabs.setCurrentWidget(window.label_view)
    screenshot(window, "label-rubric-not-utf8")


def test_a_project_that_cannot_be_shown_leaves_the_open_one(
    qtbot, window, project, told, monkeypatch, tmp_path
) -> None:
    import studio.ui.qt_main as qt_main

    one_document(project)
    other = Project.open(tmp_path / "other")

    class Broken(qt_main.LabelView):  # a fault in building a view of the new project
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            raise RuntimeError("the label view could not be built")

    with monkeypatch.context() as patch:
        patch.setattr(qt_main, "LabelView", Broken)
        choose(monkeypatch, window, other.root)
    [(title, text)] = told
    assert title == "Cannot open project" and "could not be built" in text
    assert "the project that was open stays open" in text
    still_on(window, project)
    window.label_view.start_button.click()  # the labelling view of the open project still works
    qtbot.waitUntil(lambda: window.label_view.session is not None, timeout=10_000)
    choose(monkeypatch, window, other.root)  # and the other project opens once it can be shown
    assert window.project.root == other.root and len(told) == 1


def test_a_view_that_cannot_be_built_says_why_in_its_tab(
    qtbot, window, monkeypatch, screenshot
) -> None:
    from PySide6.QtWidgets import QLabel, QPushButton

    import studio.ui.qt_duplicates as qt_duplicates

    real = qt_duplicates.DuplicatesView

    class Broken(real):  # a project file the view trips on, say
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            raise ValueError("runs/x/status.json is not a JSON object")

    monkeypatch.setattr(qt_duplicates, "DuplicatesView", Broken)
    tab = window.view("Duplicates")
    note = tab.findChild(QLabel, "unbuiltNote")
    assert note is not None and "The Duplicates view could not be opened" in note.text()
    assert "status.json is not a JSON object" in note.text()
    window.resize(1200, 700)
    screenshot(window, "view-could-not-be-opened")
    monkeypatch.setattr(qt_duplicates, "DuplicatesView", real)  # the cause is fixed
    tab.findChild(QPushButton, "unbuiltRetry").click()
    assert isinstance(window.view("Duplicates"), real)


def test_a_long_update_on_opening_says_so_and_keeps_the_window_drawn(
    qtbot, window, project, monkeypatch, tmp_path, screenshot
) -> None:
    """Opening a project made by an earlier studio rebuilds its search index (97 s at a million
    pages): the open runs off the UI thread, and past half a second a box says what it does."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QProgressDialog

    import studio.store
    from tests.core.test_store import make_old_project

    old = make_old_project(tmp_path / "old")
    migrate = studio.store._migrate

    def slow_migrate(conn, path):  # type: ignore[no-untyped-def]
        time.sleep(1.5)  # the rebuild of a large corpus, in miniature
        migrate(conn, path)

    monkeypatch.setattr(studio.store, "_migrate", slow_migrate)
    seen: list[str] = []

    def look() -> None:  # runs only if the event loop turns while the project opens
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QProgressDialog) and w.isVisible():
                seen.append(w.labelText())
                screenshot(w, "open_project_updating")

    QTimer.singleShot(1000, look)
    choose(monkeypatch, window, old.root)
    assert seen and "earlier version of the studio is updated" in seen[0]
    assert window.project.root == old.root and "old" in window.windowTitle()
    assert window.store.count_documents(DocumentQuery(search="t*")) == 2
    assert not any(
        isinstance(w, QProgressDialog) and w.isVisible() for w in QApplication.topLevelWidgets()
    )
