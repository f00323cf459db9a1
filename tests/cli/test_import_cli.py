"""`studio import` on hostile input and options: clear errors, and an exit status to trust."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e-9", "1e308"])
def test_a_document_limit_that_is_no_size_is_a_usage_error(tmp_path: Path, value: str) -> None:
    page = write(tmp_path / "x.txt", b"a page")
    out = run("import", str(tmp_path / "p"), page, "--max-document-mb", value, code=2)
    assert "--max-document-mb" in out and "positive number of MiB" in out


def test_a_lone_surrogate_escape_loses_no_record(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", b'{"text": "fine page"}\n{"text": "bad \\ud800 x"}\n')
    out = run("import", str(tmp_path / "p"), path)
    assert "s.jsonl: imported 2, skipped 0 duplicates" in out


def test_a_file_name_that_is_not_utf8_is_reported_and_imported(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    write(folder / "ok.txt", b"hello")
    write(folder / os.fsdecode(b"bad\xffname.txt"), b"hello from a badly named file")
    report = json.loads(run("import", str(tmp_path / "p"), str(folder), "--json"))
    assert [Path(f["path"]).name for f in report["files"]] == ["bad\\xffname.txt", "ok.txt"]
    assert report["imported"] == 2
    info = json.loads(run("info", str(tmp_path / "p"), "--json"))
    assert {r["status"] for r in info["import_log"]} == {"imported"}


def test_exit_status_when_every_record_or_some_records_fail(tmp_path: Path) -> None:
    p = str(tmp_path / "p")
    lines = "".join(json.dumps({"text": f"Lesson {i}. " * 10}) + "\n" for i in range(100))
    good = write(tmp_path / "good.jsonl.gz", gzip.compress(lines.encode()))
    out = run("import", p, good, "--text-field", "nope", code=1)
    assert "good.jsonl.gz: failed: nothing could be imported: all 100 records failed" in out
    assert "1 files failed" in out
    # some good records, some bad: imported, and the bad ones still fail the command
    mixed = write(tmp_path / "mixed.jsonl", b'{"text": "one good page"}\n{"title": "no text"}\n')
    out = run("import", p, mixed, code=1)
    assert "mixed.jsonl: imported 1, skipped 0 duplicates, 1 records failed" in out
    assert "0 files failed, 1 records failed" in out
    # exact duplicates are no failure, and the first file now imports with the right field
    copy = write(tmp_path / "copy.jsonl", b'{"text": "one good page"}\n')
    out = run("import", p, copy, good)
    assert "copy.jsonl: imported 0, skipped 1 duplicates" in out
    assert "good.jsonl.gz: imported 100" in out


def test_the_failed_records_left_unlisted_are_counted(tmp_path: Path) -> None:
    broken = write(tmp_path / "b.jsonl", b'{"text": "one good page"}\n' + b"{broken\n" * 8)
    out = run("import", str(tmp_path / "p"), broken, code=1)
    assert out.count("invalid JSON") == 5 and "… and 3 more failed records" in out


def test_an_import_killed_outright_reads_interrupted_and_a_rerun_finishes_it(
    tmp_path: Path,
) -> None:
    p = tmp_path / "p"
    small = write(tmp_path / "a.jsonl", b'{"text": "A first lesson."}\n{"text": "A second."}\n')
    lines = "".join(
        json.dumps({"text": f"Lesson {i} on fractions. " * 8}) + "\n" for i in range(60_000)
    )
    big = write(tmp_path / "b.jsonl", lines.encode())
    run("init", str(p))
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "import", str(p), small, big],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = sqlite3.connect(f"file:{p / 'studio.db'}?mode=ro", uri=True, timeout=30)
    reading_big = "SELECT COUNT(*) FROM sources WHERE status = 'running' AND path LIKE '%b.jsonl'"
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if db.execute(reading_big).fetchone()[0]:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        stored = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    finally:
        db.close()
    assert stored == 2  # the first file, whole; nothing of the one being read

    info = json.loads(run("info", str(p), "--json"))
    assert [(r["status"], r["imported"]) for r in info["import_log"]] == [
        ("imported", 2),
        ("interrupted", 0),
    ]
    assert info["files"] == {"imported": 1, "interrupted": 1}  # counted as the log reads
    reason = info["import_log"][1]["reason"]
    assert "killed, crashed" in reason and "importing it again reads it whole" in reason
    assert "interrupted" in run("info", str(p))

    # importing both again: the first is skipped as already imported, the second read whole
    report = json.loads(run("import", str(p), small, big, "--json"))
    assert [f["status"] for f in report["files"]] == ["skipped", "imported"]
    assert report["files"][1]["imported"] == 60_000
    assert json.loads(run("info", str(p), "--json"))["documents"] == 60_002


def test_a_running_import_of_a_live_process_still_reads_running(tmp_path: Path) -> None:
    from studio.project import Project

    store = Project.open(tmp_path / "p").store()
    try:
        import_id = store.begin_import()
        store.add_source(import_id, "/data/x.jsonl", 10, 0.0, "jsonl")
        assert [r["status"] for r in store.import_log()] == ["running"]  # this very process
        store.conn.execute("UPDATE imports SET pid = NULL")  # from a studio before pids
        assert [r["status"] for r in store.import_log()] == ["interrupted"]
        store.conn.execute("UPDATE imports SET pid = 1, host = 'another-machine'")
        assert [r["status"] for r in store.import_log()] == ["running"]  # cannot be asked
    finally:
        store.close()
