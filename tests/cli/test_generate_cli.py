"""`studio generate`, `studio plan ...` and `studio pages ...` as a curator or a script calls them,
with the tiny random-weight GGUF as the teacher."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.teachers.config import close_teachers
from tests.fixtures.teacher_proxy import TeacherProxy


@pytest.fixture(autouse=True)
def _fresh_teachers():
    yield
    close_teachers()


def run(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output
        if code == 2:  # a usage error: click's usage line, then the one line that explains
            assert result.output.startswith("Usage: ") and "\nError: " in result.output
        else:
            assert result.output.startswith("Error: ")
            assert result.output.count("\n") == 1, result.output  # one line
    return result.output


ONE_CELL = ["--subject", "History", "--audience", "college", "--style", "worked example"]


def test_generate_resume_and_read_the_record(tmp_path: Path, tiny_gguf: Path) -> None:
    p = str(tmp_path / "p")
    teacher = f"local:{tiny_gguf}"
    report = json.loads(
        run(
            "generate",
            p,
            "--n",
            "2",
            "--rounds",
            "2",
            "--teacher",
            teacher,
            "--max-tokens",
            "32",
            "--seed",
            "3",
            *ONE_CELL,
            "--json",
        )  # fmt: skip
    )
    assert (report["status"], report["pages"], report["rejected"]) == ("done", 4, 4)
    assert set(report["by_round"]) == {"1", "2"} and report["completion_tokens"] > 0
    assert "no unfinished batch" in run("generate", p, "--resume", code=1)

    listed = json.loads(run("pages", "list", p, "--json"))
    assert len(listed) == 4 and all(r["status"] == "rejected" and r["reasons"] for r in listed)
    assert "rejected" in run("pages", "list", p, "--status", "rejected")
    page_id = str(listed[0]["id"])
    shown = json.loads(run("pages", "show", p, page_id, "--json"))
    assert [v["label"] for v in shown["versions"]][:2] == ["draft 1", "critique of draft 1"]
    assert "== draft 1" in run("pages", "show", p, page_id)

    # a curator takes the page anyway, fixes it, then changes their mind
    fixed = tmp_path / "fixed.md"
    fixed.write_text("# Fixed\n\nA page the curator wrote over the draft.\n", "utf-8")
    assert "saved as version" in run("pages", "edit", p, page_id, str(fixed))
    assert "accepted: document" in run("pages", "accept", p, page_id)
    info = json.loads(run("info", p, "--json"))
    assert info["by_kind"] == {"synthetic": 1}
    run("pages", "reject", p, page_id, "--reason", "too short")
    run("pages", "reject", p, page_id, "--reason", "wrong \u202eformula")
    again = json.loads(run("pages", "show", p, page_id, "--json"))
    assert again["status"] == "rejected" and again["reasons"][0].endswith("formula")
    # each decision keeps its own reason, for the record; a terminal sees hidden characters
    decisions = [v["data"] for v in again["versions"] if v["kind"] == "decision"]
    assert [d["status"] for d in decisions] == ["accepted", "rejected", "rejected"]
    assert decisions[1]["reasons"][0].endswith("too short")
    shown = run("pages", "show", p, page_id)
    assert "too short" in shown and "wrong \\u202eformula" in shown
    assert "no pages with these filters" in run("pages", "list", p, "--status", "failed")
    assert "no generated page 999" in run("pages", "accept", p, "999", code=1)
    assert "empty" in run("pages", "edit", p, page_id, "-", stdin="  \n", code=1)


def test_plan_commands(tmp_path: Path, tiny_gguf: Path) -> None:
    p = str(tmp_path / "p")
    run("init", p)
    shown = json.loads(run("plan", "show", p, "--json"))
    assert shown["cells"] == 162 * 5 * 5 * 3 and shown["covered"] == 0
    shown_text = run("plan", "show", p)
    assert "Mathematics" in shown_text and shown_text.splitlines()[1].endswith("failed  pending")
    by_style = json.loads(run("plan", "show", p, "--by", "style", "--json"))
    assert len(by_style["groups"]) == 5

    outline = tmp_path / "music.md"
    outline.write_text("# Music\n## Harmony\n- Chords\n- Cadences\n", "utf-8")
    imported = json.loads(run("plan", "import", p, str(outline), "--json"))
    assert imported["added"] == 2
    assert "added as" in run("plan", "add", p, "Music / Harmony / Modulation")
    assert "already in the plan" in run("plan", "add", p, "Music / Harmony / Modulation")
    topics = json.loads(run("plan", "topics", p, "--json"))
    music = [t["id"] for t in topics if t["subject"] == "Music"]
    assert len(music) == 3
    assert "removed 1" in run("plan", "remove", p, str(music[0]))

    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"subjects": [')
    assert "not valid JSON" in run("plan", "import", p, str(broken), code=1)
    assert "Subject / Topic / Subtopic" in run("plan", "add", p, "just one", code=1)
    # proposals come as JSON of the asked form, or not at all: a reply is never guessed at
    proxy = TeacherProxy("http://127.0.0.1:9/v1")  # every reply canned: no server behind it
    try:
        remote = ["--teacher", f"openai:{proxy.url}", "--model", "tiny"]
        proxy.replies.extend(["Sure! Chords, cadences.", "[Modulation, Voice leading]", "{}"])
        out = run("plan", "propose", p, "Music / Harmony", *remote, code=1)
        assert "not a JSON list after 3 tries" in out
        proxy.replies.append('{"subtopics": ["Modulation", "Voice leading"]}')
        held = json.loads(run("plan", "propose", p, "Music / Harmony", *remote, "--json"))
        # Modulation is in the plan already: only the new name waits for review
        assert [(s["subtopic"], s["status"]) for s in held] == [("Voice leading", "proposed")]
    finally:
        proxy.close()
    assert "no topic Music / Nothing" in run(
        "plan", "propose", p, "Music / Nothing", "--teacher", f"local:{tiny_gguf}", code=1
    )
    assert "no subtopic 99999" in run("plan", "review", p, "--accept", "99999", code=1)
    assert "nothing to review: give --accept ID or --reject ID" in run("plan", "review", p, code=2)
    assert "not in the range" in run("plan", "review", p, "--accept", str(2**63), code=2)
    assert "no subtopic 99999" in run("plan", "remove", p, "99999", code=1)
    planned = str(topics[0]["id"])  # shipped and active: not a proposal to review
    assert "is not proposed" in run("plan", "review", p, "--reject", planned, code=1)
    assert "both accepted and rejected" in run(
        "plan", "review", p, "--accept", planned, "--reject", planned, code=1
    )
    after = json.loads(run("plan", "topics", p, "--json"))
    assert after == [t for t in topics if t["id"] != music[0]]  # nothing else changed


@pytest.fixture
def one_page(tmp_path: Path) -> tuple[str, str]:
    """A project with one written page (no teacher needed): (project, page id)."""
    from studio.generate import record
    from studio.project import Project
    from tests.core.test_generate import _one_page

    project = Project.open(tmp_path / "p")
    with project.store() as store:
        page_id = _one_page(store)
        assert record.page(store, page_id).text
    return str(project.root), str(page_id)


def _versions(p: str, page_id: str) -> list[dict]:
    return json.loads(run("pages", "show", p, page_id, "--json"))["versions"]


def test_pages_edit_refuses_what_it_cannot_store_whole(one_page, tmp_path: Path) -> None:
    """Over the limit, not UTF-8, or no such page: one line, and nothing stored."""
    p, page_id = one_page
    before = _versions(p, page_id)
    long_edit, huge, binary = tmp_path / "long.md", tmp_path / "huge.md", tmp_path / "bin.txt"
    long_edit.write_text("# Long\n\n" + "A paragraph of the page.\n\n" * 20_000, "utf-8")
    huge.write_text("# Huge\n\n" + "A paragraph of the page.\n\n" * 120_000, "utf-8")
    binary.write_bytes(bytes(range(128, 256)) * 80)
    out = run("pages", "edit", p, page_id, str(long_edit), code=1)  # ~500k: once clipped
    assert "over the 400,000 a page holds" in out
    out = run("pages", "edit", p, page_id, str(huge), code=1)  # ~3M: once cut at 2M, then 400k
    assert "longer than the 400,000 characters" in out
    assert "bin.txt is not UTF-8 text" in run("pages", "edit", p, page_id, str(binary), code=1)
    assert "not UTF-8" in run("pages", "edit", p, "999", str(binary), code=1)
    os.mkfifo(tmp_path / "pipe.md")  # opening it would wait for a writer
    assert "pipe.md is not a regular file" in run(
        "pages", "edit", p, page_id, str(tmp_path / "pipe.md"), code=1
    )
    assert _versions(p, page_id) == before


def test_page_ids_sqlite_cannot_hold_name_no_page(one_page) -> None:
    p, _ = one_page
    big = "99999999999999999999999"
    for command in ("show", "accept", "reject"):
        assert f"no generated page {big}" in run("pages", command, p, big, code=1)
    result = CliRunner().invoke(cli, ["pages", "list", p, "--batch", big])
    assert result.exit_code == 2 and "Invalid value" in result.output


def test_errors_are_one_line_messages(tmp_path: Path, tiny_gguf: Path) -> None:
    p = str(tmp_path / "p")
    assert "no model file" in run("generate", p, "--teacher", f"local:{tmp_path}/none.gguf", code=1)
    assert "local:PATH.gguf or openai:URL" in run("generate", p, "--teacher", "ftp:x", code=1)
    assert "needs a model name" in run(
        "generate", p, "--teacher", "openai:http://127.0.0.1:9", code=1
    )
    assert "unknown style 'limerick'" in run(
        "generate", p, "--teacher", f"local:{tiny_gguf}", "--style", "limerick", code=1
    )
    not_a_model = tmp_path / "page.gguf"
    not_a_model.write_text("<html><body>a page</body></html>")
    assert "page.gguf is not a GGUF model file" in run(
        "bench", "generate", "--model", str(not_a_model), "--pages", "1", code=1
    )


@pytest.mark.slow  # ~10 s: the loop, llama-cpp-python, then a server run twice
def test_bench_generate_with_pages_side_by_side(tiny_gguf: Path) -> None:
    out = run("bench", "generate", "--model", str(tiny_gguf), "--pages", "2", "--max-tokens",
              "32", "--concurrency", "2", "--json")  # fmt: skip
    result = json.loads(out)
    assert result["studio"]["calls"] == result["reference"]["calls"]
    rows = result["parallel"]["rows"]
    assert [r["concurrency"] for r in rows] == [1, 2]
    assert [r["peak_pages_in_flight"] for r in rows] == [1, 2]
    assert all(r["accepted"] + r["rejected"] + r["failed"] == 2 for r in rows)
    assert result["parallel"]["speedup"] > 0


def test_generate_exits_1_when_the_teacher_failed_on_a_page(tmp_path: Path) -> None:
    p = str(tmp_path / "p")
    proxy = TeacherProxy("http://127.0.0.1:9/v1")  # every reply canned: no server behind it
    try:
        proxy.faults.extend(["401"] * 20)  # the key is refused on every call
        remote = ["--teacher", f"openai:{proxy.url}", "--model", "tiny"]
        result = CliRunner().invoke(cli, ["generate", p, "--n", "1", *remote])
    finally:
        proxy.close()
    assert result.exit_code == 1, result.output
    assert "0 accepted, 0 rejected, 1 failed of 1 pages" in result.output
    assert "Traceback" not in result.output


def test_resuming_a_batch_whose_settings_are_damaged_is_one_line(tmp_path: Path) -> None:
    from studio.generate import record
    from studio.project import Project

    project = Project.open(tmp_path / "p")
    with project.store() as store:
        bad = record.create_batch(store, {"pages": 1})
        store.conn.execute("UPDATE gen_batches SET config = '{not json' WHERE id = ?", (bad,))
    out = run("generate", str(project.root), "--resume", code=1)
    assert f"batch {bad} cannot be resumed" in out and "start a new batch" in out


@pytest.mark.parametrize("stored", ["[1, 2]", "{oops", '"x"', "[" * 100_000])
def test_damaged_plan_dimensions_end_a_command_in_one_line(tmp_path: Path, stored: str) -> None:
    """The audiences, styles and difficulties are stored in the project database: damaged
    there, `plan show` ended in a traceback (AttributeError, JSONDecodeError, RecursionError)."""
    import sqlite3
    import subprocess
    import sys

    p = tmp_path / "p"
    run("plan", "show", str(p.parent / "p"), code=2)  # not a project yet: made below
    run("init", str(p))
    run("plan", "show", str(p))  # stores the shipped dimensions
    with sqlite3.connect(p / "studio.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'generate.dimensions'", (stored,))
    out = subprocess.run(
        [sys.executable, "-m", "studio", "plan", "show", str(p)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "audiences, styles and difficulties stored in the project are damaged" in out.stderr
    assert "studio plan import" in out.stderr
