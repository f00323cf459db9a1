"""The Teacher tab: the plan and its coverage, the taxonomy, a batch streaming live from real
teachers (the tiny GGUF in-process; the same file behind a real server with a proxy that answers
chosen requests), cancel and resume, and the review of a page: versions, diff, critique, checks,
edit, accept, reject."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.generate import record
from studio.generate.loop import TeacherChoice
from studio.generate.propose import hold_proposals
from studio.teachers.config import close_teachers, parse_spec
from tests.core.test_generate import GOOD_PAGE
from tests.core.test_generate_loop import critique
from tests.fixtures.teacher_proxy import TeacherProxy


@pytest.fixture(autouse=True)
def _fresh_teachers():
    yield
    close_teachers()


def counted(qtbot, view, change=None) -> None:  # type: ignore[no-untyped-def]
    """Wait for the coverage the view counts on a reader thread (after ``change()``, if given)."""
    with qtbot.waitSignal(view.coverage_shown, timeout=30_000):
        if change is not None:
            change()


@pytest.fixture
def view(qtbot, window):
    view = window.view("Teacher")
    qtbot.waitUntil(lambda: view.coverage_model.rowCount() > 0, timeout=30_000)
    yield view
    if view.op is not None and view.op.running:
        view.cancel()


def small_batch(view, teacher: TeacherChoice, pages: int) -> None:
    view.saved_teacher, view.added_teachers = teacher, []
    view._show_teachers()
    view.pages_spin.setValue(pages)
    view.tokens_spin.setValue(48)
    for widget, keep in ((view.subject_list, "History"), (view.style_list, "worked example")):
        for i in range(widget.count()):
            item = widget.item(i)
            item.setCheckState(
                item.checkState().Checked if item.text() == keep else item.checkState().Unchecked
            )


def test_plan_coverage_and_the_taxonomy(qtbot, window, view, screenshot, tmp_path: Path) -> None:
    assert window.tabs.currentWidget() is view
    assert view.coverage_model.rowCount() == 10  # subjects
    assert "0</b> of 12,150 cells" in view.coverage_summary.text()
    counted(qtbot, view, lambda: view.group_by.setCurrentText("style"))
    assert [r[0] for r in view.coverage_model.rows][-1] == "step-by-step reasoning trace"
    with qtbot.waitSignal(view.coverage_shown, timeout=30_000):
        view.group_by.setCurrentText("cell")
        # counted on a reader thread: at 20,000 subtopics (a million cells) the window froze
        # for 5 s at every change of the plan
        assert view.coverage_model.rowCount() < 100
    assert view.coverage_model.rowCount() == 12_150

    outline = tmp_path / "music.md"
    outline.write_text("# Music\n## Harmony\n- Chords\n- Cadences\n", "utf-8")
    with qtbot.waitSignal(view.taxonomy_changed, timeout=10_000):
        view.import_taxonomy(outline)
    names = [view.tree.topLevelItem(i).text(0) for i in range(view.tree.topLevelItemCount())]
    assert names[-1] == "Music" and "Imported 2 subtopic(s)" in view.status.text()

    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"subjects": [')
    view.import_taxonomy(broken)
    qtbot.waitUntil(lambda: view.message_box is not None, timeout=10_000)
    assert "not valid JSON" in view.message_box.text()
    view.message_box.close()

    held = hold_proposals(window.store, "Music", "Harmony", ["Modulation", "Voice leading"], "t")
    view.refresh_tree()
    music = view.tree.topLevelItem(view.tree.topLevelItemCount() - 1)
    harmony = music.child(0)
    assert [harmony.child(i).text(1) for i in range(4)] == ["active"] * 2 + ["proposed"] * 2
    assert harmony.child(2).font(0).italic()
    view.tree.setCurrentItem(harmony.child(2))
    with qtbot.waitSignal(view.taxonomy_changed, timeout=10_000):
        view.topic_buttons["acceptProposal"].click()
    view.tree.setCurrentItem(view.tree.topLevelItem(view.tree.topLevelItemCount() - 1).child(0))
    with qtbot.waitSignal(view.taxonomy_changed, timeout=10_000):
        view.topic_buttons["rejectProposal"].click()  # the rest of the topic's proposals
    statuses = {s.subtopic: s.status for s in record_subtopics(window.store, "Music")}
    assert statuses == {
        "Chords": "active",
        "Cadences": "active",
        held[0].subtopic: "active",
        held[1].subtopic: "rejected",
    }
    counted(qtbot, view, lambda: view.group_by.setCurrentText("subject"))
    window.resize(1500, 900)
    screenshot(window, "teacher-plan")


def test_the_tab_opens_over_damaged_batches_and_odd_cell_keys(qtbot, window) -> None:
    """A gen_batches row whose settings are not JSON, and pages recorded under a cell string
    their columns do not rebuild to (an old format, a hand edit): the tab once opened blank.
    It lists the pages, counts them, and says the batch cannot be resumed, and why."""
    from studio.generate.plan import PlanChoice, plan_cells

    store = window.store
    cells = plan_cells(store, PlanChoice(["History"], ["college"], ["worked example"], ["hard"]))
    batch_id = record.create_batch(store, {"pages": 2})
    ids = record.add_pages(store, batch_id, 1, [(c, "local:test", None) for c in cells[:2]])
    for page_id in ids:
        record.set_page(store, page_id, "rejected", ["hand-made"])
    store.conn.execute("UPDATE gen_pages SET cell = 'History/old key' WHERE id = ?", (ids[0],))
    store.conn.execute("UPDATE gen_batches SET config = '{garbage' WHERE id = ?", (batch_id,))

    view = window.view("Teacher")  # built now, over the damaged rows
    assert window.tabs.currentWidget() is view
    assert sorted(r[0] for r in view.pages_model.rows) == sorted(ids)
    qtbot.waitUntil(lambda: view.coverage_model.rowCount() > 0, timeout=30_000)
    history = next(r for r in view.coverage_model.rows if r[0] == "History")
    assert history[4] == 2  # both pages counted as rejected, the odd key's one too
    counted(qtbot, view, lambda: view.group_by.setCurrentText("cell"))
    assert ("History/old key", 0, 0, 0, 1, 0, 0) in view.coverage_model.rows

    assert not view.resume_button.isEnabled()
    assert view.resume_button.text() == f"Resume batch {batch_id}"
    why = f"Batch {batch_id} cannot be resumed: its saved settings are not readable JSON"
    assert view.resume_button.toolTip().startswith(why)
    assert view.status.text().startswith(why) and "start a new batch" in view.status.text()
    assert view.resume() is None  # from code, as the button is off: refused with the reason
    assert view.message_box is not None and why in view.message_box.text()
    assert view.run_button.isEnabled()  # a new batch can still be started


def record_subtopics(store, subject: str):
    from studio.generate.taxonomy import subtopics

    return [s for s in subtopics(store, None) if s.subject == subject]


@pytest.mark.slow
def test_a_batch_streams_live_and_its_pages_are_reviewed(
    qtbot, window, view, screenshot, llama_server
) -> None:
    proxy = TeacherProxy(llama_server.url)
    try:
        # page 1: a draft, its critique in a code fence, the rewrite; page 2: the real server
        proxy.replies.extend(
            [
                "# Draft\n\nThe French Revolution began in 1789.",
                "```json\n" + critique() + "\n```",
                GOOD_PAGE,
            ]  # fmt: skip
        )
        # one page at a time: the canned replies go to the requests in the order written here
        teacher = TeacherChoice.of(
            parse_spec(f"openai:{proxy.url}", model="tiny", retries=0, concurrency=1)
        )
        small_batch(view, teacher, pages=2)
        tokens: list[str] = []
        view.events.event.connect(lambda e: tokens.append(e.text) if e.kind == "token" else None)
        changed: list[str] = []
        view.corpus_changed.connect(changed.append)
        with qtbot.waitSignal(view.batch_finished, timeout=120_000) as done:
            view.run_button.click()
        report = done.args[0]
    finally:
        proxy.close()
    assert (report.status, report.accepted, report.rejected) == ("done", 1, 1)
    assert "".join(tokens).count("Solving linear equations") == 1  # the rewrite streamed
    qtbot.waitUntil(lambda: "batch 1: 1 accepted" in view.status.text(), timeout=5_000)
    assert changed == ["generated"]
    assert [r[3] for r in view.pages_model.rows] == ["accepted", "rejected"]
    assert "page 2" in view.stream.toPlainText()

    view.pages_table.selectRow(0)
    assert "accepted" in view.page_header.text() and "critique mean 4.0" in view.page_header.text()
    assert view.left_version.currentText().startswith("draft 1")
    assert view.right_version.currentText().startswith("rewrite")
    assert view.right_text.toPlainText() == GOOD_PAGE
    assert "Diff (+" in view.review_tabs.tabText(1)
    assert "Solving" in view.diff_view.toHtml()
    critique_html = view.critique_view.toPlainText()
    assert "correctness 4" in critique_html and "step 2 is terse" in critique_html
    assert "✔" in critique_html and "classifier" in critique_html
    window.corpus.refresh()
    kinds = [window.corpus.model.row(i)["kind"] for i in range(window.corpus.model.rowCount())]
    assert kinds == ["synthetic"]
    window.resize(1500, 900)
    view.review_tabs.setCurrentIndex(1)
    screenshot(window, "teacher-review-diff")
    view.review_tabs.setCurrentIndex(2)
    screenshot(window, "teacher-review-critique")

    # the curator edits the accepted page, then rejects it
    page_id = view.page.id
    view.review_tabs.setCurrentIndex(0)
    view.edit_button.setChecked(True)
    view.right_text.setPlainText(GOOD_PAGE.replace("Solving", "Solving, step by step,"))
    with qtbot.waitSignal(view.page_changed, timeout=10_000):
        view.save_button.click()
    assert view.right_version.currentText().startswith("edit 1")
    doc_id = record.page(window.store, page_id).doc_id
    assert "step by step" in window.store.main_text(doc_id)
    with qtbot.waitSignal(view.page_changed, timeout=10_000):
        view.reject_button.click()
    assert record.page(window.store, page_id).status == "rejected"
    assert record.rejected_documents(window.store, [doc_id]) == {doc_id}
    # and takes the other page after all
    view.pages_table.selectRow(1)
    with qtbot.waitSignal(view.page_changed, timeout=10_000):
        view.accept_button.click()
    assert record.page(window.store, view.page.id).status == "accepted"
    screenshot(window, "teacher-review-edited")


def test_the_live_view_follows_one_page_of_those_side_by_side(qtbot, view) -> None:
    from studio.generate.loop import Event

    events = [
        Event("step", 1, "draft 1/1"),
        Event("step", 2, "draft 1/1"),  # a second page starts while the first streams
        Event("token", 1, "draft 1/1", "alpha "),
        Event("token", 2, "draft 1/1", "beta "),
        Event("restart", 2, "draft 1/1", "HTTP 503"),
        Event("token", 1, "draft 1/1", "gamma"),
    ]
    for e in events:
        view.events.event.emit(e)
    view._flush_stream()
    text = view.stream.toPlainText()
    assert "alpha gamma" in text and "beta" not in text and "503" not in text
    assert "page 2" not in text and view.stream_title.text() == "Live: page 1, draft 1/1"
    view.events.event.emit(Event("page", 1, "rejected", "length: 3 words < 120"))
    assert "page 1 rejected: length" in view.stream.toPlainText()
    # the first page ended: the view takes the next page that starts a step
    for e in (Event("token", 2, "draft 1/1", "delta "), Event("step", 2, "critique 1/1"),
              Event("token", 2, "critique 1/1", "epsilon")):  # fmt: skip
        view.events.event.emit(e)
    view._flush_stream()
    text = view.stream.toPlainText()
    assert "── page 2: critique 1/1 ──" in text and "epsilon" in text
    assert "alpha" not in text and "delta" not in text


@pytest.mark.slow
def test_pages_side_by_side_in_the_studio(qtbot, window, view, screenshot, llama_server) -> None:
    teacher = parse_spec(f"openai:{llama_server.url}", model="tiny", retries=0, concurrency=2)
    small_batch(view, TeacherChoice.of(teacher), pages=3)
    open_pages: set[int] = set()
    peak = []

    def on_event(e) -> None:
        if e.kind == "step":
            open_pages.add(e.page_id)
        elif e.kind == "page":
            open_pages.discard(e.page_id)
        peak.append(len(open_pages))

    view.events.event.connect(on_event)
    with qtbot.waitSignal(view.batch_finished, timeout=120_000) as done:
        view.run_button.click()
    assert (done.args[0].status, done.args[0].pages) == ("done", 3)
    assert max(peak) == 2  # two pages at once, their writes through the studio's one writer
    qtbot.waitUntil(lambda: len(view.pages_model.rows) == 3, timeout=5_000)
    assert {r[3] for r in view.pages_model.rows} <= {"accepted", "rejected"}
    window.resize(1500, 900)
    screenshot(window, "teacher-side-by-side")


@pytest.mark.slow
def test_cancel_then_resume(qtbot, window, view, tiny_gguf: Path) -> None:
    small_batch(view, TeacherChoice.of(parse_spec(f"local:{tiny_gguf}")), pages=3)
    state = {"cancelled": False}

    def on_event(e) -> None:
        if e.kind == "token" and e.step.startswith("critique") and not state["cancelled"]:
            state["cancelled"] = True
            view.cancel_button.click()

    view.events.event.connect(on_event)
    with qtbot.waitSignal(view.batch_finished, timeout=120_000) as stopped:
        view.run_button.click()
    assert stopped.args[0].status == "cancelled"
    assert view.resume_button.isEnabled() and view.resume_button.text() == "Resume batch 1"
    assert "pending" in [r[3] for r in view.pages_model.rows]
    with qtbot.waitSignal(view.batch_finished, timeout=120_000) as finished:
        view.resume_button.click()
    assert (finished.args[0].status, finished.args[0].pages) == ("done", 3)
    assert {r[3] for r in view.pages_model.rows} == {"rejected"}
    assert not view.resume_button.isEnabled()


def test_closing_the_studio_stops_the_batch_and_frees_the_model(
    qtbot, window, view, tiny_gguf: Path
) -> None:
    choice = TeacherChoice.of(parse_spec(f"local:{tiny_gguf}"))
    teacher = choice.open()  # the very object the batch writes with (opened once a process)
    small_batch(view, choice, pages=3)
    closed = []

    def on_event(e) -> None:
        if e.kind == "token" and not closed:
            closed.append(teacher.loaded)
            window.close()  # mid-reply: the window must not wait for the reply

    view.events.event.connect(on_event)
    view.run_button.click()
    qtbot.waitUntil(lambda: bool(closed) and not view.op.running, timeout=60_000)
    assert closed == [True] and window.store is None
    assert not teacher.loaded  # freed once the reply stopped
    with view.project.store() as store:  # the batch stopped between tokens, to resume later
        batch = record.unfinished_batch(store)
        assert batch is not None and batch.status == "cancelled"
        assert "running" not in {p.status for p in record.pages(store)}


def test_hostile_versions_are_shown_as_text(qtbot, window, view, screenshot) -> None:
    store = window.store
    batch = record.create_batch(store, {"pages": 1})
    cell = record.Cell("History", "Revolutions", "X", "college", "worked example", "hard")
    (page_id,) = record.add_pages(store, batch, 1, [(cell, "openai:evil", None)])
    hostile = (
        "<script>alert(1)</script><img src='http://127.0.0.1:9/x.png'>"
        "<a href='file:///etc/passwd'>click</a>\x00\x1b[2J" + "\ufffd" * 50
    )
    draft = record.add_version(store, page_id, "draft", text=hostile)
    record.add_version(
        store, page_id, "critique", parent_id=draft, error="not readable JSON",
        data={"attempts": [{"reply": "<b>bold</b>", "error": "no JSON"}]},
    )  # fmt: skip
    record.add_version(store, page_id, "rewrite", parent_id=draft, text="x" * 300_000)
    record.set_page(store, page_id, "rejected", ["<i>reason</i>"], text="x" * 300_000)
    view.refresh_pages()
    view.show_page(page_id)
    assert "&lt;i&gt;reason&lt;/i&gt;" in view.page_header.text()
    assert view.left_text.toPlainText().startswith("<script>alert(1)</script>")
    html = view.diff_view.toHtml()
    assert "&lt;script&gt;" in html and "<script>" not in html and "<img" not in html
    shown = view.right_text.toPlainText()  # clipped, long lines broken; the record has all
    assert shown.count("x") == 200_000 and max(len(line) for line in shown.splitlines()) == 1000
    assert json.loads(json.dumps(record.page(store, page_id).to_dict()))["status"] == "rejected"
    window.resize(1500, 900)
    screenshot(window, "teacher-hostile-page")


def test_a_page_changed_elsewhere_or_with_a_huge_line_is_not_overwritten(
    qtbot, window, view
) -> None:
    store = window.store
    batch = record.create_batch(store, {"pages": 1})
    cell = record.Cell("Physics", "Optics", "Lenses", "college", "textbook", "easy")
    (page_id,) = record.add_pages(store, batch, 1, [(cell, "local:test", None)])
    record.set_page(store, page_id, "running", text="A lens bends light. " * 30)
    view.refresh_pages()
    view.show_page(page_id)
    record.reject(store, page_id, ["from the command line"], by="cli")  # another program
    op = view.decide("accepted")
    qtbot.waitUntil(lambda: not op.running, timeout=10_000)
    assert "changed since it was shown (now rejected)" in view.message_box.text()
    assert record.page(store, page_id).status == "rejected" and view.page.status == "rejected"

    record.set_page(store, page_id, "rejected", text="x" * 50_000)  # one line of 50,000
    view.show_page(page_id)
    view.edit_button.setChecked(True)
    assert not view.edit_button.isChecked() and view.right_text.isReadOnly()
    assert "has a line of 50,000 characters" in view.message_box.text()


def test_teachers_come_from_the_settings_dialog_and_specs(qtbot, view, tiny_gguf: Path) -> None:
    from studio.teachers.config import TeacherConfig, load_config

    assert view.teachers[0].label == "local:default"
    view.settings_button.click()
    dialog = view.settings_dialog
    dialog.set_config(TeacherConfig(kind="local", path=str(tiny_gguf)))
    dialog._on_save()
    assert load_config(view.project.root).path == str(tiny_gguf)
    assert view.teachers[0].label == f"local:{tiny_gguf}"
    assert view.add_teacher("openai:http://127.0.0.1:9/v1 tiny")
    assert not view.add_teacher("ftp:nowhere")
    assert "local:PATH.gguf or openai:URL" in view.message_box.text()
    assert not view.add_teacher("openai:http://a b/v1 m")  # once: URL http://a, model "b/v1 m"
    assert "no space inside the URL" in view.message_box.text()
    assert not view.add_teacher("<b>big</b><i>x</i>")  # quoted as typed, not rendered
    assert view.message_box.textFormat() == Qt.TextFormat.PlainText
    assert "'<b>big</b><i>x</i>'" in view.message_box.text()
    assert [view.teacher_list.item(i).text() for i in range(view.teacher_list.count())] == [
        f"local:{tiny_gguf}  (project settings)",
        "openai:http://127.0.0.1:9/v1 (tiny)",
    ]
    view.teacher_list.setCurrentRow(1)
    view.remove_teacher_button.click()
    assert len(view.teachers) == 1 and not view.remove_teacher_button.isEnabled()

    # settings that cannot be read: the added teachers stay, none is called the project's,
    # however often the settings are read again (each reload once dropped one and renamed
    # the next "project settings")
    for model in ("a", "b"):
        assert view.add_teacher(f"openai:http://127.0.0.1:9/v1 {model}")
    (view.project.root / "teacher.json").write_text("[1,2")
    for _ in range(3):
        view.reload_teachers()
    assert [t.label for t in view.teachers] == [
        "openai:http://127.0.0.1:9/v1 (a)",
        "openai:http://127.0.0.1:9/v1 (b)",
    ]
    assert view.teacher_list.count() == 2
    assert "project settings" not in view.teacher_list.item(0).text()
    assert view.status.text().startswith("Teacher settings:")
    view.teacher_list.setCurrentRow(0)  # with no project teacher, the first added one can go
    view.remove_teacher_button.click()
    assert [t.label for t in view.teachers] == ["openai:http://127.0.0.1:9/v1 (b)"]


def test_a_subtopic_added_by_hand_may_hold_a_slash(qtbot, view, monkeypatch) -> None:
    """The dialog split on every '/': "TCP/IP" was refused, "a/b/c" taken as three names."""
    import studio.ui.qt_teacher as teacher_ui
    from studio.generate.taxonomy import subtopics

    typed = ["Computer science / Networks / TCP/IP basics", "a/b/c"]
    monkeypatch.setattr(
        teacher_ui.QInputDialog, "getText", staticmethod(lambda *a, **k: (typed.pop(0), True))
    )
    counted(qtbot, view, view.add_subtopic)
    rows = subtopics(view.store)
    assert any((r.topic, r.subtopic) == ("Networks", "TCP/IP basics") for r in rows)
    view.add_subtopic()
    assert 'apart by " / "' in view.message_box.text()
    assert not any(r.subject == "a" for r in subtopics(view.store))
