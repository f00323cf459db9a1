"""The ablation: the same model size, tokens and seed on two or more recipes, one after the
other, then the evaluation losses side by side.

Every run of a comparison shares one tokenizer (trained once on every non-held-out document),
and the held-out split and evaluation sets of the first recipe, so the losses are measured in
the same units on the same pages. A comparison lives in ``runs/NAME/compare.json`` beside its
runs ``runs/NAME-RECIPE``; asking for it again skips the runs that finished and resumes the one
that was stopped.

Example::

    report = compare_recipes(project, ["curated", "raw"], name="curated-vs-raw", size="tiny",
                             steps=300, emit=print, task=Task())
    print(format_table(report))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.progress import Task
from studio.project import Project
from studio.store import now
from studio.training.data import tokenizer_texts
from studio.training.loop import Emit
from studio.training.mix import resolve
from studio.training.model import SIZES
from studio.training.recipe import builtin_recipe, load_recipe
from studio.training.run import (
    Run,
    RunError,
    check_run_name,
    is_int,
    is_number,
    metrics_writer,
    prepare_run,
    run_lock,
    runs_dir,
    train_run,
    well_formed_eval,
)
from studio.training.tokenizer import train_tokenizer

FILE = "compare.json"


def compare_recipes(
    project: Project,
    recipes: list[str],
    *,
    name: str,
    size: str = "tiny",
    steps: int | None = None,
    tokens: int | None = None,
    seed: int = 0,
    device: str = "auto",
    emit: Emit,
    task: Task,
    **train_options: Any,
) -> dict[str, Any]:
    if len(recipes) < 2:
        raise RunError("a comparison needs two recipes or more")
    if len(set(recipes)) != len(recipes):
        raise RunError("a recipe appears twice in the comparison")
    check_run_name(name, "comparison")
    for recipe in recipes:
        load_recipe(project.root, recipe)  # every name checked before anything is trained
        check_run_name(f"{name}-{recipe}")  # the run of each recipe, named before it is trained
    with run_lock(project, name, "comparison"):
        folder = runs_dir(project) / name
        folder.mkdir(parents=True, exist_ok=True)
        report = _report(folder, name, recipes, size, steps, tokens, seed)
        tokenizer = _shared_tokenizer(project, folder, recipes[0], size, seed, emit)
        for recipe in recipes:
            run_name = f"{name}-{recipe}"
            entry = _train_one(
                project,
                recipe,
                run_name,
                tokenizer=tokenizer,
                evals_from=recipes[0],
                size=size,
                steps=steps,
                tokens=tokens,
                seed=seed,
                device=device,
                emit=emit,
                task=task,
                **train_options,
            )
            report["runs"] = [r for r in report["runs"] if r["recipe"] != recipe] + [entry]
            _write(folder, report)
            if entry["state"] != "done":
                report["state"] = entry["state"]
                _write(folder, report)
                emit({"event": "compare", **report})
                return report
        report["state"] = "done"
        report["finished_at"] = now()
        _write(folder, report)
        emit({"event": "compare", **report})
        return report


def _report(folder: Path, name: str, recipes: list[str], size: str, steps, tokens, seed) -> dict:
    asked = {"recipes": recipes, "size": size, "steps": steps, "tokens": tokens, "seed": seed}
    old = read_comparison(folder)
    if old and {k: old.get(k) for k in asked} != asked:
        raise RunError(
            f"comparison {name} exists with other settings ({_settings(old)}): "
            "choose another name to compare differently"
        )
    if old:
        return old
    return {"name": name, **asked, "state": "running", "created_at": now(), "runs": []}


def _settings(report: dict[str, Any]) -> str:
    return ", ".join(f"{k} {report.get(k)}" for k in ("recipes", "size", "steps", "tokens", "seed"))


def _shared_tokenizer(
    project: Project, folder: Path, first: str, size: str, seed: int, emit: Emit
) -> Path:
    path = folder / "tokenizer.json"
    if path.is_file():
        return path
    emit({"event": "prepare", "stage": "tokenizer", "message": "training the shared tokenizer"})
    split = load_recipe(project.root, first)
    everything = builtin_recipe()
    everything.heldout, everything.split_seed = split.heldout, split.split_seed
    everything.evals = []
    with project.store(readonly=True) as store:
        mix = resolve(store, everything)
        texts = list(tokenizer_texts(store, mix, [1.0], seed))
    tokenizer = train_tokenizer(texts, SIZES[size].vocab)
    tmp = folder / "tokenizer.json.tmp"
    tokenizer.save(str(tmp))
    tmp.replace(path)
    return path


def _train_one(
    project: Project,
    recipe: str,
    run_name: str,
    *,
    emit: Emit,
    task: Task,
    device: str,
    **options: Any,
) -> dict[str, Any]:
    run = Run(runs_dir(project) / run_name)
    with run_lock(project, run_name):
        if run.status().get("state") != "done":

            def tagged(event: dict[str, Any]) -> None:
                emit({**event, "run": run_name})

            resume = run.path("data", "plan.json").is_file()
            if not resume:
                if run.path("run.json").exists():  # stopped while being prepared: start afresh
                    for leftover in ("run.json", "status.json"):
                        run.path(leftover).unlink(missing_ok=True)
                prepare_run(
                    project, recipe, run_name, device=device, emit=tagged, task=task, **options
                )
            writer = metrics_writer(run, lambda line: tagged(json.loads(line)))
            train_run(run, emit=writer, task=task, resume=resume, device=device)
    return run_summary(run, recipe)


def run_summary(run: Run, recipe: str | None = None) -> dict[str, Any]:
    """The last training loss and evaluation of a run, as a comparison row (the metrics are
    well-formed events; what status.json and run.json hold is taken only of the right type)."""
    metrics = run.metrics()
    steps = [m for m in metrics if m.get("event") == "step"]
    evals = [m for m in metrics if m.get("event") == "eval" and m.get("eval")]
    status = run.status()
    asked = run.read("run.json", {}).get("recipe")
    return {
        "recipe": recipe or (asked if isinstance(asked, str) else None),
        "run": run.name,
        "state": _text(status.get("state")),
        "step": status.get("step") if is_int(status.get("step")) else None,
        "train_loss": steps[-1]["loss"] if steps else None,
        "tokens": (steps[-1].get("tokens") or 0) if steps else 0,
        "eval": evals[-1]["eval"] if evals else {},
        "curve": [(m["step"], m["eval"]) for m in evals],
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _clean_row(row: Any) -> dict[str, Any] | None:
    """A comparison row as the table and plots read it; None for one that is no row at all."""
    if not isinstance(row, dict):
        return None
    curve = row.get("curve") if isinstance(row.get("curve"), list) else []
    return {
        **row,
        "recipe": _text(row.get("recipe")) or "?",
        "state": _text(row.get("state")),
        "train_loss": row.get("train_loss") if is_number(row.get("train_loss")) else None,
        "tokens": row.get("tokens") if is_int(row.get("tokens")) else 0,
        "eval": row.get("eval") if row.get("eval") and well_formed_eval(row.get("eval")) else {},
        "curve": [
            (point[0], point[1])
            for point in curve
            if isinstance(point, list | tuple)
            and len(point) == 2
            and is_int(point[0])
            and isinstance(point[1], dict)
            and well_formed_eval(point[1])
        ],
    }


def _write(folder: Path, report: dict[str, Any]) -> None:
    tmp = folder / (FILE + ".tmp")
    tmp.write_text(json.dumps(report, indent=1), "utf-8")
    tmp.replace(folder / FILE)


def read_comparison(folder: Path) -> dict[str, Any] | None:
    """The comparison stored in ``folder``, its rows of the shape the table reads (None when
    the file is absent or not a JSON object); its name is its folder's."""
    try:
        data = json.loads((folder / FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    rows = data.get("runs") if isinstance(data.get("runs"), list) else []
    return {
        **data,
        "name": folder.name,
        "state": _text(data.get("state")),
        "runs": [r for r in map(_clean_row, rows) if r is not None],
    }


def list_comparisons(project: Project) -> list[dict[str, Any]]:
    folder = runs_dir(project)
    if not folder.is_dir():
        return []
    found = [read_comparison(p) for p in folder.iterdir() if (p / FILE).is_file()]
    return sorted((c for c in found if c), key=lambda c: str(c.get("created_at", "")))


def format_table(report: dict[str, Any]) -> str:
    """Recipes down, evaluation sets across: loss in nats per token (bits per byte)."""
    sets = sorted({s for r in report["runs"] for s in r["eval"]})
    head = ["recipe", "train loss", *(f"{s} loss (bpb)" for s in sets), "tokens", "state"]
    rows = [head]
    for r in report["runs"]:
        cells = [r["recipe"], _num(r["train_loss"])]
        for s in sets:
            e = r["eval"].get(s)
            cells.append(f"{e['loss']:.3f} ({e['bpb']:.3f})" if e and e.get("bpb") else "-")
        cells += [f"{r['tokens']:,}", str(r["state"])]
        rows.append(cells)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
