"""The Training tab: the recipe editor's counts, a real ``studio train`` child process drawing
its curve, cancel and resume, a killed job reported with its log, samples, and a comparison."""

from __future__ import annotations

import os
import signal

import pytest
from PySide6.QtCore import Qt

from studio.training import checkpoint as ckpt
from studio.training.run import Run
from tests.core.test_training import make_training_project

JOB_TIMEOUT = 240_000  # a child process imports torch and transformers first (seconds here)


@pytest.fixture
def view(qtbot, window, monkeypatch):  # type: ignore[no-untyped-def]
    # the child jobs inherit this: on a shared machine one torch thread beats two that spin
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    make_training_project(window.project, window.store, lessons=20, shop=20)
    view = window.view("Training")  # built on first use; counts its recipe in the background
    assert window.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: not view.count_op.running, timeout=60_000)
    yield view
    if view.job.running():
        view.job.proc.kill()
        view.job.proc.waitForFinished(10_000)


def _cell(table, row: int, col: int) -> str:  # type: ignore[no-untyped-def]
    item = table.item(row, col)
    return item.text() if item else ""


def test_the_recipe_editor_counts_what_a_recipe_selects(qtbot, view, window, screenshot) -> None:  # type: ignore[no-untyped-def]
    assert view.current_recipe_name() == "curated"
    assert _cell(view.sources, 0, 0) == "filtered web"
    assert int(_cell(view.sources, 0, 5).replace(",", "")) > 0  # documents
    assert int(_cell(view.sources, 0, 6).replace(",", "")) > 0  # tokens
    assert _cell(view.sources, 0, 8) == "100%"  # synthetic is empty: its share moves here
    assert "no document matches" in view.sources.item(1, 5).toolTip()
    assert "tokens estimated" in view.count_note.text()
    assert view.evals.rowCount() == 3 and int(_cell(view.evals, 0, 3)) > 0
    screenshot(window, "training-recipe")

    # a typo in a share is named, and nothing can be trained until it is fixed
    view.sources.item(0, 3).setText("lots")
    view.count()  # the editor's recipe is checked before anything is counted
    assert "no number" in view.count_note.text() and not view.train_button.isEnabled()
    view.sources.item(0, 3).setText("0.7")
    with qtbot.waitSignal(view.counted, timeout=30_000):
        view.count()
    assert view.train_button.isEnabled()

    # a new recipe from the one shown, saved into the project at once
    view.sources.item(0, 3).setText("0.5")
    view.create_recipe("mine")
    saved = window.project.root / "recipes" / "mine.toml"
    assert saved.is_file() and "share = 0.5" in saved.read_text("utf-8")
    assert view.current_recipe_name() == "mine" and view.save_button.isEnabled()
    view.heldout.setValue(20)
    view.save_recipe()
    assert "heldout = 0.2" in saved.read_text("utf-8")


def test_bad_recipe_names_are_refused_and_nothing_is_written(view, window) -> None:  # type: ignore[no-untyped-def]
    """The names a hostile sweep gave "New from this...": each is refused in a warning that
    says why, no file appears under recipes/, and the recipe shown stays the same."""
    recipes = window.project.root / "recipes"
    before = sorted(recipes.iterdir()) if recipes.is_dir() else []
    for name, why in (
        ("a\x00b", "control character"),
        ("n" * 300, "too long"),
        ("new\nline", "control character"),
        ("../x", "starts with a dot"),
        ("con", "Windows keeps that name"),
        ("spring.toml", "reads as a recipe file's path"),
    ):
        assert not view.create_recipe(name)
        assert view.failed_box is not None and view.failed_box.isVisible()
        assert "cannot save a recipe named" in view.failed_box.text()
        assert why in view.failed_box.text(), view.failed_box.text()
        view.failed_box.close()
        assert (sorted(recipes.iterdir()) if recipes.is_dir() else []) == before
        assert view.current_recipe_name() == "curated"


