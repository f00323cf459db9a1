"""The Training tab over run folders with garbage in them: the good runs are listed, a damaged
one says which file and what is wrong; a run name the child process cannot carry is refused
before it starts; a failed job offers Resume only when a checkpoint is there to resume from."""

from __future__ import annotations

import json
import shutil

import pytest

from studio.training import checkpoint as ckpt
from tests.core.test_damaged_runs import (
    BAD_LINES,
    COMPARISONS,
    DAMAGED,
    RUN_JSON,
    good_run,
    write_run,
)

JOB_TIMEOUT = 120_000  # a child process starts Python and the studio first


def _cell(table, row: int, col: int) -> str:  # type: ignore[no-untyped-def]
    item = table.item(row, col)
    return item.text() if item else ""


def _rows(view) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {_cell(view.runs_table, r, 1): r for r in range(view.runs_table.rowCount())}


@pytest.fixture
def damaged_view(qtbot, window):  # type: ignore[no-untyped-def]
    project = window.project
    good_run(project)
    for case, (files, _why) in DAMAGED.items():
        write_run(project, case, files)
    metrics = "".join(json.dumps(line) + "\n" for line in BAD_LINES)
    write_run(project, "bad_metrics", {"run.json": RUN_JSON, "metrics.jsonl": metrics})
    for name, text in COMPARISONS.items():
        (project.root / "runs" / name).mkdir()
        (project.root / "runs" / name / "compare.json").write_text(text, "utf-8")
    view = window.view("Training")
    yield view
    if view.job.running():
        view.job.proc.kill()
        view.job.proc.waitForFinished(10_000)


def test_damaged_runs_are_listed_with_what_is_wrong(qtbot, damaged_view, screenshot) -> None:  # type: ignore[no-untyped-def]
    view = damaged_view
    rows = _rows(view)
    assert set(rows) == {"good", "bad_metrics", *DAMAGED}
    assert _cell(view.runs_table, rows["good"], 3) == "done"
    assert _cell(view.runs_table, rows["good"], 5) == "3.500"
    for case, (_files, why) in DAMAGED.items():
        assert _cell(view.runs_table, rows[case], 3) == f"damaged: {why}"
    assert _cell(view.runs_table, rows["bad_metrics"], 5) == "-"
    # every run drawn at once, a damaged one selected: the plots and the status take it
    view.tabs.setCurrentIndex(1)
    for name in rows:
        view.set_overlay(name, True)
    view.redraw()
    view.select_run("status_list")
    view._on_run_selected()
    assert "status.json is damaged (not a JSON object)" in view.job_status.text()
    assert not view.resume_button.isEnabled()
    screenshot(view, "training-damaged-runs")
    # the comparisons that are objects are offered, named by their folders
    view.tabs.setCurrentIndex(3)
    offered = {view.comparisons.itemData(i) for i in range(view.comparisons.count())}
    assert offered == set(COMPARISONS) - {"cmp_list"}
    for i in range(view.comparisons.count()):
        view.comparisons.setCurrentIndex(i)  # each one drawn as a table and plots
    view._refresh_sample_runs()
    assert view.sample_run.count() == 0


@pytest.mark.parametrize(
    ("name", "why"),
    [("a\x00b", "control character"), ("a" * 300, "300 characters long"), ("my run", "A-Z")],
)
def test_a_run_name_the_child_cannot_carry_is_refused(damaged_view, window, name, why) -> None:  # type: ignore[no-untyped-def]
    view = damaged_view
    before = sorted(p.name for p in (window.project.root / "runs").iterdir())
    view.run_name.setText(name)
    view.train()
    assert not view.job.running()
    assert view.failed_box is not None and why in view.failed_box.text()
    assert "run name" in view.failed_box.text()
    view.failed_box.close()
    assert sorted(p.name for p in (window.project.root / "runs").iterdir()) == before


def test_a_comparison_name_the_child_cannot_carry_is_refused(damaged_view) -> None:  # type: ignore[no-untyped-def]
    view = damaged_view
    view.compare_name.setText("c\x00d")
    view.compare()
    assert not view.job.running()
    assert "comparison name" in view.failed_box.text()


def test_resume_is_offered_only_when_a_checkpoint_is_there(qtbot, damaged_view, window) -> None:  # type: ignore[no-untyped-def]
    view = damaged_view
    runs = window.project.root / "runs"
    # a run folder deleted behind the studio's back: nothing to resume from
    view.select_run("good")
    shutil.rmtree(runs / "good")
    with qtbot.waitSignal(view.job_ended, timeout=JOB_TIMEOUT) as ended:
        view.resume()
    assert ended.args == ["failed"]
    assert "Resume" not in view.failed_box.text()
    assert "no run 'good'" in view.failed_box.detailedText()
    assert "no run 'good'" in view.failed_box.text()  # the reason, not only in the log
    view.failed_box.close()
    # a damaged config beside a checkpoint: the failure says so, and Resume is offered
    step = runs / "config_garbage" / ckpt.DIR / ckpt.checkpoint_name(1)
    step.mkdir(parents=True)
    (step / "meta.json").write_text(json.dumps({"step": 1, "config": {}}), "utf-8")
    (runs / "config_garbage" / "data").mkdir()
    (runs / "config_garbage" / "data" / "plan.json").write_text('{"evals": {}}', "utf-8")
    view.reload_runs()
    view.select_run("config_garbage")
    with qtbot.waitSignal(view.job_ended, timeout=JOB_TIMEOUT) as ended:
        view.resume()
    assert ended.args == ["failed"]
    assert "Resume continues from its last checkpoint" in view.failed_box.text()
    assert "config.json is damaged" in view.failed_box.detailedText()
    assert "config.json is damaged" in view.failed_box.text()
