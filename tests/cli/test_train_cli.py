"""``studio train``, ``compare``, ``sample``, ``recipe`` and ``runs`` as a curator or the studio
calls them; SIGTERM to a real child process saves a checkpoint and the run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.project import Project
from studio.training import checkpoint as ckpt
from tests.core.test_training import make_training_project

REPO = Path(__file__).resolve().parents[2]
FAST = ["--eval-every", "5", "--checkpoint-every", "5", "--threads", "1"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "project"
    project = Project.open(root)
    with project.store() as store:
        make_training_project(project, store, lessons=25, shop=25)
    return root


@pytest.fixture
def proj(template: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(template, tmp_path / "p")
    return tmp_path / "p"


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_train_prints_json_lines_and_lists_its_run(proj: Path) -> None:
    out = run("train", str(proj), "--run", "r1", "--steps", "12", *FAST).output
    events = lines(out)
    assert len(events) == len(out.splitlines())  # nothing but JSON lines on stdout
    kinds = [e["event"] for e in events]
    assert kinds[0] == "prepare" and "start" in kinds and kinds[-1] == "end"
    assert events[-1]["state"] == "done" and events[-1]["step"] == 12
    assert sum(k == "step" for k in kinds) == 12
    listed = json.loads(run("runs", str(proj), "--json").output)
    assert listed[0]["run"] == "r1" and listed[0]["state"] == "done" and listed[0]["steps"] == 12
    assert set(listed[0]["eval"]) == {"web", "textbook"}
    sample = json.loads(
        run("sample", str(proj), "--run", "r1", "--prompt", "The cell", "--json").output
    )
    assert sample["step"] == 12 and isinstance(sample["text"], str)
    assert sample["prompt_tokens_unread"] == 0
    long = CliRunner().invoke(
        cli, ["sample", str(proj), "--run", "r1", "--prompt", "The cell divides. " * 500]
    )
    assert long.exit_code == 0 and "of the prompt were not seen" in long.stderr
    again = run("train", str(proj), "--run", "r1", "--steps", "12", code=1).output
    assert "exists" in again and "--resume" in again
    # the run's recipe, tokenizer and config are what a second run can reuse
    tok = proj / "runs" / "r1" / "tokenizer.json"
    out = run(
        "train",
        str(proj),
        "--run",
        "r2",
        "--recipe",
        "raw",
        "--tokens",
        "3000",
        "--tokenizer",
        str(tok),
        *FAST,
    ).output
    assert lines(out)[-1]["steps"] == 3  # 3,000 tokens at 1,024 a step
    assert (proj / "runs" / "r2" / "tokenizer.json").read_bytes() == tok.read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "nope"], "no recipe 'nope'"),
        (["--steps", "5", "--tokens", "5"], "not both"),
        (["--run", "../up"], "run name"),
        (["--resume", "--run", "ghost"], "no run 'ghost'"),
        (["--recipe", "curated", "--device", "cuda"], None),  # no CUDA here: a clear failure
        (["--recipe", "/etc/passwd"], "/etc/passwd is not a recipe file"),
        # a mistyped step count is refused before a byte is written, not by filling the disk
        (["--steps", "99999999999999999999"], "its token stream needs 2.0e+23 bytes on disk"),
        (["--tokens", "10000000000000000"], "ask for fewer --steps or --tokens"),
    ],
)
def test_train_errors_are_one_line(proj: Path, args: list[str], message: str | None) -> None:
    if "--run" not in args:
        args = [*args, "--run", "e"]
    if message is None:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is here")
        message = "no CUDA device"
    if "--steps" not in args and "--tokens" not in args:
        args = [*args, "--steps", "2"]
    result = CliRunner().invoke(cli, ["train", str(proj), *args])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert not (proj / "runs" / "e").exists()


@pytest.mark.parametrize("command", ["train", "compare", "sample"])
@pytest.mark.parametrize("seed", ["-5", "1e23", "4294967296"])
def test_a_seed_numpy_cannot_take_is_refused_before_anything_runs(
    proj: Path, command: str, seed: str
) -> None:
    args = {
        "train": ["--run", "s"],
        "compare": ["--recipes", "all,curated", "--name", "s"],
        "sample": ["--run", "s", "--prompt", "x"],
    }[command]
    result = CliRunner().invoke(cli, [command, str(proj), *args, "--seed", seed])
    assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output
    assert "0<=x<=4294967295" in result.output or "not a valid integer" in result.output
    assert not (proj / "runs" / "s").exists()


def test_a_micro_batch_that_cannot_fit_in_memory_is_refused_before_preparing(
    proj: Path,
) -> None:
    """--batch-size 20000 grew until the system killed the run (and again on each resume); a
    micro-batch whose logits alone outgrow the free memory is refused, and no run is made."""
    out = run("train", str(proj), "--run", "big", "--batch-size", "100000000", code=1).output
    assert "a micro-batch of 100,000,000 sequences of 128 tokens needs more than" in out
    assert "GB on this machine" in out or "GB on the GPU" in out
    assert "smaller --batch-size" in out and "Traceback" not in out
    assert not (proj / "runs" / "big").exists()


def test_resume_refuses_another_batch_size_and_keeps_the_run(proj: Path) -> None:
    """--resume --batch-size 100000000 was ignored without a word (the run went on with its
    own batch); it is refused as --steps is, and the run resumes as it was."""
    run("train", str(proj), "--run", "b", "--steps", "2", *FAST)
    for option, value in (("--batch-size", "100000000"), ("--accum", "3")):
        out = run("train", str(proj), "--run", "b", "--resume", option, value, code=1).output
        assert f"was started with {option} " in out and "continues it as it was" in out
    assert json.loads((proj / "runs" / "b" / "status.json").read_text())["state"] == "done"


def test_a_run_another_process_trains_is_refused_and_left_alone(proj: Path) -> None:
    from studio.locks import exclusive

    with exclusive(proj, "run-busy", "run busy"):  # as a studio training it in another window
        new = CliRunner().invoke(cli, ["train", str(proj), "--run", "busy", "--steps", "2"])
        compared = CliRunner().invoke(
            cli,
            ["compare", str(proj), "--recipes", "all,curated", "--name", "busy", "--steps", "2"],
        )
    for result in (new, compared):
        assert result.exit_code == 1, result.output
        assert "is being run by another process of the studio" in result.output
    assert not (proj / "runs" / "busy").exists()


def test_an_empty_project_says_there_is_nothing_to_train_on(tmp_path: Path) -> None:
    run("init", str(tmp_path / "empty"))
    out = run("train", str(tmp_path / "empty"), "--run", "x", code=1).output
    assert "no source has any document" in out and "Traceback" not in out
    assert not (tmp_path / "empty" / "runs" / "x").exists()  # nothing half-made is left


def test_a_broken_recipe_file_is_refused(proj: Path) -> None:
    (proj / "recipes").mkdir()
    (proj / "recipes" / "bad.toml").write_text("[[sources]]\nname = 'x'\nkind = 'moon'\n", "utf-8")
    out = run("train", str(proj), "--recipe", "bad", "--run", "b", code=1).output
    assert "kind is one of" in out
    listed = run("recipe", "list", str(proj)).output
    assert "bad" in listed and "unreadable" in listed


def test_recipe_commands(proj: Path) -> None:
    names = {r["name"] for r in json.loads(run("recipe", "list", str(proj), "--json").output)}
    assert {"all", "curated", "raw", "phi3-mini", "curriculum"} <= names
    shown = json.loads(
        run("recipe", "show", str(proj), "curated", "--tokens", "10000", "--json").output
    )
    web = shown["counts"][0]
    assert web["name"] == "filtered web" and web["documents"] > 0 and web["mix_share"] == 1.0
    assert shown["estimated"] is True and any("synthetic" in w for w in shown["warnings"])
    text = run("recipe", "show", str(proj), "raw").output
    assert "raw web" in text and "tokens" in text
    path = run("recipe", "new", str(proj), "mine", "--from", "phi1").output.strip()
    assert Path(path) == proj / "recipes" / "mine.toml"
    assert "mine" in run("recipe", "list", str(proj)).output
    assert "exists" in run("recipe", "new", str(proj), "mine", code=1).output


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_finishes_the_run(proj: Path) -> None:
    """The studio's cancel: SIGTERM to the real child process, which saves and exits cleanly."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "studio",
        "train",
        str(proj),
        "--run",
        "t",
        "--steps",
        "100000",
        "--eval-every",
        "0",
        "--checkpoint-every",
        "0",
        "--own-process-group",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    seen = []
    for raw in proc.stdout:
        seen.append(json.loads(raw))
        if seen[-1].get("event") == "step" and seen[-1]["step"] >= 3:
            break
    assert os.getpgid(proc.pid) == proc.pid  # its own process group, as the studio asks
    os.killpg(proc.pid, signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err  # stopped, as a shell tells it from finished
    last = json.loads(rest.splitlines()[-1])
    assert last["event"] == "end" and last["state"] == "cancelled"
    stopped = last["step"]
    checkpoint = ckpt.latest_checkpoint(proj / "runs" / "t")
    assert checkpoint is not None and ckpt.read_meta(checkpoint)["step"] == stopped
    listed = json.loads(run("runs", str(proj), "--json").output)
    assert listed[0]["state"] == "cancelled"
    # the run was asked for 100,000 steps: resuming with another --steps is refused
    out = run("train", str(proj), "--run", "t", "--resume", "--steps", "5", code=1).output
    assert "--resume continues it as it was" in out


def test_a_run_killed_while_being_prepared_is_prepared_again(proj: Path) -> None:
    from studio.training.run import Run

    run_dir = proj / "runs" / "k"
    run_dir.mkdir(parents=True)
    asked = {"name": "k", "recipe": "raw", "size": "tiny", "steps": 4, "seed": 0}
    (run_dir / "run.json").write_text(json.dumps({**asked, "tokenizer": None}), "utf-8")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (run_dir / "status.json").write_text(
        json.dumps({"state": "preparing", "pid": int(dead.stdout), "step": 0}), "utf-8"
    )
    assert Run(run_dir).status()["state"] == "crashed"
    events = lines(run("train", str(proj), "--run", "k", "--resume", *FAST).output)
    assert events[-1]["state"] == "done" and events[-1]["steps"] == 4
    assert Run(run_dir).read("recipe.json")["recipe"]["name"] == "raw"


@pytest.mark.slow
def test_compare_prints_a_table_and_json(proj: Path) -> None:
    out = run(
        "compare",
        str(proj),
        "--recipes",
        "curated,raw",
        "--steps",
        "6",
        "--name",
        "cmp",
        "--eval-every",
        "3",
        "--json",
    ).output
    events = lines(out)
    final = events[-1]
    assert final["event"] == "compare" and final["state"] == "done"
    assert [r["recipe"] for r in final["runs"]] == ["curated", "raw"]
    assert all(set(r["eval"]) == {"web", "textbook"} for r in final["runs"])
    assert {e["run"] for e in events if e.get("event") == "step"} == {"cmp-curated", "cmp-raw"}
    table = run(
        "compare",
        str(proj),
        "--recipes",
        "curated,raw",
        "--steps",
        "6",
        "--name",
        "cmp",
        "--eval-every",
        "3",
    ).output
    assert "textbook loss (bpb)" in table and "curated" in table and "raw" in table
    assert "two recipes" in run("compare", str(proj), "--recipes", "raw", code=1).output
    assert "no recipe" in run("compare", str(proj), "--recipes", "raw,zz", code=1).output


def test_bench_train_reports_both_loops() -> None:
    args = ["bench", "train", "--steps", "2", "--blocks", "2", "--threads", "1"]
    result = json.loads(run(*args, "--json").output)
    assert len(result["studio_blocks_tokens_per_s"]) == 2
    assert result["studio_tokens_per_s"] > 0 and result["reference_tokens_per_s"] > 0
    assert result["ratio"] > 0 and result["target"] == 0.95
    text = run(*args).output
    assert "reference (nanoGPT pattern)" in text and "studio / reference" in text


def test_sample_refuses_a_prompt_that_is_not_text(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    result = CliRunner().invoke(cli, ["sample", str(project), "--run", "r", "--prompt", "\udcff"])
    assert result.exit_code == 2 and "not valid UTF-8 text" in result.output
