"""The teacher settings dialog: a local GGUF (llama.cpp) or an OpenAI-compatible server, with a
"Test connection" that runs off the UI thread and shows what came back.

The project keeps the settings in ``teacher.json``; an API key stays in the environment or the
OS keyring, and this dialog never shows one.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.paths import expand_home
from studio.teachers.base import TeacherError
from studio.teachers.config import (
    LIMITS,
    TeacherConfig,
    check_base_url,
    default_local_model,
    load_config,
    plain_number,
    range_problem,
    save_config,
)
from studio.ui.qt_ops import Op, run_op

OK_COLOUR, ERROR_COLOUR, BUSY_COLOUR = "#1f7a3a", "#b42318", "#6b6b6b"
WARN_COLOUR = "#9a5b00"
# the settings this dialog has no field for, kept as saved (or reset, when out of range)
HIDDEN_SETTINGS = ("connect_timeout", "reply_timeout", "backoff")


class TeacherSettingsDialog(QDialog):
    """Choose and test the project's teacher; Save writes ``teacher.json``."""

    saved = Signal(object)  # TeacherConfig
    tested = Signal(dict)  # the check's result, or {"ok": False, "error": ...}

    def __init__(self, project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Teacher settings")
        self.setObjectName("teacherSettings")
        self.root = Path(getattr(project, "root", project))
        self.test_op: Op | None = None
        self._loaded = TeacherConfig()
        load_error = ""
        try:
            # not validated: a value out of range is shown, and said to be, in its own field
            self._loaded = load_config(self.root, check=False)
        except TeacherError as exc:  # a damaged file: start from the defaults, say so
            load_error = f"{exc}. Showing the defaults; Save replaces the file."

        self.local_choice = QRadioButton("Local model (llama.cpp, in the studio)")
        self.remote_choice = QRadioButton("OpenAI-compatible server")
        self.kind_group = QButtonGroup(self)
        self.kind_group.addButton(self.local_choice)
        self.kind_group.addButton(self.remote_choice)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._local_page())
        self.pages.addWidget(self._remote_page())
        self.local_choice.toggled.connect(self._on_kind)

        self.test_button = QPushButton("Test connection", objectName="testConnection")
        self.test_button.clicked.connect(self._on_test)
        # wide enough for either label, so the row does not jump between them
        self.test_button.setMinimumWidth(self.test_button.sizeHint().width() + 12)
        self.test_result = QLabel(objectName="testResult")
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)  # a reply is data, never markup
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.test_result.setMinimumHeight(64)
        self.test_result.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        # what is wrong with the saved settings: stays in view while tests come and go
        self.settings_note = _note(ERROR_COLOUR, "settingsNote")

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_save)
        self.buttons.rejected.connect(self.reject)

        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.local_choice)
        layout.addWidget(self.remote_choice)
        layout.addWidget(self.pages)
        layout.addWidget(self.settings_note)
        layout.addLayout(test_row)
        layout.addWidget(self.test_result, 1)
        layout.addWidget(self.buttons)
        self.resize(620, 520)

        self.set_config(self._loaded)
        if load_error:
            self._show(load_error, ERROR_COLOUR)

    # pages ------------------------------------------------------------------------------------

    def _local_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        shipped = default_local_model()
        self.model_path = QLineEdit(objectName="modelPath")
        self.model_path.setPlaceholderText(
            f"the shipped model: {shipped.name}" if shipped else "choose a .gguf file"
        )
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path, 1)
        row.addWidget(browse)
        form.addRow("Model file (GGUF)", row)
        self.n_ctx = _spin("n_ctx", "tokens the model sees at once: prompt plus reply")
        # not capped at this machine's cores: a project keeps its setting on another machine
        self.threads = _spin("n_threads", "CPU threads for llama.cpp")
        self.gpu_layers = _spin("n_gpu_layers", "layers offloaded to a GPU; -1 for all, 0 for none")
        self.gpu_layers.setSpecialValueText("all (-1)")
        # a context past the one the model was trained on, said before anything loads
        self.context_note = _note(WARN_COLOUR, "contextNote")
        self.n_ctx.valueChanged.connect(self._update_context_note)
        self.model_path.textChanged.connect(self._update_context_note)
        form.addRow("Context size", self.n_ctx)
        form.addRow(self.context_note)
        form.addRow("Threads", self.threads)
        form.addRow("GPU layers", self.gpu_layers)
        note = QLabel(
            "The shipped model is tiny: good for trying the studio out. Point the studio at a "
            "stronger instruct model (a 3–8B GGUF, or a server) for real teaching pages."
        )
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {BUSY_COLOUR}")
        form.addRow(note)
        return page

    def _remote_page(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.base_url = QLineEdit(objectName="baseUrl")
        self.base_url.setPlaceholderText("http://127.0.0.1:8080/v1  or  https://api.openai.com/v1")
        self.model_name = QLineEdit(objectName="modelName")
        self.model_name.setPlaceholderText("the model's name on the server")
        self.api_key_env = QLineEdit(objectName="apiKeyEnv")
        self.api_key_env.setPlaceholderText("e.g. OPENAI_API_KEY; empty: the OS keyring")
        self.key_status = QLabel(objectName="keyStatus")
        self.api_key_env.textChanged.connect(self._update_key_status)
        self.base_url.textChanged.connect(self._update_key_status)
        store_key = QPushButton("Keep a key in the OS keyring…")
        store_key.clicked.connect(self._on_store_key)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_status, 1)
        key_row.addWidget(store_key)
        self.concurrency = _spin("concurrency", "replies requested at once")
        self.timeout = QDoubleSpinBox(
            decimals=1, minimum=0.1, maximum=LIMITS["read_timeout"][1], suffix=" s"
        )
        self.timeout.setToolTip("the longest silence inside a reply before it is retried")
        self.retries = _spin("retries", "retries after a 429, 5xx, dropped connection or bad reply")
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model_name)
        form.addRow("API key variable", self.api_key_env)
        form.addRow("", key_row)
        form.addRow("Concurrent requests", self.concurrency)
        form.addRow("Timeout", self.timeout)
        form.addRow("Retries", self.retries)
        return page

    # the settings ---------------------------------------------------------------------------

    def set_config(self, config: TeacherConfig) -> None:
        """Show ``config``, which may be out of range (a hand-edited file, an older studio's):
        a field shows the nearest value it holds, and the note above the test says what was
        saved, so that Save never changes a setting unseen."""
        notes = self._reset_hidden(config)
        config = self._loaded
        (self.local_choice if config.kind == "local" else self.remote_choice).setChecked(True)
        self._on_kind()
        self.model_path.setText(config.path)
        self.base_url.setText(config.base_url)
        self.model_name.setText(config.model)
        self.api_key_env.setText(config.api_key_env)
        defaults = TeacherConfig()
        for box, name, label in (
            (self.n_ctx, "n_ctx", "context size"),
            (self.threads, "n_threads", "thread count"),
            (self.gpu_layers, "n_gpu_layers", "GPU layer count"),
            (self.concurrency, "concurrency", "number of concurrent requests"),
            (self.timeout, "read_timeout", "timeout"),
            (self.retries, "retries", "retry count"),
        ):
            notes.append(_show_number(box, getattr(config, name), label, getattr(defaults, name)))
        notes = [n for n in notes if n]
        try:  # what the notes above do not cover: a URL, a name, a path
            replace(config, **{name: getattr(defaults, name) for name in LIMITS}).validate()
        except TeacherError as exc:
            notes.append(f"The saved settings are not valid: {exc}. Fix them to save.")
        self.settings_note.setText("\n".join(notes))
        self.settings_note.setVisible(bool(notes))
        self._update_key_status()
        self._update_context_note()

    def _reset_hidden(self, config: TeacherConfig) -> list[str]:
        """Keep ``config`` for the settings the dialog has no field for, with each one out of
        range put back to its default (no field could fix it); the notes say which."""
        notes, defaults = [], TeacherConfig()
        for name in HIDDEN_SETTINGS:
            value = getattr(config, name)
            try:
                problem = range_problem(name, value)
            except TypeError:  # not a number at all
                problem = f"{name} is not a number"
            if problem:
                config = replace(config, **{name: getattr(defaults, name)})
                unit = LIMITS[name][2]
                default = plain_number(getattr(defaults, name)) + (f" {unit}" if unit else "")
                notes.append(
                    f"The saved {problem} (a setting of teacher.json this dialog has no field "
                    f"for); Save stores the default, {default}."
                )
        self._loaded = config
        return notes

    def config(self) -> TeacherConfig:
        """The settings as the fields show them (not yet validated)."""
        return replace(
            self._loaded,
            kind="local" if self.local_choice.isChecked() else "openai",
            path=self.model_path.text().strip(),
            n_ctx=self.n_ctx.value(),
            n_threads=self.threads.value(),
            n_gpu_layers=self.gpu_layers.value(),
            base_url=self.base_url.text().strip(),
            model=self.model_name.text().strip(),
            api_key_env=self.api_key_env.text().strip(),
            concurrency=self.concurrency.value(),
            read_timeout=float(self.timeout.value()),
            retries=self.retries.value(),
        )

    # handlers -------------------------------------------------------------------------------

    def _on_kind(self, *_: object) -> None:
        self.pages.setCurrentIndex(0 if self.local_choice.isChecked() else 1)

    def _update_context_note(self, *_: object) -> None:
        from studio.teachers.llama import context_note

        text = self.model_path.text().strip()
        path = expand_home(text) if text else default_local_model()
        try:
            note = context_note(path, self.n_ctx.value()) if path is not None else None
        except (OSError, ValueError):  # a path no OS takes: Test and Save say so
            note = None
        self.context_note.setText(f"Note: {note}." if note else "")
        self.context_note.setVisible(bool(note))

    def _on_browse(self) -> None:
        start = self.model_path.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.model_path.setText(path)

    def _update_key_status(self, *_: object) -> None:
        name = self.api_key_env.text().strip()
        if name:
            state = "set" if os.environ.get(name) else "NOT set"
            shown = name if len(name) <= 60 else name[:60] + "…"  # a pasted page stays one line
            self.key_status.setText(f"${shown} is {state} in the studio's environment")
        else:
            self.key_status.setText("key: from the OS keyring for this URL, if one is kept")

    def _on_test(self) -> None:
        if self.test_op is not None and self.test_op.running:
            self.test_op.cancel()
            self._show("Cancelling…", BUSY_COLOUR)
            return
        try:
            config = self.config().validate()
        except TeacherError as exc:
            self._show_result({"ok": False, "error": str(exc)})
            return
        what = "Loading the model" if config.kind == "local" else "Asking the server"
        self._show(f"{what} and asking for a short reply…", BUSY_COLOUR)
        self.test_button.setText("Cancel test")
        self.test_op = run_op(self, lambda task: _test(config, task), writes=False)
        self.test_op.on_success(self._show_result).on_failure(
            lambda message, _tb: self._show_result({"ok": False, "error": message})
        )

    def _show_result(self, result: dict) -> None:
        self.test_button.setText("Test connection")
        if result.get("cancelled"):
            self._show("Test cancelled.", BUSY_COLOUR)
        elif result.get("ok"):
            speed = f"{result['tokens_per_second']:.1f} tokens/s"
            self._show(
                f"Connected: {result['name']} ({result['model']}), opened in "
                f"{result['open_seconds']:.2f} s.\nReply ({result['completion_tokens']} "
                f"tokens, {speed}): {result['reply']}"
                + (f"\nBut {result['warning']}." if result.get("warning") else ""),
                WARN_COLOUR if result.get("warning") else OK_COLOUR,
            )
        else:
            self._show(f"Failed: {result['error']}", ERROR_COLOUR)
        self.tested.emit(result)

    def _show(self, text: str, colour: str) -> None:
        self.test_result.setStyleSheet(f"color: {colour}")
        self.test_result.setText(text)

    def _on_store_key(self) -> None:
        from studio.teachers.config import store_api_key

        url = self.base_url.text().strip()
        if not url:
            self._show("Enter the base URL first: the key is kept for that URL.", ERROR_COLOUR)
            return
        try:  # before the key is asked for: it would be kept under a URL nothing looks up
            check_base_url(url)
        except TeacherError as exc:
            self._show(f"{exc}: no key kept.", ERROR_COLOUR)
            return
        key, ok = QInputDialog.getText(
            self, "API key", f"Key for {url}:", QLineEdit.EchoMode.Password
        )
        if not ok or not key.strip():
            return
        try:
            store_api_key(url, key.strip())
        except TeacherError as exc:
            self._show(f"{exc}. Put the key in an environment variable instead.", ERROR_COLOUR)
            return
        self._show(f"The key for {url} is kept in the OS keyring.", OK_COLOUR)

    def _on_save(self) -> None:
        try:
            config = self.config().validate()
            save_config(self.root, config)
        except (TeacherError, OSError) as exc:
            self._show(f"Not saved: {exc}", ERROR_COLOUR)
            return
        self.saved.emit(config)
        self.accept()

    def done(self, result: int) -> None:
        if self.test_op is not None and self.test_op.running:
            self.test_op.cancel()
        super().done(result)


