"""A warning that does not block the window: the curator reads it and goes on working, and a
test reads it from the attribute the view keeps it in."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def warning_box(
    parent: QWidget, title: str, message: str, details: str = "", *, plain: bool = False
) -> QMessageBox:
    """Show a non-modal warning and return it. ``plain``: the message quotes what a curator
    typed or a file holds, so it is shown as text, never rendered as HTML."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=parent)
    if plain:
        box.setTextFormat(Qt.TextFormat.PlainText)
    if details:
        box.setDetailedText(details)
    box.show()
    return box
