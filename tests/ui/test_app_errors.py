"""What the running studio does with an error no view caught: a log file, and a box that says
so without blocking the window."""

from __future__ import annotations

import logging
import sqlite3
import sys

from PySide6.QtWidgets import QMessageBox

from studio.ui.app import LOG_NAME, report_unexpected_errors, start_log


def test_an_uncaught_error_is_logged_and_shown(qtbot, window, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back after the test
    studio_log = logging.getLogger("studio")
    handlers = list(studio_log.handlers)
    try:
        log_file = start_log()
        assert log_file == tmp_path / "data" / LOG_NAME
        report_unexpected_errors(window, log_file)
        for i in range(3):
            try:
                raise KeyError(f"document {i} has no block at /html/body/div")
            except KeyError:
                sys.excepthook(*sys.exc_info())
        [box] = [b for b in window.findChildren(QMessageBox) if b.isVisible()]  # one, not 3
        assert box.text().startswith("KeyError: 'document 0 has no block")
        assert str(log_file) in box.text() and "already stored is kept" in box.text()
        assert box.informativeText().startswith("2 more error(s) since")
        assert "Traceback" in box.detailedText()
        for handler in studio_log.handlers:
            handler.flush()
        logged = log_file.read_text("utf-8")
        assert logged.count("unexpected error") == 3 and "document 2 has no block" in logged
    finally:
        for handler in studio_log.handlers[len(handlers) :]:
            studio_log.removeHandler(handler)
            handler.close()
        studio_log.setLevel(logging.NOTSET)


def test_a_failed_operation_says_why_in_the_curators_words(qtbot, tmp_path) -> None:
    """The studio's own errors as they are written; a file-system error as its reason and file;
    only a fault is named by its Python class."""
    from studio.project import Project, damaged
    from studio.ui.qt_ops import run_op

    missing = tmp_path / "gone.jsonl"

    def not_a_project(_task):
        return Project.open(tmp_path / "p", create=False)

    def too_few(_task):
        raise ValueError("label at least 8 pages")

    def read_missing(_task):
        return missing.read_text()

    def faulty(_task):
        return {}["doc"]

    def read_only(_task):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    cases = [
        (not_a_project, f"{tmp_path / 'p'} is not a Textbook Studio project (no studio.db)"),
        (too_few, "label at least 8 pages"),
        (read_missing, f"No such file or directory: {missing}"),
        (faulty, "an unexpected error (KeyError: 'doc'); the log has the details"),
        (
            read_only,
            damaged(None, sqlite3.OperationalError("attempt to write a readonly database")),
        ),
    ]
    for fn, expected in cases:
        op = run_op(None, fn, writes=False)
        with qtbot.waitSignal(op.failed, timeout=5000) as got:
            pass
        message, details = got.args
        assert message == expected
        assert "Traceback" in details
