"""Run folders with garbage in them: every reader of a run's files takes any JSON shape, lists
the run as damaged with the file and what is wrong, and the other runs are listed as they are.
Run names that no folder or child process can carry are refused before any path is made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.project import Project
from studio.training.compare import format_table, list_comparisons, run_summary
from studio.training.run import (
    MAX_NAME,
    Run,
    RunError,
    check_run_name,
    list_runs,
    open_run,
    read_metrics,
)

GOOD = {"name": "good", "recipe": "raw", "steps": 10, "created_at": "2025-01-01T00:00:00"}
STEP = {"event": "step", "step": 10, "steps": 10, "loss": 3.5, "tokens": 640}
EVAL = {"event": "eval", "step": 10, "eval": {"web": {"loss": 3.9, "bpb": 1.2}}}


def write_run(project: Project, name: str, files: dict[str, str]) -> Path:
    """A run folder holding ``files`` (name to text) as they are, garbage or not."""
    folder = project.root / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (folder / file).write_text(text, "utf-8")
    return folder


def good_run(project: Project, name: str = "good") -> Path:
    return write_run(
        project,
        name,
        {
            "run.json": json.dumps({**GOOD, "name": name}),
            "status.json": json.dumps({"state": "done", "step": 10}),
            "metrics.jsonl": json.dumps(STEP) + "\n" + json.dumps(EVAL) + "\n",
        },
    )


RUN_JSON = json.dumps(GOOD)

DAMAGED = {
    "run_json_list": ({"run.json": "[1]"}, "run.json is damaged (not a JSON object)"),
    "run_json_garbage": ({"run.json": "garbage{"}, "run.json is damaged (not valid JSON)"),
    "status_list": (
        {"run.json": RUN_JSON, "status.json": "[1,2]"},
        "status.json is damaged (not a JSON object)",
    ),
    "config_garbage": (
        {"run.json": RUN_JSON, "config.json": "garbage{"},
        "config.json is damaged (not valid JSON)",
    ),
    # a prepared run that lost a file it cannot be continued or sampled without
    "run_json_lost": (
        {"config.json": "{}", "tokenizer.json": "{}", "status.json": '{"state": "done"}'},
        "run.json is missing",
    ),
    "tokenizer_lost": ({"run.json": RUN_JSON, "config.json": "{}"}, "tokenizer.json is missing"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_run_is_listed_as_damaged_beside_the_good_one(
    project: Project, case: str
) -> None:
    files, why = DAMAGED[case]
    good_run(project)
    write_run(project, case, files)
    runs = {r.name: r for r in list_runs(project)}
    assert set(runs) == {"good", case}
    assert runs[case].status()["state"] == f"damaged: {why}"
    summary = run_summary(runs[case])
    assert summary["state"] == f"damaged: {why}" and summary["eval"] == {}
    assert run_summary(runs["good"])["state"] == "done"
    assert open_run(project, case).name == case


def test_a_folder_in_place_of_run_json_lists_the_run_as_damaged(project: Project) -> None:
    good_run(project)
    odd = write_run(project, "odd", {"status.json": json.dumps({"state": "done", "step": 3})})
    (odd / "run.json").mkdir()
    runs = {r.name: r for r in list_runs(project)}
    assert set(runs) == {"good", "odd"}
    assert runs["odd"].status()["state"].startswith("damaged: run.json cannot be read (")


def test_fields_of_the_wrong_type_read_as_absent(project: Project) -> None:
    write_run(
        project,
        "odd",
        {
            "run.json": json.dumps({"recipe": ["x"], "created_at": 5, "steps": "ten"}),
            "status.json": json.dumps({"state": "cancelled", "step": "abc", "pid": "x"}),
        },
    )
    good_run(project)  # created_at of another type than the odd run's: the sort still works
    [odd] = [r for r in list_runs(project) if r.name == "odd"]
    summary = run_summary(odd)
    assert summary["recipe"] is None and summary["step"] is None
    assert summary["state"] == "cancelled"


BAD_LINES = [
    {"event": "step"},  # no step, no loss
    {"event": "step", "step": 1, "loss": "x"},  # a loss that is no number, no tokens
    {"event": "step", "step": 2, "loss": 1.0, "tokens_per_s": "fast"},
    {"event": "eval", "step": 1, "eval": {"web": 1}},
    {"event": "eval", "step": 1, "eval": [1]},
    {"event": "eval", "step": "one", "eval": {}},
    [1, 2],
    "text",
]


def test_metrics_lines_that_are_not_well_formed_events_are_skipped(project: Project) -> None:
    folder = good_run(project)
    garbage = "".join(json.dumps(line) + "\n" for line in BAD_LINES)
    with (folder / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(garbage + "\x00\xff not json\n")
    assert read_metrics(folder / "metrics.jsonl") == [STEP, EVAL]
    summary = run_summary(Run(folder))
    assert summary["train_loss"] == 3.5 and summary["tokens"] == 640
    assert summary["eval"] == EVAL["eval"]


def test_a_step_without_tokens_counts_none(project: Project) -> None:
    folder = write_run(
        project,
        "bare",
        {"run.json": RUN_JSON, "metrics.jsonl": '{"event":"step","step":1,"loss":2.0}\n'},
    )
    summary = run_summary(Run(folder))
    assert summary["train_loss"] == 2.0 and summary["tokens"] == 0


COMPARISONS = {
    "cmp_list": "[1]",
    "cmp_norecipe": json.dumps({"name": "c", "runs": [{"state": "done"}]}),
    "cmp_evalbad": json.dumps(
        {"runs": [{"recipe": "a", "state": "done", "eval": {"web": {"loss": "x", "bpb": 1}}}]}
    ),
    "cmp_runsnull": json.dumps({"name": "c3", "runs": None, "created_at": 3}),
    "cmp_noname": json.dumps({"runs": [], "created_at": "2025"}),
}


def test_damaged_comparisons_read_as_rows_the_table_can_show(project: Project) -> None:
    for name, text in COMPARISONS.items():
        folder = project.root / "runs" / name
        folder.mkdir(parents=True)
        (folder / "compare.json").write_text(text, "utf-8")
    found = {c["name"]: c for c in list_comparisons(project)}
    assert set(found) == set(COMPARISONS) - {"cmp_list"}  # a list is no comparison
    assert found["cmp_norecipe"]["runs"][0]["recipe"] == "?"
    assert found["cmp_evalbad"]["runs"][0]["eval"] == {}
    assert found["cmp_runsnull"]["runs"] == []
    for report in found.values():
        assert "recipe" in format_table(report)


def test_config_garbage_says_damaged_not_never_prepared(project: Project) -> None:
    folder = write_run(project, "r1", {"run.json": RUN_JSON, "config.json": "garbage{"})
    with pytest.raises(RunError, match="config.json is damaged") as caught:
        Run(folder).config()
    assert "never prepared" not in str(caught.value)
    (folder / "config.json").write_text("[1]", "utf-8")
    with pytest.raises(RunError, match="config.json is damaged"):
        Run(folder).config()
    (folder / "config.json").write_text('{"model": {}, "train": {"nonsense": 1}}', "utf-8")
    with pytest.raises(RunError, match="config.json is damaged"):
        Run(folder).config()
    (folder / "config.json").unlink()
    with pytest.raises(RunError, match="never prepared"):
        Run(folder).config()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("ok\n", "control character"),
        ("a" * 300, "300 characters long"),
        ("", "empty"),
        ("../up", "A-Z"),
        ("-rf", "A-Z"),
        ("my run", "A-Z"),
    ],
)
def test_run_names_no_folder_or_child_can_carry_are_refused(name: str, why: str) -> None:
    with pytest.raises(RunError, match="run name") as caught:
        check_run_name(name)
    assert why in str(caught.value)
    assert "\x00" not in str(caught.value) and len(str(caught.value)) < 200


def test_plain_run_names_are_kept(project: Project) -> None:
    for name in ("r1", "curated-10m", "a.b_c", "x" * MAX_NAME):
        assert check_run_name(name) == name
    with pytest.raises(RunError, match="no run 'zzzz"):  # never built into a path
        open_run(project, "z" * 300)
