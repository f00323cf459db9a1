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
    p, out, gone = str(scored_project), tmp_path / "out" / "kept", tmp_path / "gone.parquet"
    report = json.loads(
        run(
            "export", p, str(out), "--model", "latest", "--format", "jsonl",
            "--shard-size", "10", "--dropped", str(gone), "--json",
        )
    )  # fmt: skip
    shards = sorted((out / "data").iterdir())
    assert [f"data/{s.name}" for s in shards] == report["shards"] and len(shards) > 1
    assert all(s.name.endswith(f"-of-{len(shards):05d}.jsonl") for s in shards)
    kept = [json.loads(line) for s in shards for line in s.read_text().splitlines()]
    dropped = pq.read_table(gone).to_pylist()
    assert (report["kept"], report["dropped"]) == (len(kept), len(dropped))
    assert len(kept) + len(dropped) == 90 and report["version"] == "0001-hand-ridge"
    assert all(r["provenance"]["classifier"] == "0001-hand-ridge" for r in kept)
    assert "< cut" in dropped[0]["reason"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kept"] == len(kept) and manifest["dropped_path"] == str(gone)
    assert "path: data/train-*" in (out / "README.md").read_text()

    text = run("export", p, str(tmp_path / "all"), "--license", "cc0-1.0")
    assert text.startswith("kept 90 of 90 documents, ") and "words -> " in text
    rows = pq.read_table(tmp_path / "all" / "data" / "train-00000-of-00001.parquet").to_pylist()
    assert len(rows) == 90 and rows[0]["provenance"]["content_hash"] == "hash0"
    assert 'license: "cc0-1.0"' in (tmp_path / "all" / "README.md").read_text()
    for option in ("--min-score", "--threshold"):  # --threshold: the old name, still taken
        strict = run(
            "export", p, str(tmp_path / f"s{option}"), "--model", "0001-hand-ridge",
            option, "4.5", "--dropped", str(tmp_path / f"d{option}.jsonl"),
        )  # fmt: skip
        assert "dropped" in strict
    # a threshold alone is a threshold on the newest version's scores
    alone = json.loads(run("export", p, str(tmp_path / "alone"), "--min-score", "4.5", "--json"))
    assert (
        alone["version"] == "0001-hand-ridge"
        and alone["kept"]
        == json.loads((tmp_path / "s--min-score" / "manifest.json").read_text())["kept"]
    )


def test_export_errors_are_one_line_messages(scored_project: Path, tmp_path: Path) -> None:
    p = str(scored_project)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "kept"
    result = CliRunner().invoke(cli, ["export", p, str(out)])
    assert result.exit_code == 1 and "kept is inside a file, not a folder" in result.output
    assert sorted(q.name for q in tmp_path.iterdir()) == ["file", "p"]
    # was '[Errno 20] Not a directory: /dev/null.partial-...'
    assert "/dev/null already exists and is not a folder" in run("export", p, "/dev/null", code=1)
    assert not list(Path("/dev").glob("null.partial-*"))
    assert "no classifier version v9" in run(
        "export", p, str(tmp_path / "x"), "--model", "v9", code=1
    )
    assert not (tmp_path / "x").exists()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.txt").write_text("")
    assert "not an empty folder" in run("export", p, str(tmp_path / "x"), code=1)
    assert "Invalid value" in run("export", p, "x", "--format", "csv", code=2)
    assert "name the folder to write" in run("export", p, " ", code=2)
    assert "name the file to write" in run(
        "export", p, str(tmp_path / "y"), "--dropped", "", code=2
    )
    for license_id in ("", "MIT License", "mit\u202e", "x" * 100):
        out = run("export", p, str(tmp_path / "y"), "--license", license_id, code=1)
        assert "is no license id" in out
    assert not (tmp_path / "y").exists()


def test_exports_refuse_the_projects_own_files(scored_project: Path, tmp_path: Path) -> None:
    """`--dropped P/studio.db` once replaced the database with JSONL; both exports refuse any
    output onto the project's files with one line, and the project still works after."""
    p = str(scored_project)
    db, model = scored_project / "studio.db", scored_project / "models" / "classifier"
    model = next((model / "0001-hand-ridge").glob("*.npz"))
    before = model.read_bytes()
    for args in (
        ["export", p, str(tmp_path / "out"), "--model", "latest", "--dropped", str(db)],
        ["export", p, str(tmp_path / "out"), "--dropped", str(model)],
        ["export", p, str(scored_project / "runs")],
        ["classifier", "export", p, str(db)],
        ["classifier", "export", p, str(model)],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert "belongs to the project's" in result.output or "database" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert len(result.output.strip().splitlines()) == 1
    assert model.read_bytes() == before and not (tmp_path / "out").exists()
    assert "0001-hand-ridge" in run("classifier", "versions", p)  # the database still opens
    text = run("classifier", "export", p, str(scored_project / "exports" / "edu.zip"))
    assert "exported 0001-hand-ridge" in text


SLOW_EXPORT = """
import sys, time
import studio.export as export
real = export.record
seen = []
def slow(row, labels, rule):
    seen.append(row["id"])
    if len(seen) == 5:  # shards are open, a dropped file too: stop here until signalled
        print("writing", flush=True)
        time.sleep(120)
    return real(row, labels, rule)
export.record = slow
from studio.cli import cli, run_cli
sys.argv = ["studio", "export", *sys.argv[1:]]
run_cli(cli)
"""


def test_sigterm_mid_export_leaves_nothing_behind(scored_project: Path, tmp_path: Path) -> None:
    """SIGTERM (kill, a scheduler's stop) once ended the export where it stood, leaving
    OUTDIR.partial-XXXX and the dropped file's .tmp beside the output; now it ends as Ctrl-C
    does, and the export's way out removes them."""
    import signal
    import subprocess
    import sys

    out, gone = tmp_path / "kept", tmp_path / "gone.jsonl"
    args = [str(scored_project), str(out), "--format", "jsonl", "--shard-size", "2"]
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_EXPORT, *args, "--dropped", str(gone), "--model", "latest"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline() == "writing\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("kept.partial-")]
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err  # stopped, as a shell tells it (was 1, "Aborted!")
    assert "stopped (Ctrl-C or SIGTERM)" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # nothing beside the project
    with Project.open(scored_project, create=False).store() as store:
        assert store.exports() == []
