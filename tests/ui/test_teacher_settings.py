"""The teacher settings dialog, offscreen, against the tiny GGUF in-process and a real
llama_cpp.server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.teachers.config import close_teachers, default_local_model, load_config
from studio.ui.qt_teacher_settings import WARN_COLOUR, TeacherSettingsDialog
from tests.fixtures.teacher_proxy import TeacherProxy
from tests.fixtures.tiny_gguf import free_port


@pytest.fixture(autouse=True)
def _fresh_teachers():
    yield
    close_teachers()


@pytest.fixture
def dialog(qtbot, project):
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    yield d
    if d.test_op is not None and d.test_op.running:
        d.test_op.cancel()
        qtbot.waitUntil(lambda: not d.test_op.running, timeout=60_000)


def click_test(qtbot, d: TeacherSettingsDialog) -> dict:
    """Click "Test connection" and wait for its result."""
    with qtbot.waitSignal(d.tested, timeout=60_000) as signal:
        qtbot.mouseClick(d.test_button, Qt.MouseButton.LeftButton)
    return signal.args[0]


def test_defaults_to_the_shipped_local_model(dialog, screenshot):
    assert dialog.local_choice.isChecked()
    assert dialog.pages.currentIndex() == 0
    assert dialog.model_path.text() == ""
    shipped = default_local_model()
    if shipped is not None:
        assert shipped.name in dialog.model_path.placeholderText()
    assert dialog.threads.value() == 1 and dialog.n_ctx.value() == 4096
    screenshot(dialog, "teacher-settings-local")


def test_local_test_connection_then_save(qtbot, dialog, project, tiny_gguf: Path, screenshot):
    dialog.model_path.setText(str(tiny_gguf))
    dialog.n_ctx.setValue(1024)
    result = click_test(qtbot, dialog)
    assert result["ok"] is True
    assert dialog.test_result.text().startswith("Connected: local:tiny.gguf")
    assert dialog.test_button.text() == "Test connection"
    screenshot(dialog, "teacher-settings-local-tested")
    with qtbot.waitSignal(dialog.saved) as saved:
        dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert saved.args[0].path == str(tiny_gguf)
    stored = load_config(project.root)
    assert (stored.kind, stored.path, stored.n_ctx) == ("local", str(tiny_gguf), 1024)
    # reopening shows what was saved
    again = TeacherSettingsDialog(project)
    qtbot.addWidget(again)
    assert (again.model_path.text(), again.n_ctx.value()) == (str(tiny_gguf), 1024)


def test_a_broken_model_file_says_why(qtbot, dialog, tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    dialog.model_path.setText(str(bad))
    result = click_test(qtbot, dialog)
    assert result == {"ok": False, "error": "bad.gguf is not a GGUF model file"}
    assert dialog.test_result.text() == "Failed: bad.gguf is not a GGUF model file"


def test_remote_test_connection(qtbot, dialog, project, llama_server, screenshot, monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_KEY", "sk-hidden-777")
    dialog.remote_choice.setChecked(True)
    assert dialog.pages.currentIndex() == 1
    dialog.base_url.setText(llama_server.url)
    dialog.model_name.setText("tiny")
    dialog.api_key_env.setText("STUDIO_TEST_KEY")
    assert dialog.key_status.text() == "$STUDIO_TEST_KEY is set in the studio's environment"
    result = click_test(qtbot, dialog)
    assert result["ok"] is True and result["model_listed"] is True
    assert dialog.test_result.text().startswith("Connected: openai:tiny@127.0.0.1")
    screenshot(dialog, "teacher-settings-remote-tested")
    assert "sk-hidden-777" not in dialog.test_result.text() + dialog.key_status.text()
    dialog.model_name.setText("nope")
    result = click_test(qtbot, dialog)
    assert "the server has no model 'nope'" in result["error"]
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    saved = json.loads((project.root / "teacher.json").read_text())
    assert saved["api_key_env"] == "STUDIO_TEST_KEY"
    assert "sk-hidden-777" not in json.dumps(saved)


def test_unreachable_server_and_invalid_settings(qtbot, dialog, project, screenshot):
    dialog.remote_choice.setChecked(True)
    dialog.base_url.setText(f"http://127.0.0.1:{free_port()}/v1")
    dialog.model_name.setText("m")
    dialog.retries.setValue(0)
    result = click_test(qtbot, dialog)
    assert result["ok"] is False and "cannot reach 127.0.0.1" in result["error"]
    screenshot(dialog, "teacher-settings-remote-failed")
    dialog.model_name.setText("")
    assert click_test(qtbot, dialog)["error"] == "a remote teacher needs a model name"
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert dialog.isVisible()  # not saved, the dialog stays open and says why
    assert dialog.test_result.text() == "Not saved: a remote teacher needs a model name"
    assert not (project.root / "teacher.json").exists()


def through_proxy(qtbot, d: TeacherSettingsDialog, upstream: str, **canned: list) -> dict:
    """Test the connection to ``upstream`` through a proxy that gives ``faults`` / ``replies``."""
    proxy = TeacherProxy(upstream)
    try:
        proxy.faults.extend(canned.get("faults", []))
        proxy.replies.extend(canned.get("replies", []))
        d.remote_choice.setChecked(True)
        d.base_url.setText(proxy.url)
        d.model_name.setText("tiny")
        return click_test(qtbot, d)
    finally:
        proxy.close()


def test_hostile_reply_is_shown_as_plain_text(qtbot, dialog, llama_server):
    # the model list, then the reply
    result = through_proxy(qtbot, dialog, llama_server.url, faults=["pass", "hostile"])
    assert result["ok"] is True
    assert dialog.test_result.textFormat() == Qt.TextFormat.PlainText
    assert "<script>alert(1)</script>" in dialog.test_result.text()


def test_a_teacher_that_answers_with_no_text_is_shown_in_amber(
    qtbot, dialog, llama_server, screenshot
):
    result = through_proxy(qtbot, dialog, llama_server.url, replies=[""])
    assert result["ok"] is True and "answered with no text" in result["warning"]
    assert "But the teacher answered with no text" in dialog.test_result.text()
    assert WARN_COLOUR in dialog.test_result.styleSheet()
    screenshot(dialog, "teacher-settings-empty-reply")


def test_a_damaged_settings_file_opens_on_defaults(qtbot, project):
    (project.root / "teacher.json").write_text('{"kind": "openai", "model": 7}')
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    assert d.local_choice.isChecked()
    assert d.test_result.text().startswith("teacher setting 'model' should be str")


def test_closing_during_a_test_cancels_it(qtbot, project, tiny_gguf: Path):
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    d.show()
    d.model_path.setText(str(tiny_gguf))
    qtbot.mouseClick(d.test_button, Qt.MouseButton.LeftButton)
    assert d.test_button.text() == "Cancel test"
    d.reject()
    qtbot.waitUntil(lambda: not d.test_op.running, timeout=60_000)
    assert d.test_op.task.cancelled()


@pytest.fixture
def silent_server():
    """The base URL of a socket on 127.0.0.1 that takes connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    listener.close()


