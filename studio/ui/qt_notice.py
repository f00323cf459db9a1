"""A warning that does not block the window: the curator reads it and goes on working, and a
test reads it from the attribute the view keeps it in."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def warning_box(parent: QWidget, title: str, message: str, details: str = "") -> QMessageBox:
    """Show a non-modal warning and return it. The message is shown as text, never rendered
    as HTML: messages quote what a curator typed or a file holds ("<b>big</b>" as a teacher
    spec was shown in bold)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    if details:
        box.setDetailedText(details)
    box.show()
    return box
