"""Offscreen Qt for every UI test, and a place for the screenshots a curator would look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_QUICK_BACKEND", "software")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def screenshot():
    """``screenshot(widget, name)`` saves a PNG under artifacts/screenshots (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(widget, name: str) -> Path:
        from PySide6.QtWidgets import QApplication

        QApplication.processEvents()  # lay out what the last step changed before grabbing
        path = SCREENSHOTS / f"{name}.png"
        assert widget.grab().save(str(path)), f"could not save {path}"
        return path

    return save


@pytest.fixture
def window(qtbot, project):
    from studio.ui.qt_main import MainWindow

    w = MainWindow(project)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if w.import_op is not None and w.import_op.running:
        w.import_op.cancel()
        qtbot.waitUntil(lambda: not w.import_op.running, timeout=60_000)
