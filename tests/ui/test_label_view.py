"""Labelling mode driven from the keyboard, as a curator labels pages."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.fixtures.corpus import write_mixed_corpus
from tests.ui.test_main_window import import_by_drop


def test_label_pages_with_the_keyboard(qtbot, window, tmp_path, screenshot) -> None:
    write_mixed_corpus(tmp_path / "corpus")
    report = import_by_drop(qtbot, window, [tmp_path / "corpus"])
    window.tabs.setCurrentWidget(window.label_view)
    view = window.label_view
    view.annotator.setText("ana")
    view.start_button.click()
    qtbot.waitUntil(lambda: view.session is not None, timeout=10_000)
    assert len(view.session.ids) == report.imported
    first = view.session.current
    assert view.document.page is not None and view.document.page.record.id == first
    assert "Educational value" in view.rubric.toPlainText()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    view.setFocus()

    with qtbot.waitSignal(view.labelled, timeout=10_000) as scored:
        QTest.keyClick(view, Qt.Key.Key_4)
    assert scored.args == [first, 4]
    assert window.store.label_of(first, "ana") == 4  # stored the moment it was given
    second = view.session.current
    assert second != first and view.document.page.record.id == second
    screenshot(window, "label-mode")

    QTest.keyClick(view, Qt.Key.Key_Right)  # skip
    qtbot.waitUntil(lambda: view.session.position == 2, timeout=10_000)
    QTest.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the score
    qtbot.waitUntil(lambda: view.session.current == first, timeout=10_000)
    assert window.store.label_of(first, "ana") is None

    # a second annotator's labels bring agreement into view
    window.store.set_label(first, "ben", 1)
    window.store.set_label(first, "ana", 4)
    view.show_agreement()
    text = view.agreement_label.text()
    assert "ana vs ben" in text and "split on 1 page;" in text  # ana keeps the page, ben drops it
    assert "too few shared pages for κ to mean much" in text  # κ = 0.00 on one page, alone
    screenshot(window, "label-agreement")


def test_active_learning_queue_without_a_classifier_says_what_to_do(qtbot, window) -> None:
    view = window.label_view
    view.queue.setCurrentIndex(view.queue.findData("uncertainty"))
    view.start_button.click()
    qtbot.waitUntil(lambda: "score the corpus" in view.status.text(), timeout=10_000)
    assert view.session is None


def labelling_as_ana(qtbot, window, tmp_path):  # type: ignore[no-untyped-def]
    """The label view of a window with a small corpus imported, a random queue started."""
    write_mixed_corpus(tmp_path / "corpus")
    import_by_drop(qtbot, window, [tmp_path / "corpus"])
    view = window.label_view
    view.annotator.setText("ana")
    view.start_button.click()
    qtbot.waitUntil(lambda: view.session is not None, timeout=10_000)
    return view


def test_a_queue_that_cannot_be_made_leaves_the_running_one_working(
    qtbot, window, tmp_path
) -> None:
    view = labelling_as_ana(qtbot, window, tmp_path)
    session, page = view.session, view.session.current
    view.queue.setCurrentIndex(view.queue.findData("uncertainty"))  # no classifier yet
    view.start_button.click()
    qtbot.waitUntil(lambda: "score the corpus" in view.status.text(), timeout=10_000)
    assert view.session is session and view.document.page.record.id == page
    with qtbot.waitSignal(view.labelled, timeout=10_000) as scored:
        view.give(4)  # the page still on screen takes its score
    assert scored.args == [page, 4] and window.store.label_of(page, "ana") == 4


def test_a_queue_with_no_page_says_why(qtbot, window, tmp_path) -> None:
    """A queue that came up empty said "Queue finished · 0 scored this session"."""
    view = labelling_as_ana(qtbot, window, tmp_path)
    view.queue.setCurrentIndex(view.queue.findData("annotators"))  # one annotator: none apart
    view.start_button.click()
    qtbot.waitUntil(lambda: "This queue is empty" in view.status.text(), timeout=10_000)
    assert "two annotators" in view.status.text() and "finished" not in view.status.text()


def test_the_teacher_scores_peoples_pages_beside_them(qtbot, window, project, screenshot) -> None:
    from studio.teachers.config import parse_spec, save_config
    from tests.core.test_classify import make_labelled_project
    from tests.fixtures.teacher_proxy import TeacherProxy

    with project.store() as store:
        ids = make_labelled_project(store, labelled=3, unlabelled=2)
    proxy = TeacherProxy("http://127.0.0.1:9/v1")  # every reply canned: no server behind it
    try:
        save_config(project.root, parse_spec(f"openai:{proxy.url}", model="tiny", retries=0))
        # three pages people labelled (scores 0, 1, 2): two scored, one reply never a score
        proxy.replies.extend(
            ['{"reason": "Nothing to learn.", "score": 0}', "no", "still no"]
            + ['{"reason": "Some facts.", "score": 2}']
        )
        view = window.label_view
        window.tabs.setCurrentWidget(view)
        assert view.teacher_pages.currentData() == "labelled"
        view.teacher_button.click()
        qtbot.waitUntil(lambda: view.teacher_button.isEnabled(), timeout=20_000)
    finally:
        proxy.close()
    status = view.teacher_status.text()
    assert "scored 2 of 3 pages (1 failed, 0 skipped)" in status, status
    assert "not a score" in status
    with project.store() as store:
        who = [a for a in store.label_summary()["by_annotator"] if a.startswith("teacher:")]
        assert len(who) == 1 and store.label_of(ids[0], who[0]) == 0
        assert store.label_of(ids[1], who[0]) is None and store.label_of(ids[2], who[0]) == 2
    # the agreement line now compares the teacher with the people
    assert "teacher:openai:tiny@" in view.agreement_label.text()
    window.resize(1400, 900)
    screenshot(window, "label-teacher")


def test_a_name_that_is_no_persons_cannot_label(qtbot, window) -> None:
    view = window.label_view
    for name, why in (
        ("teacher:gpt", "are the teachers' (models'), not people's"),
        ("ana\u202eevil", "control or text-direction characters"),
        ("a" * 5000, "at most 80 characters"),  # the field cut a paste to 80 without a word
    ):
        view.annotator.setText(name)
        view.start_button.click()
        assert why in html.unescape(view.status.text()) and view.session is None


def test_each_key_scores_the_page_on_screen_while_the_writer_is_busy(
    qtbot, window, tmp_path
) -> None:
    """Scores are written on the writer thread, which an import or a training run may hold:
    keys pressed meanwhile once all showed the same page and scored pages never shown."""
    import threading

    from studio.ui.qt_ops import submit_write

    view = labelling_as_ana(qtbot, window, tmp_path)
    release = threading.Event()
    submit_write(lambda: release.wait(30))  # the writer is busy until released
    shown = []
    for value in (5, 0, 3, 1):
        shown.append(view.document.page.record.id)
        view.give(value)
    passed = view.document.page.record.id
    view.skip()
    target = view.document.page.record.id
    view.give(4)
    assert len({*shown, passed, target}) == 6  # every key moved the screen on
    assert window.store.label_of(shown[0], "ana") is None  # nothing written yet
    release.set()
    qtbot.waitUntil(lambda: view._pending == 0, timeout=20_000)
    ids = view.session.ids
    assert [window.store.label_of(d, "ana") for d in shown] == [5, 0, 3, 1]
    assert window.store.label_of(passed, "ana") is None
    assert window.store.label_of(target, "ana") == 4
    assert view.document.page.record.id == view.session.current == ids[ids.index(target) + 1]


def test_undo_at_the_queues_end_brings_the_page_and_its_buttons_back(
    qtbot, window, tmp_path
) -> None:
    """After the last page the buttons go grey; undo brought the page back with the buttons
    still grey (the keys scored, the buttons did not), and "Queue finished" was overwritten
    at once by "0 left in the queue"."""
    write_mixed_corpus(tmp_path / "corpus")
    import_by_drop(qtbot, window, [tmp_path / "corpus"])
    view = window.label_view
    window.tabs.setCurrentWidget(view)
    view.annotator.setText("ana")
    view.start_button.click()
    qtbot.waitUntil(lambda: view.session is not None, timeout=10_000)
    n = len(view.session.ids)
    for _ in range(n):
        view.give(2)
    qtbot.waitUntil(lambda: view._pending == 0 and view.session.given == n, timeout=20_000)
    assert view.session.current is None and view.document.page is None
    assert not any(b.isEnabled() for b in view.score_buttons)
    assert view.status.text().startswith("<b>Queue finished</b>")
    view.undo()
    qtbot.waitUntil(lambda: view.session.current is not None, timeout=10_000)
    qtbot.waitUntil(lambda: view._pending == 0, timeout=10_000)
    assert view.document.page is not None and view.document.page.record.id == view.session.current
    assert all(b.isEnabled() for b in view.score_buttons)
    assert "1 left in the queue" in view.status.text()