def start_silent_test(qtbot, d: TeacherSettingsDialog, url: str) -> None:
    """Click "Test connection" against ``url`` with a 60 s read timeout, and let it wait."""
    d.remote_choice.setChecked(True)
    d.base_url.setText(url)
    d.model_name.setText("m")
    d.timeout.setValue(60)
    d.retries.setValue(0)
    qtbot.mouseClick(d.test_button, Qt.MouseButton.LeftButton)
    assert d.test_button.text() == "Cancel test"
    qtbot.wait(500)  # the request is out, its read waiting on the silence
    assert d.test_op.running


def test_cancel_stops_a_test_against_a_silent_server(qtbot, dialog, silent_server):
    start_silent_test(qtbot, dialog, silent_server)
    started = time.monotonic()
    with qtbot.waitSignal(dialog.tested, timeout=15_000) as signal:
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - started < 15  # not the 60 s read timeout
    assert signal.args[0]["cancelled"] is True
    assert dialog.test_result.text() == "Test cancelled."
    assert dialog.test_button.text() == "Test connection"


def test_closing_stops_a_test_against_a_silent_server(qtbot, project, silent_server):
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    d.show()
    start_silent_test(qtbot, d, silent_server)
    d.reject()
    qtbot.waitUntil(lambda: not d.test_op.running, timeout=15_000)


@pytest.mark.parametrize(
    "saved, field, shown, note",
    [
        ({"n_ctx": 100_000_000_000_000}, "n_ctx", 1 << 20, "context size, 100,000,000,000,000"),
        ({"n_threads": 100_000}, "threads", 1024, "thread count, 100,000, is not from 1 to 1,024"),
        ({"concurrency": 99_999}, "concurrency", 256, "number of concurrent requests, 99,999"),
        ({"retries": 1000}, "retries", 20, "retry count, 1,000, is not from 0 to 20"),
        ({"read_timeout": float("nan")}, "timeout", 120.0, "timeout, nan"),
        ({"read_timeout": 1e300}, "timeout", 3600.0, "timeout, 1e+300, is not from 0.1 to 3,600"),
    ],
)
def test_a_saved_value_out_of_range_opens_and_says_so(qtbot, project, saved, field, shown, note):
    (project.root / "teacher.json").write_text(json.dumps(saved))  # NaN as JSON's NaN
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    assert getattr(d, field).value() == shown
    assert not d.settings_note.isHidden()
    assert note in d.settings_note.text()
    assert "Save stores what it shows" in d.settings_note.text()