def test_a_recipe_file_that_cannot_be_read_is_never_saved_over(qtbot, view, window) -> None:  # type: ignore[no-untyped-def]
    """A typo in a project recipe's file: the editor kept the previous recipe's rows with Save
    and Train on, and either wrote those rows over the curator's file (Train saves first)."""
    folder = window.project.root / "recipes"
    folder.mkdir(exist_ok=True)
    broken = folder / "mine.toml"
    text = '# my notes\ndescription = "synthetic only"\n[[sources]]\nname = "s"\nshare = 0,5\n'
    broken.write_text(text, "utf-8")
    view.reload_recipes(select="mine")
    assert view.current_recipe_name() == "mine"
    assert "not valid toml" in view.count_note.text()
    assert "does not write over a recipe it cannot read" in view.count_note.text()
    assert view.sources.rowCount() == 0 and view.description.text() == ""
    assert not view.save_button.isEnabled() and not view.train_button.isEnabled()
    assert not view.save_recipe()
    assert "fix the file first" in view.failed_box.text()
    view.failed_box.close()
    view.train()
    assert not view.job.running() and "fix the file first" in view.failed_box.text()
    view.failed_box.close()
    view._set_busy(False)  # a job that ends turns Train back on, but not for this recipe
    assert not view.train_button.isEnabled()
    assert broken.read_text("utf-8") == text
    broken.write_text(text.replace("0,5", "0.5"), "utf-8")  # fixed: picked again, it loads
    view.reload_recipes(select="mine")
    assert view.unreadable is None and view.sources.rowCount() == 1
    assert view.save_button.isEnabled()


def test_absurd_amounts_in_the_sources_table_are_named(qtbot, view, window) -> None:  # type: ignore[no-untyped-def]
    """1e400 or inf in a tokens cell once raised OverflowError on every count-timer tick; now
    the count note names the cell, training is off, and the saved recipe keeps its amounts."""
    assert view.create_recipe("mine")
    saved = window.project.root / "recipes" / "mine.toml"
    stored = saved.read_bytes()
    for col, text, why in (
        (4, "1e400", "is not a finite number"),
        (4, "inf", "is not a finite number"),
        (4, "nan", "is not a finite number"),
        (4, "99999999999999999999999999", "a budget is at most"),
        (4, "0.5", "is not a whole number of tokens"),
        (3, "1e400", "is not a finite number"),
        (3, "1e300", "shares are relative weights"),
    ):
        view.count_note.setText("")  # the note below is the count of this value, not the last
        view.sources.item(0, 7 - col).setText("")  # share and tokens are one or the other
        view.sources.item(0, col).setText(text)  # counted again by the editor's timer
        qtbot.waitUntil(lambda why=why: why in view.count_note.text(), timeout=10_000)
        assert not view.train_button.isEnabled()
        assert not view.save_recipe()
        assert why in view.failed_box.text()
        view.failed_box.close()
        assert saved.read_bytes() == stored
    view.sources.item(0, 4).setText("")
    view.sources.item(0, 3).setText("0.7")
    with qtbot.waitSignal(view.counted, timeout=30_000):
        view.count()
    assert view.train_button.isEnabled() and view.save_recipe()


@pytest.mark.slow
def test_training_draws_the_curve_of_a_real_child_process(qtbot, view, window, screenshot) -> None:  # type: ignore[no-untyped-def]
    view.size_choice.setCurrentText("tiny")
    view.steps.setValue(16)
    view.run_name.setText("gui-run")
    with qtbot.waitSignal(view.job_ended, timeout=JOB_TIMEOUT) as ended:
        view.train_button.click()
        assert view.tabs.currentIndex() == 1  # the Runs tab shows the job
    assert ended.args == ["done"], view.log_view.toPlainText()
    series = view.live["gui-run"]
    assert series.steps == list(range(1, 17)) and series.loss[-1] < series.loss[0]
    assert set(series.evals) == {"web", "textbook"}
    assert view.loss_plot.getPlotItem().listDataItems()
    assert view.rate_plot.getPlotItem().listDataItems()
    row = [_cell(view.runs_table, r, 1) for r in range(view.runs_table.rowCount())].index("gui-run")
    assert _cell(view.runs_table, row, 3) == "done" and _cell(view.runs_table, row, 4) == "16/16"
    assert "done at step 16" in view.log_view.toPlainText()
    window.resize(1500, 950)
    screenshot(window, "training-runs")

    view.tabs.setCurrentIndex(2)
    view._refresh_sample_runs()
    view.sample_run.setCurrentText("gui-run")
    assert view.sample_step.count() >= 1
    with qtbot.waitSignal(view.sampled, timeout=60_000) as sampled:
        view.sample_button.click()
    assert sampled.args[0] and "Could not" not in view.sample_out.toPlainText()
    assert "were not seen" not in view.sample_out.toPlainText()
    screenshot(window, "training-sample")
    view.prompt.setText("Rain falls, rivers run to the sea. " * 400)  # past the student's context
    with qtbot.waitSignal(view.sampled, timeout=60_000):
        view.sample_button.click()
    shown = view.sample_out.toPlainText()
    assert "tokens of this prompt were not seen" in shown
    assert len(shown) < 3000  # the end of the prompt the student read, not 14,000 characters
    screenshot(window, "training-sample-long-prompt")


