"""The command line, as a curator or a script would call it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.main import main as _main  # noqa: F401  (the entry point must import)
from tests.fixtures.corpus import write_mixed_corpus
from tests.fixtures.hostile import write_hostile_files

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample" / "photosynthesis.html"


def full_cli() -> click.Group:
    from studio.ui.commands import register

    register(cli)
    return cli


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(full_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _walk(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield prefix + name, command
        if isinstance(command, click.Group):
            yield from _walk(command, prefix + name + " ")


def test_every_command_has_help_with_an_example() -> None:
    commands = dict(_walk(full_cli()))
    for required in (
        "labels import",
        "labels export",
        "labels agreement",
        "demo",
        "init",
        "import",
        "info",
        "segment",
        "extract",
        "gui",
        "bench segment",
        "bench ui",
    ):
        assert required in commands, f"`studio {required}` is missing"
    for name, command in commands.items():
        assert command.help, f"`studio {name}` has no help"
        if not isinstance(command, click.Group):
            assert "Example:" in command.help, f"`studio {name}` help has no example"
    listing = run("--help").output
    for name in ("import", "info", "segment", "extract", "gui", "bench"):
        assert name in listing


def test_import_then_info(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_mixed_corpus(corpus)
    out = run("import", str(tmp_path / "p"), str(corpus), "--json").output
    report = json.loads(out)
    assert report["imported"] >= 10 and report["failed_files"] == 0
    assert all(f["status"] == "imported" for f in report["files"])
    info = json.loads(run("info", str(tmp_path / "p"), "--json").output)
    assert info["documents"] == report["imported"]
    assert set(info["by_kind"]) == {"html", "text"}
    assert 0 < info["signal_share"] < 1
    assert len(info["import_log"]) == len(report["files"])
    # importing the same files again is resumable: every file is recognised and skipped
    again = json.loads(run("import", str(tmp_path / "p"), str(corpus), "--json").output)
    assert again["imported"] == 0
    assert {f["status"] for f in again["files"]} == {"skipped"}
    text = run("info", str(tmp_path / "p")).output
    assert "signal" in text and "import log" in text


def test_a_failed_file_fails_the_command_after_the_others_are_imported(tmp_path: Path) -> None:
    hostile = write_hostile_files(tmp_path / "bad")
    result = run(
        "import", str(tmp_path / "p"), str(SAMPLE), *map(str, hostile.values()), "--json", code=1
    )
    report = json.loads(result.output)
    first = report["files"][0]
    assert first["status"] == "imported" and first["imported"] == 1
    failed = [f for f in report["files"] if f["status"] == "failed"]
    assert failed and all(f["reason"] for f in failed)


def test_segment_and_extract() -> None:
    blocks = json.loads(run("segment", str(SAMPLE), "--json").output)
    assert {b["label"] for b in blocks} == {"signal", "boilerplate"}
    assert all(b["locator"] and b["features"] and 0.5 <= b["confidence"] <= 1 for b in blocks)
    text = run("extract", str(SAMPLE)).output
    assert "Calvin cycle" in text and "Accept all cookies" not in text
    assert "SIGNAL" in run("segment", str(SAMPLE)).output


def test_segment_reports_a_binary_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "x.html"
    bad.write_bytes(bytes(range(256)) * 50)
    result = CliRunner().invoke(full_cli(), ["segment", str(bad)])
    assert result.exit_code != 0 and "Error:" in result.output and "Traceback" not in result.output


def test_extract_keeps_a_utf8_page_with_a_stray_byte_utf8(tmp_path: Path) -> None:
    page = SAMPLE.read_bytes().replace(b"Calvin cycle", "Calvin cycle (café)".encode(), 1)
    (tmp_path / "stray.html").write_bytes(page.replace(b"</body>", b"<p>x\xffy</p></body>"))
    text = run("extract", str(tmp_path / "stray.html")).output
    assert "Calvin cycle (café)" in text and "Ã" not in text


def test_segment_and_extract_refuse_a_pipe_rather_than_wait_on_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "page.html")
    for command in ("segment", "extract"):
        result = run(command, str(tmp_path / "page.html"), code=1)
        assert "is not a regular file (a device, pipe or folder)" in result.output


def test_bench_segment_refuses_more_folds_than_pages_or_domains(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "html").mkdir()
    (tmp_path / "ground-truth").mkdir()
    for i, host in enumerate(["a.org", "a.org", "b.org"]):
        (tmp_path / "html" / f"{i:04}.html.gz").write_bytes(gzip.compress(SAMPLE.read_bytes()))
        truth = {"url": f"https://{host}/{i}", "ground_truth": {"main_content": "Calvin cycle"}}
        (tmp_path / "ground-truth" / f"{i:04}.json").write_text(json.dumps(truth))
    corpus = ["bench", "segment", "--corpus", str(tmp_path)]
    assert (
        "99 folds need at least 99 pages; 3 are measured"
        in run(*corpus, "--cv", "99", code=1).output
    )
    out = run(*corpus, "--cv", "3", code=1).output  # two domains: one fold would be empty
    assert "3 folds need pages of at least 3 domains; these have 2" in out


def test_bench_ui_and_label_refuse_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a curator's own file")
    out = run("bench", "ui", "--docs", "10", "--project", str(tmp_path), code=1).output
    assert "holds files and is not a studio project" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written there
    out = run("bench", "label", str(tmp_path), code=1).output
    assert "is not a Textbook Studio project (no studio.db)" in out


@pytest.mark.parametrize("command", [["info"], ["score"], ["labels", "export"], ["runs"]])
def test_a_project_argument_that_is_no_folder_is_said_plainly(tmp_path: Path, command) -> None:
    """click said "Directory '/etc/passwd' is a file" and "Directory '' does not exist"."""
    (tmp_path / "notes.txt").write_text("a curator's own file")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    extra = ["out.csv"] if command == ["labels", "export"] else []
    cases = {
        str(tmp_path / "notes.txt"): "notes.txt is a file, not a project folder",
        str(tmp_path / "missing"): "no project folder at " + str(tmp_path / "missing"),
        str(tmp_path / "gone"): "no project folder at " + str(tmp_path / "gone"),
        "": "no project folder given (the path is empty)",
    }
    for path, said in cases.items():
        out = run(*command, path, *extra, code=2).output
        assert said in out and "Directory" not in out, out
    assert not (tmp_path / "missing").exists()
    (tmp_path / "new\nline").mkdir()  # a folder, but no project: said on one line
    out = run(*command, str(tmp_path / "new\nline"), *extra, code=1).output
    assert "new\\nline is not a Textbook Studio project (no studio.db)" in out


def test_a_project_to_be_made_that_is_a_file_is_said_plainly(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a curator's own file")
    for command in (["import"], ["init"], ["demo"]):
        extra = [str(tmp_path / "notes.txt")] if command == ["import"] else []
        out = run(*command, str(tmp_path / "notes.txt"), *extra, code=2).output
        assert "notes.txt is a file, not a project folder" in out and "Directory" not in out
    assert (tmp_path / "notes.txt").read_text() == "a curator's own file"


def test_init_refuses_an_empty_path_a_stale_link_and_a_name_too_long(tmp_path: Path) -> None:
    assert "no project folder given (the path is empty)" in run("init", "", code=2).output
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "a.txt").write_text("a curator's own notes")
    said = run("init", str(tmp_path / "lessons")).output
    assert "note: the folder already held 1 other entry, left as they are" in said
    assert (tmp_path / "lessons" / "a.txt").read_text() == "a curator's own notes"
    assert "note:" not in run("init", str(tmp_path / "lessons")).output  # a project now
    (tmp_path / "stale").symlink_to(tmp_path / "gone" / "target")
    out = run("init", str(tmp_path / "stale"), code=1).output
    assert "is a link to" in out and "which does not exist" in out
    assert not (tmp_path / "gone").exists()  # nothing made where the link points
    out = run("init", str(tmp_path / ("L" * 300) / "sub"), code=1).output
    assert "cannot open a project at" in out and "a folder name is at most 255 bytes" in out
    (tmp_path / "up").symlink_to(tmp_path / "nowhere")
    assert "which does not exist" in run("init", str(tmp_path / "up" / "sub"), code=1).output
    assert "Traceback" not in out
    (tmp_path / "ping").symlink_to(tmp_path / "pong")  # said to lead nowhere, though pong was
    (tmp_path / "pong").symlink_to(tmp_path / "ping")
    out = run("import", str(tmp_path / "ping"), str(tmp_path / "lessons"), code=1).output
    assert "is a link in a loop of links" in out
    # nothing was made on the way: not the long name's parent, not a stale link's target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lessons", "ping", "pong", "stale", "up"]


def test_info_on_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    result = CliRunner().invoke(full_cli(), ["info", str(tmp_path)])
    assert result.exit_code != 0 and "not a Textbook Studio project" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dedup", "{p}", "--seed", "-5"], "'--seed': -5 is not in the range"),
        (["dedup", "{p}", "--seed", str(10**23)], "is not in the range"),
        (["bench", "segment", "--cv", "-3", "--limit", "5"], "'--cv': -3 is not in the range"),
        (["bench", "segment", "--cv", "1", "--limit", "5"], "at least 2 folds"),
        (["bench", "label", "{p}", "--pages", "0"], "'--pages': 0 is not in the range"),
        (["bench", "classify", "{p}", "--limit", "-5"], "'--limit': -5 is not in the range"),
        (["dedup", "{p}", "--keep", str(10**20)], "'--keep': 100000000000000000000 is not in"),
        (["classifier", "explain", "{p}", str(10**20)], "'DOC_ID': 100000000000000000000 is"),
        (["classifier", "explain", "{p}", "abc"], "'DOC_ID': 'abc' is not a valid integer."),
        (["bench", "ui", "--docs", "0"], "'--docs': 0 is not in the range"),
        (["labels", "teacher", "{p}", "--seed", "-1"], "'--seed': -1 is not in the range"),
        (
            ["classifier", "explain", "{p}", "1", "--model", "\u202ev2"],
            "\\u202ev2 is not a version",
        ),
        (["labels", "import", "{p}", "/dev/null", "--annotator", ""], "annotator needs a name"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path: Path, args: list[str], message: str):
    project = tmp_path / "p"
    run("import", str(project), str(SAMPLE))
    result = run(*[a.format(p=project) for a in args], code=2)
    assert message in result.output and "Traceback" not in result.output


def test_a_damaged_database_is_reported_not_raised(tmp_path: Path) -> None:
    project = tmp_path / "p"
    run("import", str(project), str(SAMPLE))
    (project / "studio.db").write_bytes(b"\0" * 50_000)
    result = CliRunner().invoke(full_cli(), ["info", str(project)])
    assert result.exit_code == 1
    assert "is damaged or is not a Textbook Studio database" in result.output


def test_a_database_cut_to_nothing_is_not_opened_as_a_new_project(tmp_path: Path) -> None:
    project = tmp_path / "p"
    run("import", str(project), str(SAMPLE))
    kept = project / "models" / "classifier" / "0001-hand-ridge" / "meta.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    (project / "studio.db").write_bytes(b"")
    for args in (["info", str(project)], ["import", str(project), str(SAMPLE)]):
        result = CliRunner().invoke(full_cli(), args)
        assert result.exit_code == 1, result.output
        assert "is empty (0 bytes), but the project holds models/classifier/" in result.output
    assert (project / "studio.db").stat().st_size == 0
    kept.unlink()  # only empty folders left: a new project's, as another studio creates it
    assert json.loads(run("info", str(project), "--json").output)["documents"] == 0
    text = run("info", str(project)).output
    assert "nothing imported yet" in text and "kind:" not in text


def test_a_project_on_read_only_media_is_read_and_never_written(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A project on a read-only mount (no WAL shared-memory file can be made there): opened
    immutable, it lists and shows as any project (the plan seeded in memory), and a command
    that writes says so in one line. The mount is simulated: the file system's read-only flag
    is what the studio reads, and mounting needs privileges a test may not have."""
    import studio.store

    project = tmp_path / "p"
    run("import", str(project), str(SAMPLE))
    before = (project / "studio.db").read_bytes()
    monkeypatch.setattr(studio.store, "on_read_only_media", lambda path: True)
    assert json.loads(run("info", str(project), "--json").output)["documents"] == 1
    plan = json.loads(run("plan", "show", str(project), "--json").output)
    assert plan["cells"] > 1000  # the shipped plan, which this project never wrote down
    from studio.cli import run_cli

    monkeypatch.setattr(sys, "argv", ["studio", "import", str(project), str(SAMPLE)])
    with pytest.raises(SystemExit) as ended:  # as the installed command runs
        run_cli(full_cli())
    err = capsys.readouterr().err
    assert ended.value.code == 1 and "the project database is read-only" in err
    assert err.count("\n") == 1
    assert (project / "studio.db").read_bytes() == before


