"""The import report: what happened to each file of an import, in one table."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ingest.pipeline import ImportReport
from studio.text import plural, visible

STATUS_COLOURS = {
    "imported": "#1f7a3a",
    "failed": "#b42318",
    "skipped": "#6b6b6b",
    "cancelled": "#9a6a00",
}
HEADERS = ["File", "Format", "Status", "Imported", "Duplicates", "Failed records", "Why"]


class ImportReportDialog(QDialog):
    """Per file: imported N, skipped M duplicates, or failed with a reason."""

    def __init__(self, report: ImportReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import report")
        self.setObjectName("importReport")
        self.resize(980, 420)
        failed = len(report.failed_files)
        verdict = "cancelled" if report.cancelled else "finished"
        base = _common_parent([f.path for f in report.files])
        where = QLabel(f"Files under <code>{html.escape(base)}</code>" if base else "")
        summary = QLabel(
            f"<b>Import {verdict}:</b> {plural(report.imported, 'document')} imported, "
            f"{plural(report.duplicates, 'exact duplicate')} skipped, "
            f"<span style='color:{STATUS_COLOURS['failed'] if failed else '#333'}'>"
            f"{failed} of {len(report.files)} files failed</span>. "
            "Nothing stored before was changed."
        )
        table = QTableWidget(len(report.files), len(HEADERS), objectName="importTable")
        table.setHorizontalHeaderLabels(HEADERS)
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.verticalHeader().setDefaultSectionSize(22)
        for row, f in enumerate(report.files):
            why = f.reason or ""
            if f.errors:
                why = (why + " " if why else "") + "; ".join(f.errors[:3])
                if len(f.errors) > 3:
                    why += f" (+{len(f.errors) - 3} more)"
            shown = os.path.relpath(f.path, base) if base else f.path
            cells = [shown, f.format or "", f.status, f.imported, f.duplicates, f.failed, why]
            for col, value in enumerate(cells):
                item = QTableWidgetItem(visible(str(value)))
                if isinstance(value, int):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                if col == 2:
                    partly = f.status == "imported" and f.failed
                    colour = "#9a6a00" if partly else STATUS_COLOURS.get(f.status, "#333")
                    item.setForeground(QColor(colour))
                tip = {0: f.path, 6: "\n".join([str(value), *f.errors[:20]])}.get(col, str(value))
                item.setToolTip(plain_tip(tip))
                table.setItem(row, col, item)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        table.setColumnWidth(0, 300)
        table.resizeColumnToContents(1)
        table.resizeColumnToContents(2)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(where)
        layout.addWidget(table, 1)
        layout.addWidget(buttons)


def plain_tip(text: str) -> str:
    """A tooltip that shows ``text`` as it is: Qt renders a tooltip that looks like HTML as
    HTML, so a file named '<b>x</b>.txt' would show as a bold x."""
    lines = [html.escape(visible(line)) for line in text.split("\n")]
    return "<qt>" + "<br>".join(lines) + "</qt>"


def _common_parent(paths: list[str]) -> str:
    """The folder all files share, so the table can show short paths (full ones in tooltips)."""
    try:
        common = os.path.commonpath(paths)
    except ValueError:
        return ""
    # one path is a file's, whatever kind (a named pipe is no regular file, and the table
    # showed its name as ".")
    return os.path.dirname(common) if len(set(paths)) == 1 else common
