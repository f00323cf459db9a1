"""`studio export`, as a curator or a script calls it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.project import Project
from tests.cli.test_classify_cli import run
from tests.core.test_classify import make_labelled_project


@pytest.fixture
def scored_project(tmp_path: Path) -> Path:
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        make_labelled_project(store, labelled=60, unlabelled=30)
    run("classifier", "train", str(project.root), "--features", "hand", "--model", "ridge")
    run("score", str(project.root))
    return project.root


def test_export_round_trips(scored_project: Path, tmp_path: Path) -> None:
    p, out, gone = str(scored_project), tmp_path / "out" / "kept.jsonl", tmp_path / "gone.parquet"
    report = json.loads(
        run("export", p, str(out), "--model", "latest", "--dropped", str(gone), "--json")
    )
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    dropped = pq.read_table(gone).to_pylist()
    assert (report["kept"], report["dropped"]) == (len(kept), len(dropped))
    assert len(kept) + len(dropped) == 90 and report["version"] == "0001-hand-ridge"
    assert all(r["provenance"]["classifier"] == "0001-hand-ridge" for r in kept)
    assert "< cut" in dropped[0]["reason"]
    manifest = json.loads((tmp_path / "out" / "kept.jsonl.manifest.json").read_text())
    assert manifest["kept"] == len(kept) and manifest["dropped_path"] == str(gone)

    text = run("export", p, str(tmp_path / "all.parquet"))
    assert text.startswith("kept 90 of 90 documents, ") and "words -> " in text
    rows = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert len(rows) == 90 and rows[0]["provenance"]["content_hash"] == "hash0"
    strict = run(
        "export",
        p,
        str(tmp_path / "s.jsonl.gz"),
        "--model",
        "0001-hand-ridge",
        "--threshold",
        "4.5",
        "--dropped",
        str(tmp_path / "d.jsonl"),
    )
    assert "dropped" in strict


def test_export_errors_are_one_line_messages(scored_project: Path, tmp_path: Path) -> None:
    p = str(scored_project)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "kept.jsonl"
    result = CliRunner().invoke(cli, ["export", p, str(out)])
    assert result.exit_code == 1 and "cannot write the export" in result.output
    assert sorted(q.name for q in tmp_path.iterdir()) == ["file", "p"]
    assert "no classifier version v9" in run(
        "export", p, str(tmp_path / "x.jsonl"), "--model", "v9", code=1
    )
    assert "needs a classifier version" in run(
        "export", p, str(tmp_path / "x.jsonl"), "--threshold", "3", code=1
    )
    assert not (tmp_path / "x.jsonl").exists()
    assert "Invalid value" in run("export", p, "x", "--format", "csv", code=2)