def test_another_programs_database_is_left_as_it_was(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    con = sqlite3.connect(project / "studio.db")
    con.execute("CREATE TABLE documents (body TEXT)")
    con.execute("INSERT INTO documents VALUES ('their data')")
    con.commit()
    con.close()
    before = (project / "studio.db").read_bytes()
    for args in (["info", str(project)], ["import", str(project), str(SAMPLE)]):
        result = CliRunner().invoke(full_cli(), args)
        assert result.exit_code == 1
        assert "is a SQLite database of another program (tables: documents)" in result.output
        assert "nothing was changed" in result.output
    assert (project / "studio.db").read_bytes() == before
    (project / "studio.db").unlink()
    (project / "studio.db").mkdir()  # a folder where the database belongs
    result = CliRunner().invoke(full_cli(), ["info", str(project)])
    assert result.exit_code == 1 and "studio.db is not a file" in result.output


def _env() -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen")


@pytest.mark.slow
def test_self_test_runs_the_real_studio(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "gui", str(tmp_path / "p"), "--self-test"],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "self-test: ok" in proc.stdout


def test_the_studio_says_why_a_damaged_project_does_not_open(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "studio.db").write_bytes(b"\x13" * 5000)
    for args in (["gui", str(tmp_path / "p")], ["gui", str(tmp_path / "p"), "--self-test"]):
        proc = subprocess.run(
            [sys.executable, "-m", "studio", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
        assert (
            "studio.db is damaged or is not a Textbook Studio database" in proc.stdout + proc.stderr
        )
    assert (tmp_path / "p" / "studio.db").read_bytes() == b"\x13" * 5000


def test_the_core_and_cli_run_without_qt(tmp_path: Path) -> None:
    """What a headless server has: no PySide6 at all. Every core module imports and the CLI
    imports a page."""
    script = f"""
import sys, importlib, pkgutil
class NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'):
            raise ImportError('no Qt on this machine')
sys.meta_path.insert(0, NoQt())
import studio
for m in pkgutil.walk_packages(studio.__path__, 'studio.'):
    if not m.name.startswith(('studio.ui', 'studio.main')) and m.name != 'studio.__main__':
        importlib.import_module(m.name)
from studio.cli import cli
cli(['import', {str(tmp_path / "p")!r}, {str(SAMPLE)!r}], standalone_mode=False)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "imported 1" in proc.stdout


def _sqlite_error(tmp_path: Path, kind: str) -> Exception:
    """The error SQLite itself raises for a database that is busy, read-only or damaged."""
    import sqlite3

    db = tmp_path / f"{kind}.db"
    sqlite3.connect(db, isolation_level=None).execute("CREATE TABLE t(x)")
    if kind == "damaged":
        db.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4096)
        con = sqlite3.connect(db)
        statement = "SELECT * FROM t"
    elif kind == "busy":
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        con = sqlite3.connect(db, timeout=0)
        statement = "INSERT INTO t VALUES (1)"
    else:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
        statement = "INSERT INTO t VALUES (1)"
    try:
        con.execute(statement)
    except sqlite3.DatabaseError as exc:
        return exc
    raise AssertionError(f"SQLite took {statement!r} on a {kind} database")


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("damaged", "is damaged or is not a Textbook Studio database"),
        ("busy", "is busy: another studio or command has been writing to it"),
        ("readonly", "is read-only"),
    ],
)
def test_a_database_failing_half_way_ends_the_command_in_one_line(
    monkeypatch, capsys, tmp_path: Path, kind: str, said: str
) -> None:
    """Opening a project reads its first pages; damage further in surfaces mid-command. A
    busy or read-only database is healthy and is not called damaged."""
    from studio.cli import run_cli

    error = _sqlite_error(tmp_path, kind)

    @click.command()
    def dedup_like() -> None:
        raise error

    monkeypatch.setattr(sys, "argv", ["studio"])
    with pytest.raises(SystemExit) as ended:
        run_cli(dedup_like)
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err and str(error) in err
    assert ("Restore it from a backup" in err) == (kind == "damaged")


@pytest.mark.parametrize(
    "args",
    [
        ["export", "{p}", "{p}/out", "--min-score", "nan"],
        ["classifier", "train", "{p}", "--threshold", "NaN"],
        ["dedup", "{p}", "--threshold", "nan"],
        ["train", "{p}", "--run", "r", "--lr", "inf"],
        ["generate", "{p}", "--temperature", "nan"],
    ],
)
def test_a_number_option_refuses_nan_and_inf(tmp_path: Path, args: list[str]) -> None:
    """click's ranges let nan through (every comparison with it is false): an export kept
    nothing and wrote "threshold": NaN into its manifest, with exit status 0."""
    p = tmp_path / "p"
    p.mkdir()
    result = CliRunner().invoke(cli, [a.format(p=p) for a in args])
    assert result.exit_code == 2, result.output
    assert "is not a finite number" in result.output or "is not in the range" in result.output
    assert not (p / "out").exists() and not (p / "studio.db").exists()


def test_a_language_code_is_read_in_any_case_and_an_unknown_one_refused(tmp_path: Path) -> None:
    """`--lang EN` and `--lang xx` once showed a funnel that kept nothing, with exit status 0."""
    p = tmp_path / "p"
    write_mixed_corpus(tmp_path / "corpus")
    assert CliRunner().invoke(cli, ["import", str(p), str(tmp_path / "corpus")]).exit_code in (0, 1)
    lower = CliRunner().invoke(cli, ["funnel", str(p), "--lang", "en", "--json"])
    upper = CliRunner().invoke(cli, ["funnel", str(p), "--lang", " EN ", "--json"])
    assert lower.exit_code == upper.exit_code == 0 and lower.output == upper.output
    assert json.loads(lower.output)["stages"][-1]["documents"] > 0
    for code in ("xx", "", "english", "e\u202en", "x" * 100_000):
        refused = CliRunner().invoke(cli, ["funnel", str(p), "--lang", code])
        assert refused.exit_code == 2 and "is not a language code" in refused.output
        assert len(refused.output) < 600 and "\u202e" not in refused.output


@pytest.mark.parametrize(
    "command", [["score", "{p}"], ["funnel", "{p}"], ["export", "{p}", "{p}/o"]]
)
def test_an_empty_version_name_is_refused(tmp_path: Path, command: list[str]) -> None:
    """An empty --model (a shell variable left unset) once meant the latest version."""
    p = tmp_path / "p"
    p.mkdir()
    result = CliRunner().invoke(cli, [*(a.format(p=p) for a in command), "--model", ""])
    assert result.exit_code == 2 and "not an empty string" in result.output


def test_sigterm_mid_import_rolls_the_file_back_and_exits_130(tmp_path: Path) -> None:
    """A stopped import printed 'Aborted!' and exited 1, as a failure would."""
    import signal

    project = tmp_path / "p"
    run("import", str(project), str(SAMPLE))
    lines = (
        json.dumps({"text": f"Lesson {i}: the tides rise and fall twice a day."})
        for i in range(200_000)
    )
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    child = subprocess.Popen(
        [sys.executable, "-m", "studio", "import", str(project), str(tmp_path / "big.jsonl")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    db = sqlite3.connect(f"file:{project / 'studio.db'}?mode=ro", uri=True)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:  # until the big file is begun
        if db.execute("SELECT count(*) FROM sources WHERE path LIKE '%big.jsonl'").fetchone()[0]:
            break
        time.sleep(0.05)
    db.close()
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "stopped (Ctrl-C or SIGTERM)" in err and "Traceback" not in err
    assert json.loads(run("info", str(project), "--json").output)["documents"] == 1


def test_json_nested_100000_deep_is_refused_with_a_reason(tmp_path: Path) -> None:
    """json.loads runs out of stack on 100,000 nested brackets (RecursionError): a label file,
    a recipe and the teacher settings ended in a traceback."""
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    project = tmp_path / "p"
    run("init", str(project))
    (tmp_path / "labels.jsonl").write_text(deep + "\n")
    out = run("labels", "import", str(project), str(tmp_path / "labels.jsonl"), code=1).output
    assert "line 1: invalid JSON (nested too deeply to read)" in out
    (project / "recipes").mkdir()
    (project / "recipes" / "deep.json").write_text(deep)
    out = run("recipe", "show", str(project), "deep", code=1).output
    assert "recipe deep.json is nested too deeply to read" in out
    (project / "teacher.json").write_text(deep)
    out = run("teacher", "show", "--project", str(project), code=1).output
    assert "teacher.json are nested too deeply" in out


def test_a_path_under_an_unknown_users_home_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~name`` for a user this machine lacks made Path.expanduser raise RuntimeError (a
    traceback); like the shell, the studio now leaves it as written and says what is missing."""
    monkeypatch.chdir(tmp_path)
    project = str(tmp_path / "p")
    run("init", project)
    out = run("decontam", project, "--benchmark", "~nosuchuser-of-the-studio/b.jsonl", code=1)
    assert "~nosuchuser-of-the-studio/b.jsonl: neither a shipped benchmark" in out.output
    out = run(
        "teacher", "use", "local:~nosuchuser-of-the-studio/m.gguf", "--project", project, code=1
    )
    assert "m.gguf" in out.output