def test_a_saved_setting_without_a_field_is_reset_and_said_to_be(qtbot, project, screenshot):
    (project.root / "teacher.json").write_text(
        '{"reply_timeout": 1e300, "n_threads": 3, "n_ctx": 100000000000000}'
    )
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    d.show()
    screenshot(d, "teacher-settings-out-of-range")
    assert "reply_timeout must be at most 86,400 s" in d.settings_note.text()
    assert "teacher.json this dialog has no field for); Save stores the default, 900 s." in (
        d.settings_note.text()
    )
    d.buttons.button(d.buttons.StandardButton.Save).click()
    assert load_config(project.root).reply_timeout == 900.0
    assert load_config(project.root).n_threads == 3  # the rest kept


def test_a_thread_count_past_this_machines_cores_is_shown_as_saved(qtbot, project):
    threads = (os.cpu_count() or 1) * 8  # saved on a bigger machine
    (project.root / "teacher.json").write_text(json.dumps({"n_threads": threads}))
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    assert d.threads.value() == threads
    assert d.settings_note.isHidden()


def test_a_context_past_the_trained_one_is_noted(qtbot, dialog, tiny_gguf: Path):
    dialog.model_path.setText(str(tiny_gguf))
    dialog.n_ctx.setValue(8192)
    assert not dialog.context_note.isHidden()
    assert "more than tiny.gguf was trained on (4,096)" in dialog.context_note.text()
    dialog.n_ctx.setValue(4096)
    assert dialog.context_note.isHidden()


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:99999/v1", "has port '99999': a port is a number from 1 to 65535"),
        ("http://[::1/v1", "has an unmatched [ or ] in its host"),
        ("http://[zz]/v1", "has no IPv6 address inside the [ ]"),
        ("http://" + "a" * 100_000, "a base URL is at most 2,048"),
        ("http://127.0.0.1:8080/ v1", "has a space or a control character in it"),
    ],
)
def test_malformed_urls_are_refused_by_test_and_save(qtbot, dialog, project, url, reason):
    dialog.remote_choice.setChecked(True)
    dialog.base_url.setText(url)
    dialog.model_name.setText("m")
    assert reason in click_test(qtbot, dialog)["error"]
    dialog.buttons.button(dialog.buttons.StandardButton.Save).click()
    assert dialog.isVisible() and reason in dialog.test_result.text()
    assert not (project.root / "teacher.json").exists()


def test_a_model_path_with_a_nul_is_refused(qtbot, dialog):
    dialog.model_path.setText("a\x00b.gguf")
    result = click_test(qtbot, dialog)
    assert result["error"] == "the model file path has a NUL character in it"


def test_a_model_path_under_an_unknown_users_home_opens_and_says_why(qtbot, project):
    """A project from a colleague's machine names ~alice/...: Path.expanduser raised
    RuntimeError, so the dialog did not open, and each keystroke in the field raised again."""
    (project.root / "teacher.json").write_text(
        json.dumps({"kind": "local", "path": "~nosuchuser-of-the-studio/models/x.gguf"})
    )
    d = TeacherSettingsDialog(project)
    qtbot.addWidget(d)
    d.show()
    assert d.model_path.text() == "~nosuchuser-of-the-studio/models/x.gguf"
    d.model_path.setText("~nosuchuser-of-the-studio/y.gguf")  # the context note reads it
    result = click_test(qtbot, d)
    assert not result["ok"] and "~nosuchuser-of-the-studio/y.gguf" in result["error"]
    assert "unexpected" not in result["error"]


def test_a_key_for_a_url_no_teacher_could_have_is_refused_before_it_is_asked_for(
    qtbot, dialog, monkeypatch
):
    import studio.ui.qt_teacher_settings as settings

    def asked(*_args, **_kwargs):
        raise AssertionError("the key was asked for")

    monkeypatch.setattr(settings.QInputDialog, "getText", asked)
    dialog.remote_choice.setChecked(True)
    dialog.base_url.setText("garbage")
    dialog._on_store_key()
    assert "the base URL 'garbage' must start with http://" in dialog.test_result.text()
    assert "no key kept" in dialog.test_result.text()
