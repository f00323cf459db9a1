"""Start the studio: the QApplication, the main window, and the self-test the bundle runs."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from studio import paths
from studio.project import Project, ProjectError, default_project_path

log = logging.getLogger("studio.ui")


def application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("Textbook Studio")
        app.setOrganizationName("Textbook Studio")
        app.setApplicationVersion(__import__("studio").__version__)
    assert isinstance(app, QApplication)
    return app


def run(project_path: Path | None) -> int:
    """Open the studio on ``project_path`` (default: the user's default project)."""
    from studio.ui.qt_main import MainWindow
    from studio.ui.qt_ops import open_project_waiting

    if not _has_display():
        print(
            "No display to open the studio on. Run it in a desktop session, under a virtual "
            "screen (xvfb-run -a make run), or use the command line: studio --help",
            file=sys.stderr,
        )
        return 2
    app = application()
    log_file = start_log()
    try:
        project = open_project_waiting(project_path or default_project_path(), create=True)
    except ProjectError as exc:  # damaged, not a project, cannot be created: said, not raised
        _cannot_open(str(exc))
        return 1
    window = MainWindow(project)
    report_unexpected_errors(window, log_file)
    window.show()
    return app.exec()


def _cannot_open(message: str) -> None:
    """Tell the curator why the project did not open: on stderr, and in a box on a screen."""
    print(f"Error: {message}", file=sys.stderr)
    if os.environ.get("QT_QPA_PLATFORM") not in ("offscreen", "minimal"):
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "The project cannot be opened", message)


LOG_NAME = "studio.log"


def start_log() -> Path | None:
    """The studio's log: ``studio.log`` in the user's data folder (rotated at 2 MB, two old
    ones kept), and warnings on stderr as before. None when the folder cannot be written."""
    from logging.handlers import RotatingFileHandler

    from studio.project import data_dir

    path = data_dir() / LOG_NAME
    studio_log = logging.getLogger("studio")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        log.warning("no log file (%s): warnings go to stderr only", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    studio_log.addHandler(handler)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    studio_log.addHandler(stderr)
    studio_log.setLevel(logging.INFO)
    return path


def report_unexpected_errors(window: Any, log_file: Path | None) -> None:
    """An exception no view caught (a slot, a timer) is logged and shown in a box that does not
    block the window, instead of going to a terminal the curator may not have. One box at a
    time: while it is open, later errors are only logged and counted in it."""
    from PySide6.QtWidgets import QMessageBox

    where = f" Details are in {log_file}." if log_file else ""
    state: dict[str, Any] = {"box": None, "more": 0}

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        logging.getLogger("studio").error("unexpected error", exc_info=(kind, value, tb))
        box = state["box"]
        if box is not None and box.isVisible():
            state["more"] += 1
            box.setInformativeText(f"{state['more']} more error(s) since, in the log.{where}")
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Unexpected error",
            f"{kind.__name__}: {str(value)[:400]}\n\nWhat was being done did not finish; "
            f"what the project had already stored is kept.{where}",
            parent=window,
        )
        box.setDetailedText("".join(traceback.format_exception(kind, value, tb))[-20_000:])
        box.setTextFormat(Qt.TextFormat.PlainText)
        state["box"], state["more"] = box, 0
        box.show()

    sys.excepthook = hook


def _has_display() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def self_test(project_path: Path | None, timeout_s: float = 120.0) -> int:
    """Open the main window offscreen on a tiny project, import one page, open it; 0 when all
    of that worked. The packaging script runs this on the frozen studio."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from studio.ui.qt_main import MainWindow

    app = application()
    scratch: Path | None = None
    if project_path is None:  # a project of its own, removed after
        scratch = Path(tempfile.mkdtemp(prefix="studio-self-test-"))
    root = project_path or Path(str(scratch)) / "project"
    try:
        try:
            project = Project.open(root)
        except ProjectError as exc:
            print(f"self-test: the project cannot be opened: {exc}")
            return 1
        return _self_test(app, MainWindow(project, remember=False), root, timeout_s)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _self_test(app: QApplication, window: Any, root: Path, timeout_s: float) -> int:
    window.show()
    outcome = {"code": 1, "why": "timed out"}

    def finished(report) -> None:  # type: ignore[no-untyped-def]
        docs = window.store.totals()["documents"] if window.store else 0
        if report.failed_files or docs < 1:
            outcome["why"] = f"import failed: {[f.summary() for f in report.files]}"
        else:
            window.corpus.select_row(0)
            page = window.document.page
            if page is None or not page.blocks or not any(b.is_signal for b in page.blocks):
                outcome["why"] = "the imported page did not open with signal blocks"
            else:
                outcome["code"], outcome["why"] = _check_child_process(root, docs)
                if outcome["code"] == 0:
                    outcome["why"] = (
                        f"ok: {docs} document{'s' * (docs != 1)}, {len(page.blocks)} blocks; "
                        f"{outcome['why']}"
                    )
        app.quit()

    def failed(message: str) -> None:
        outcome["why"] = f"import failed: {message}"
        app.quit()

    window.import_finished.connect(finished)
    window.import_failed.connect(failed)
    QTimer.singleShot(
        0, lambda: window.import_paths([paths.resource("sample", "photosynthesis.html")])
    )
    QTimer.singleShot(int(timeout_s * 1000), app.quit)
    app.exec()
    print(f"self-test: {outcome['why']}")
    window.close()
    return int(outcome["code"])


def _check_child_process(root: Path, docs: int) -> tuple[int, str]:
    """Long jobs run as a child of the same executable: check that this works here (frozen too)."""
    import json
    import subprocess

    cmd = paths.self_command("info", str(root), "--json")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return 1, f"child process {cmd} failed: {proc.stderr[-1000:]}"
    seen = json.loads(proc.stdout)["documents"]
    if seen != docs:
        return 1, f"child process saw {seen} documents, the window {docs}"
    return 0, "child process ok"
