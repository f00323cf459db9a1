"""The import report shows every file name as it is: never as HTML, never reordered by a
text-direction character, never cut at a newline."""

from __future__ import annotations

from studio.ingest.pipeline import FileResult, ImportReport
from studio.ui.qt_import import ImportReportDialog


def test_hostile_file_names_are_shown_as_they_are(qtbot, screenshot) -> None:
    names = ["/data/<b>x</b>.txt", "/data/evil\u202etxt.exe", "/data/two\nlines.html"]
    report = ImportReport(
        import_id=1,
        files=[
            FileResult(path=names[0], format="text", imported=1),
            FileResult(path=names[1], status="failed", reason="not a page: evil\u202etxt.exe"),
            FileResult(path=names[2], format="html", imported=1),
        ],
    )
    dialog = ImportReportDialog(report)
    qtbot.addWidget(dialog)
    cells = [dialog.table.item(r, 0).text() for r in range(3)]
    assert cells == ["<b>x</b>.txt", "evil\\u202etxt.exe", "two\\nlines.html"]
    assert dialog.table.item(1, 6).text() == "not a page: evil\\u202etxt.exe"
    tip = dialog.table.item(0, 0).toolTip()
    assert "&lt;b&gt;x&lt;/b&gt;.txt" in tip and "<b>x" not in tip
    dialog.show()
    screenshot(dialog, "import-report-hostile-names")


def test_one_file_that_is_no_regular_file_is_named(qtbot, tmp_path) -> None:
    """A named pipe dropped alone was listed as "." (its own folder was taken as the base)."""
    import os

    pipe = tmp_path / "pages.jsonl"
    os.mkfifo(pipe)
    report = ImportReport(
        import_id=1,
        files=[FileResult(path=str(pipe), status="failed", reason="a named pipe, not a file")],
    )
    dialog = ImportReportDialog(report)
    qtbot.addWidget(dialog)
    assert dialog.table.item(0, 0).text() == "pages.jsonl"