@pytest.mark.slow
def test_cancel_resume_and_a_killed_job(qtbot, view, window, screenshot) -> None:  # type: ignore[no-untyped-def]
    view.steps.setValue(100_000)
    view.run_name.setText("long")
    view.train_button.click()
    qtbot.waitUntil(lambda: len(view.live["long"].steps) >= 3, timeout=JOB_TIMEOUT)
    assert "ETA" in view.job_status.text()
    with qtbot.waitSignal(view.job_ended, timeout=60_000) as ended:
        view.cancel_button.click()
    assert ended.args == ["cancelled"], view.log_view.toPlainText()
    run = Run(window.project.root / "runs" / "long")
    stopped = run.status()["step"]
    assert ckpt.read_meta(ckpt.latest_checkpoint(run.root))["step"] == stopped
    view.select_run("long")
    view._on_run_selected()
    assert view.resume_button.isEnabled()

    view.resume_button.click()
    qtbot.waitUntil(
        lambda: view.live["long"].steps and view.live["long"].steps[-1] > stopped + 2,
        timeout=JOB_TIMEOUT,
    )
    steps = view.live["long"].steps
    assert steps == list(range(1, len(steps) + 1))  # the curve continues where it stopped
    # the job dies without warning (killed, out of memory): reported, the studio stays up
    with qtbot.waitSignal(view.job_ended, timeout=60_000) as ended:
        os.kill(view.job.pid(), signal.SIGKILL)
    assert ended.args == ["crashed"]
    assert view.failed_box is not None and view.failed_box.isVisible()
    assert "studio train" in view.failed_box.detailedText()
    screenshot(view.failed_box, "training-crashed")
    view.failed_box.close()
    view.reload_runs()
    row = [_cell(view.runs_table, r, 1) for r in range(view.runs_table.rowCount())].index("long")
    assert _cell(view.runs_table, row, 3) == "crashed"
    view.select_run("long")
    view._on_run_selected()
    assert view.resume_button.isEnabled() and view.train_button.isEnabled()


@pytest.mark.slow
def test_compare_recipes_and_overlay_runs(qtbot, view, window, screenshot) -> None:  # type: ignore[no-untyped-def]
    view.tabs.setCurrentIndex(3)
    assert view.checked_recipes() == ["curated", "raw"]
    view.compare_steps.setValue(6)
    view.compare_name.setText("cvr")
    with qtbot.waitSignal(view.job_ended, timeout=JOB_TIMEOUT) as ended:
        view.compare_button.click()
    assert ended.args == ["done"], view.log_view.toPlainText()
    assert view.comparisons.currentData() == "cvr"
    assert view.compare_table.rowCount() == 2
    assert _cell(view.compare_table, 0, 0).startswith("curated")
    headers = [view.compare_table.horizontalHeaderItem(c).text() for c in range(4)]
    assert headers[1:] == [
        "Train loss (nats/token)",
        "textbook: nats/token (bits/byte)",
        "web: nats/token (bits/byte)",
    ]
    assert len(view.compare_plot.getPlotItem().items) >= 2
    window.resize(1500, 950)
    screenshot(window, "training-compare")

    view.tabs.setCurrentIndex(1)
    view.reload_runs()
    view.set_overlay("cvr-curated", True)
    view.set_overlay("cvr-raw", True)
    names = {item.name() for item in view.loss_plot.getPlotItem().listDataItems()}
    assert {"cvr-curated train", "cvr-raw train", "cvr-raw web"} <= names
    screenshot(window, "training-overlay")
    view.runs_table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