def _test(config: TeacherConfig, task) -> dict:
    """The op: a check's result, or the reason it failed (shown, never raised)."""
    from studio.teachers.check import check_teacher

    try:
        return check_teacher(config, cancelled=task.cancelled)
    except TeacherError as exc:
        if task.cancelled():
            return {"ok": False, "error": "cancelled", "cancelled": True}
        return {"ok": False, "error": str(exc)}


def _spin(name: str, tip: str) -> QSpinBox:
    """A field for an integer setting, with the bounds the saved settings are checked against."""
    low, high, _unit = LIMITS[name]
    box = QSpinBox(minimum=int(low), maximum=int(high))
    box.setToolTip(tip)
    return box


def _note(colour: str, name: str) -> QLabel:
    label = QLabel(objectName=name)
    label.setTextFormat(Qt.TextFormat.PlainText)  # a saved path or value is data, never markup
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {colour}")
    label.setVisible(False)
    return label


def _show_number(
    box: QSpinBox | QDoubleSpinBox, value: float, label: str, default: float
) -> str | None:
    """Put ``value`` in ``box``, or the nearest value it holds (a spin box raises on an integer
    past 32 bits), or for NaN the default; the note saying so, when the value did not fit."""
    low, high = box.minimum(), box.maximum()
    shown = default if isinstance(value, float) and math.isnan(value) else value
    box.setValue(min(max(shown, low), high))
    if box.value() == value:
        return None
    return (
        f"The saved {label}, {plain_number(value)}, is not from {plain_number(low)} to "
        f"{plain_number(high)}: the field shows {plain_number(box.value())}, and Save stores "
        "what it shows."
    )
