"""`studio demo` over a corpus folder with damage in it, and run again over a project a curator
has worked in (no ../shared needed: two small pages stand in for WCXB's)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from click.testing import CliRunner

from studio.cli import cli
from studio.demo import shipped_labels
from studio.project import Project

PAGE = "<html><body><article><h1>{t}</h1><p>{t} explained step by step, with a worked example "
PAGE += "and the reasons behind each step, for a student meeting it the first time.</p>"
PAGE += "</article></body></html>"


def _corpus(root: Path, ids: list[str]) -> Path:
    (root / "html").mkdir(parents=True)
    (root / "ground-truth").mkdir()
    for i, file_id in enumerate(ids):
        html = PAGE.format(t=f"Topic {i} of the water cycle")
        (root / "html" / f"{file_id}.html.gz").write_bytes(gzip.compress(html.encode()))
    return root


def test_a_rerun_keeps_the_curators_labels_and_damage_is_reported(tmp_path: Path) -> None:
    first, second, third = sorted({label["file_id"] for label in shipped_labels()})[:3]
    corpus = _corpus(tmp_path / "wcxb", [first, second, third])
    (corpus / "ground-truth" / f"{first}.json").write_text(json.dumps({"url": "https://a.org/x"}))
    (corpus / "ground-truth" / f"{second}.json").write_text("{bad")  # the page goes in, no URL
    # a page WCXB gives no URL (an empty string): not damage, and not said to be
    (corpus / "ground-truth" / f"{third}.json").write_text(json.dumps({"url": ""}))
    p = tmp_path / "demo"
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", str(p), "--corpus", str(corpus), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["labelled"], report["labels"], report["kept"]) == (3, 6, 0)
    assert report["unreadable"] == [f"{second}.json"]
    with Project.open(p, create=False).store() as store:
        urls = sorted(str(store.document(d).url) for d in store.document_ids())
        assert urls == ["None", "None", "https://a.org/x"]
        doc = store.document_ids()[0]
        store.set_label(doc, "studio-team", 5, "edited by the curator")

    again = runner.invoke(cli, ["demo", str(p), "--corpus", str(corpus)])
    assert again.exit_code == 0, again.output
    assert "6 labels the project already held were kept as they are" in again.output
    assert "1 ground-truth files could not be read" in again.output
    with Project.open(p, create=False).store() as store:
        mine = [r for r in store.labels() if r["doc_id"] == doc and r["annotator"] == "studio-team"]
        assert [(r["score"], r["note"]) for r in mine] == [(5, "edited by the curator")]
        assert len(store.labels()) == 6


def test_a_demo_where_no_project_can_be_made_is_one_line(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "wcxb", ["0001"])
    (tmp_path / "file").write_text("not a folder")
    for where in (tmp_path / "file" / "demo", Path("/proc/studio-demo")):
        result = CliRunner().invoke(cli, ["demo", str(where), "--corpus", str(corpus)])
        assert result.exit_code == 1 and "Error: " in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_pages_that_cannot_be_imported_are_named_and_fail_the_command(tmp_path: Path) -> None:
    """A corpus of junk said '0 pages imported' and exited 0, with no word on why."""
    corpus = _corpus(tmp_path / "wcxb", ["0001"])
    (corpus / "html" / "0002.html").write_bytes(bytes(range(256)) * 20)  # binary named .html
    (corpus / "html" / "0003.html.gz").write_bytes(b"\x1f\x8b\x08 cut short")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "demo"), "--corpus", str(corpus)])
    assert result.exit_code == 1, result.output
    assert "1 pages imported" in result.output
    assert "2 page files could not be imported:" in result.output
    assert "0002.html: " in result.output and "0003.html.gz: " in result.output
    report = CliRunner().invoke(
        cli, ["demo", str(tmp_path / "demo"), "--corpus", str(corpus), "--json"]
    )
    assert report.exit_code == 1 and len(json.loads(report.stdout)["failed"]) == 2
