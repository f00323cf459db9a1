"""``studio runs``, ``train``, ``compare`` and ``sample`` over run folders with garbage in them,
and run names no folder can have: one line that says what is wrong, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.project import Project
from tests.core.test_damaged_runs import DAMAGED, RUN_JSON, good_run, write_run


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return Project.open(tmp_path / "p")


def invoke(*args: str, code: int):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    return result


def test_runs_lists_damaged_runs_beside_the_good_one(proj: Project) -> None:
    good_run(proj)
    for case, (files, _why) in DAMAGED.items():
        write_run(proj, case, files)
    write_run(
        proj,
        "bad_metrics",
        {"run.json": RUN_JSON, "metrics.jsonl": '{"event":"step"}\n{"event":"eval","eval":[1]}\n'},
    )
    listed = json.loads(invoke("runs", str(proj.root), "--json", code=0).output)
    rows = {r["run"]: r for r in listed}
    assert rows["good"]["state"] == "done" and rows["good"]["train_loss"] == 3.5
    for case, (_files, why) in DAMAGED.items():
        assert rows[case]["state"] == f"damaged: {why}"
    assert rows["bad_metrics"]["train_loss"] is None
    text = invoke("runs", str(proj.root), code=0).output
    assert "status.json is damaged" in text and "good" in text


@pytest.mark.parametrize(
    ("name", "message"),
    [("a" * 300, "300 characters long"), ("a\nb", "control character"), ("my run", "A-Z")],
)
def test_train_refuses_a_run_name_before_making_a_path(
    proj: Project, name: str, message: str
) -> None:
    out = invoke("train", str(proj.root), "--run", name, "--steps", "1", code=1).output
    assert "run name" in out and message in out
    assert not (proj.root / "runs").exists() or not any((proj.root / "runs").iterdir())


def test_compare_refuses_a_name_no_folder_can_have(proj: Project) -> None:
    out = invoke(
        "compare", str(proj.root), "--recipes", "all,raw", "--name", "x" * 300, code=1
    ).output
    assert "comparison name" in out and "300 characters long" in out


def test_resume_over_a_garbage_config_says_it_is_damaged(proj: Project) -> None:
    folder = write_run(
        proj,
        "r1",
        {
            "run.json": RUN_JSON,
            "status.json": json.dumps({"state": "failed", "step": 0}),
            "config.json": "garbage{",
        },
    )
    (folder / "data").mkdir()
    (folder / "data" / "plan.json").write_text('{"dtype": "uint16", "evals": {}}', "utf-8")
    out = invoke("train", str(proj.root), "--run", "r1", "--resume", code=1).output
    assert "config.json is damaged" in out and "never prepared" not in out


def test_resume_of_a_run_whose_run_json_says_nothing(proj: Project) -> None:
    write_run(proj, "r2", {"run.json": json.dumps({"created_at": "x"})})
    out = invoke("train", str(proj.root), "--run", "r2", "--resume", code=1).output
    assert "run.json is damaged" in out


@pytest.mark.parametrize("case", ["run_json_lost", "tokenizer_lost"])
def test_resume_of_a_run_that_lost_a_file_says_which(proj: Project, case: str) -> None:
    files, why = DAMAGED[case]
    folder = write_run(proj, case, files)
    (folder / "data").mkdir()
    (folder / "data" / "plan.json").write_text('{"dtype": "uint16", "evals": {}}', "utf-8")
    out = invoke("train", str(proj.root), "--run", case, "--resume", code=1).output
    assert f"cannot continue: {why}" in out and '"state": "done"' not in out


def test_sample_from_a_damaged_run_or_an_impossible_name(proj: Project) -> None:
    write_run(proj, "s", {"run.json": "[1]", "status.json": "[1,2]"})
    out = invoke("sample", str(proj.root), "--run", "s", code=1).output
    assert "no checkpoint" in out
    out = invoke("sample", str(proj.root), "--run", "s" * 300, code=1).output
    assert "no run" in out
