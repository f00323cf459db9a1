"""CLI commands for training a student model on a recipe: train, compare, sample, recipes, runs.

``studio train`` is also the child process the studio starts: its stdout is one JSON object a
line (progress, evaluations, checkpoints, the end), and SIGTERM saves a checkpoint and exits.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from studio.cli.bench import bench
from studio.cli.common import (
    PROJECT,
    SEED,
    STOPPED,
    FiniteRange,
    IntRange,
    cli_task,
    json_option,
    open_project,
    own_process_group_if,
    print_json,
    stop_on_signals,
)
from studio.progress import Cancelled, Task

SIZE_CHOICES = ["tiny", "10m", "30m", "124m"]  # studio.training.model.SIZES, without torch

size_option = click.option(
    "--size", type=click.Choice(SIZE_CHOICES), default="tiny", show_default=True
)
device_option = click.option(
    "--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True
)
steps_option = click.option("--steps", type=IntRange(1), help="Optimizer steps.")
tokens_option = click.option(
    "--tokens", type=IntRange(1), help="Training tokens instead of --steps."
)
seed_option = click.option("--seed", type=SEED, default=0, show_default=True)
threads_option = click.option(
    "--threads", type=IntRange(1), help="CPU threads for torch (default: all cores)."
)


def _training_errors() -> tuple[type[Exception], ...]:
    from studio.training.checkpoint import CheckpointError
    from studio.training.recipe import RecipeError
    from studio.training.run import RunError
    from studio.training.tokenizer import TokenizerError

    return (RecipeError, RunError, TokenizerError, CheckpointError, ValueError, OSError)


def _reason(exc: Exception) -> str:
    """A training error's message; a file-system error's reason and file ("Read-only file
    system: ~/proj/runs/r1")."""
    from studio.text import os_error_text

    return os_error_text(exc) if isinstance(exc, OSError) else str(exc)


def _check_name(name: str, what: str = "run") -> None:
    """Refuse a name no run folder can have before any path is made of it (a 300-character
    name would otherwise fail deep in the file system, with a traceback)."""
    from studio.training.run import RunError, check_run_name

    try:
        check_run_name(name, what)
    except RunError as exc:
        raise click.ClickException(_reason(exc)) from exc


def _emit_line(line: str) -> None:
    click.echo(line)  # flushed at once: the studio reads it while the job runs


@click.command("train")
@click.argument("project", type=PROJECT)
@click.option("--recipe", default="all", show_default=True, help="Recipe name or file.")
@click.option("--run", "run_name", required=True, help="Run name (a folder under runs/).")
@device_option
@size_option
@steps_option
@tokens_option
@click.option("--resume", is_flag=True, help="Continue the run from its latest checkpoint.")
@click.option(
    "--tokenizer",
    type=click.Path(exists=True, path_type=Path),
    help="A tokenizer.json (or a folder with one) instead of training one on the recipe.",
)
@seed_option
@click.option("--batch-size", type=IntRange(1), help="Sequences per micro-batch.")
@click.option("--accum", type=IntRange(1), help="Micro-batches per optimizer step.")
@click.option("--lr", type=FiniteRange(0, min_open=True), help="Peak learning rate.")
@click.option("--eval-every", type=IntRange(0), help="Steps between evaluations.")
@click.option("--checkpoint-every", type=IntRange(0), help="Steps between checkpoints.")
@threads_option
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="auto: bf16 autocast on a GPU that has it, float32 elsewhere.",
)
@click.option(
    "--compile",
    "compile_",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="torch.compile the model; auto: on a GPU only (falls back to eager if it fails).",
)
@click.option("--own-process-group", is_flag=True, hidden=True, help="Used by the studio.")
@json_option
def train(
    project: str,
    recipe: str,
    run_name: str,
    device: str,
    size: str,
    steps: int | None,
    tokens: int | None,
    resume: bool,
    tokenizer: Path | None,
    seed: int,
    batch_size: int | None,
    accum: int | None,
    lr: float | None,
    eval_every: int | None,
    checkpoint_every: int | None,
    threads: int | None,
    precision: str,
    compile_: str,
    own_process_group: bool,
    as_json: bool,
) -> None:
    """Train a student from scratch on a recipe; stdout is JSON lines (--json is implied).

    Checkpoints land in PROJECT/runs/RUN/checkpoints; SIGTERM or Ctrl-C saves one and exits
    with status 130 (--resume continues the run).
    Example: studio train ~/proj --recipe curated --run curated-10m --size 10m --steps 2000
    """
    if steps and tokens:
        raise click.ClickException("give --steps or --tokens, not both")
    _check_name(run_name)
    own_process_group_if(own_process_group)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    from studio.training.run import RunError, run_lock

    p = open_project(project, create=False)
    options = {
        "batch": batch_size,
        "accum": accum,
        "lr": lr,
        "eval_every": eval_every,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
        "device": device,
        "threads": threads,
        "precision": precision,
        "compile": compile_,
    }
    task = Task()
    with ExitStack() as held:
        try:  # refused before anything is read or written: the run is another process's
            held.enter_context(run_lock(p, run_name))
        except RunError as exc:
            raise click.ClickException(_reason(exc)) from exc
        try:
            with stop_on_signals(task):
                state = _train(
                    p, recipe, run_name, size, steps, tokens, resume, tokenizer, options, task
                )
        except Cancelled:  # stopped while being prepared: --resume prepares it again
            _set_state(p, run_name, "cancelled")
            click.echo(json.dumps({"event": "end", "state": "cancelled", "step": 0}))
            state = "cancelled"
        except click.ClickException:
            raise
        except _training_errors() as exc:
            _fail(p, run_name, _reason(exc))
        except Exception as exc:  # torch: out of memory, a device gone; or a bug: logged in full
            _fail(p, run_name, f"{type(exc).__name__}: {exc}".splitlines()[0], traceback=True)
    if state == "cancelled":  # a script tells a stopped run from a finished one
        raise SystemExit(STOPPED)


def _train(
    p: Any,
    recipe: str,
    run_name: str,
    size: str,
    steps: int | None,
    tokens: int | None,
    resume: bool,
    tokenizer: Path | None,
    options: dict[str, Any],
    task: Task,
) -> str:
    """Prepare (or take up) and train the run; its final state, done or cancelled."""
    from studio.training.run import Run, metrics_writer, open_run, prepare_run, runs_dir, train_run

    ctx = click.get_current_context()
    given = {
        name
        for name in ("recipe", "size", "steps", "tokens", "seed")
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }
    device = options["device"]
    if resume:
        run = open_run(p, run_name)
        asked = run.read("run.json", {})
        for name in given:
            value = {"recipe": recipe, "size": size, "steps": steps, "seed": options["seed"]}.get(
                name, tokens
            )
            if name != "tokens" and asked.get(name) != value:
                raise click.ClickException(
                    f"run {run_name} was started with --{name} {asked.get(name)}; "
                    "--resume continues it as it was"
                )
        if run.path("data", "plan.json").is_file():
            _check_same_batches(run, options)
            return train_run(
                run, emit=metrics_writer(run, _emit_line), task=task, resume=True, device=device
            )
        # stopped while it was being prepared: prepare it again, as it was asked
        recipe, size, steps, options["seed"], tokenizer = _asked_again(run)
        tokens = None
        for leftover in ("run.json", "status.json"):
            run.path(leftover).unlink(missing_ok=True)
    run = Run(runs_dir(p) / run_name)
    if run.path("run.json").exists():
        raise click.ClickException(
            f"run {run_name} exists: add --resume to continue it, or choose another --run"
        )
    emit = metrics_writer(run, _emit_line)  # prepare_run makes the folder before it reports
    prepare_run(
        p,
        recipe,
        run_name,
        size=size,
        steps=steps,
        tokens=tokens,
        tokenizer=tokenizer,
        emit=emit,
        task=task,
        **options,
    )
    return train_run(run, emit=emit, task=task)


def _check_same_batches(run: Any, options: dict[str, Any]) -> None:
    """--resume continues a run as it was prepared: a --batch-size or --accum other than its
    own is refused (it was ignored without a word). A damaged run is train_run's to name."""
    if (options["batch"] is None and options["accum"] is None) or run.damage():
        return
    _, stored = run.config()
    for key, option in (("batch", "--batch-size"), ("accum", "--accum")):
        if options[key] is not None and options[key] != getattr(stored, key):
            raise click.ClickException(
                f"run {run.name} was started with {option} {getattr(stored, key)}; "
                "--resume continues it as it was"
            )


def _asked_again(run: Any) -> tuple[str, str, int, int, Path | None]:
    """What ``run.json`` asked for (recipe, size, steps, seed, tokenizer), to prepare a run
    again that was stopped while being prepared; a run.json that does not say is damaged."""
    from studio.training.run import RunError, is_int

    asked = run.load("run.json") or {}
    recipe, size, steps, seed = (asked.get(k) for k in ("recipe", "size", "steps", "seed"))
    tokenizer = asked.get("tokenizer")
    if not (
        isinstance(recipe, str)
        and isinstance(size, str)
        and is_int(steps)
        and (seed is None or is_int(seed))
        and (tokenizer is None or isinstance(tokenizer, str))
    ):
        raise RunError(
            f"run {run.name} cannot be prepared again: its run.json is damaged (no recipe, "
            "size or steps); train it again under another name"
        )
    return recipe, size, steps, seed or 0, Path(tokenizer) if tokenizer else None


def _set_state(p: Any, run_name: str, state: str, **more: Any) -> Any:
    from studio.training.run import Run, runs_dir

    run = Run(runs_dir(p) / run_name)
    if run.path("run.json").is_file():
        run.set_status(state, **more)
    return run


def _fail(p: Any, run_name: str, message: str, *, traceback: bool = False) -> None:
    """The job's last line says why it failed; the run's status keeps it, and ``error.log`` in
    the run folder the whole traceback of an unexpected error."""
    run = _set_state(p, run_name, "failed", error=message)
    if traceback and run.root.is_dir():
        import traceback as tb

        with run.path("error.log").open("a", encoding="utf-8") as f:
            f.write(tb.format_exc() + "\n")
    click.echo(json.dumps({"event": "end", "state": "failed", "error": message}))
    raise click.ClickException(message)


@click.command("compare")
@click.argument("project", type=PROJECT)
@click.option("--recipes", required=True, help="Two or more recipe names, comma-separated.")
@click.option("--name", default=None, help="Comparison name (default: the recipes joined).")
@size_option
@steps_option
@tokens_option
@seed_option
@device_option
@click.option("--batch-size", type=IntRange(1), help="Sequences per micro-batch.")
@click.option("--eval-every", type=IntRange(0), help="Steps between evaluations.")
@threads_option
@click.option("--own-process-group", is_flag=True, hidden=True, help="Used by the studio.")
@json_option
def compare(
    project: str,
    recipes: str,
    name: str | None,
    size: str,
    steps: int | None,
    tokens: int | None,
    seed: int,
    device: str,
    batch_size: int | None,
    eval_every: int | None,
    threads: int | None,
    own_process_group: bool,
    as_json: bool,
) -> None:
    """Train the same model, tokens and seed on each recipe in turn; table the eval losses.

    Every run shares one tokenizer and the first recipe's held-out split and eval sets. With
    --json, stdout is the runs' JSON lines and a last {"event": "compare"} line.
    Example: studio compare ~/proj --recipes curated,raw --size tiny --steps 300
    """
    from studio.training.compare import compare_recipes, format_table

    names = [r.strip() for r in recipes.split(",") if r.strip()]
    if steps and tokens:
        raise click.ClickException("give --steps or --tokens, not both")
    if name is not None:
        _check_name(name, "comparison")
    own_process_group_if(own_process_group)
    p = open_project(project, create=False)
    task = Task()
    emit = (lambda e: click.echo(json.dumps(e, default=str))) if as_json else _progress_printer()
    try:
        with stop_on_signals(task):
            report = compare_recipes(
                p,
                names,
                name=name or "-vs-".join(names),
                size=size,
                steps=steps,
                tokens=tokens,
                seed=seed,
                device=device,
                emit=emit,
                task=task,
                batch=batch_size,
                eval_every=eval_every,
                threads=threads,
            )
    except Cancelled as exc:
        raise click.ClickException("cancelled: run the same command again to resume") from exc
    except _training_errors() as exc:
        raise click.ClickException(_reason(exc)) from exc
    if not as_json:
        click.echo(format_table(report))
    if report.get("state") == "cancelled":  # stopped, as a shell tells it from finished
        raise SystemExit(STOPPED)


def _progress_printer():  # type: ignore[no-untyped-def]
    """One short line on stderr per run start, evaluation and end (the table goes to stdout)."""

    def emit(event: dict[str, Any]) -> None:
        kind, run = event.get("event"), event.get("run", "")
        if kind == "eval" and event.get("eval"):
            losses = ", ".join(f"{k} {v['loss']:.3f}" for k, v in event["eval"].items())
            click.echo(f"{run} step {event['step']}: {losses}", err=True)
        elif kind in ("start", "end", "prepare"):
            detail = event.get("state") or event.get("message") or ""
            click.echo(f"{run} {kind} {detail}".strip(), err=True)

    return emit


@click.command("sample")
@click.argument("project", type=PROJECT)
@click.option("--run", "run_name", required=True, help="The run to sample from.")
@click.option("--step", type=int, default=None, help="Checkpoint step (default: the latest).")
@click.option("--prompt", default="", help="Text the student continues.")
@click.option("--tokens", "max_tokens", type=IntRange(1, 4096), default=120)
@click.option("--temperature", type=FiniteRange(0, 5), default=0.8, show_default=True)
@click.option("--top-k", type=IntRange(0), default=40, show_default=True)
@seed_option
@json_option
def sample(
    project: str,
    run_name: str,
    step: int | None,
    prompt: str,
    max_tokens: int,
    temperature: float,
    top_k: int,
    seed: int,
    as_json: bool,
) -> None:
    """Print what the student writes after PROMPT, from any checkpoint of a run.

    Example: studio sample ~/proj --run curated-10m --prompt "Photosynthesis is"
    """
    from studio.training.run import open_run
    from studio.training.sample import generate, load_student, unread_prompt_tokens

    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:  # bytes the terminal could not decode reach us as surrogates
        raise click.BadParameter("not valid UTF-8 text", param_hint="--prompt") from None
    p = open_project(project, create=False)
    try:
        student = load_student(open_run(p, run_name), step)
    except _training_errors() as exc:
        raise click.ClickException(_reason(exc)) from exc
    unread = unread_prompt_tokens(student, prompt)
    if unread:
        click.echo(
            f"note: the student reads the last {student.context} tokens; the first {unread:,} "
            "of the prompt were not seen",
            err=True,
        )
    text = generate(
        student, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k, seed=seed
    )
    if as_json:
        print_json(
            {
                "run": run_name,
                "step": student.step,
                "prompt": prompt,
                "prompt_tokens_unread": unread,
                "text": text,
            }
        )
    else:
        click.echo(prompt + text)


@click.group("recipe")
def recipe() -> None:
    """Training recipes: list them, count what one selects, start one from a preset."""


@recipe.command("list")
@click.argument("project", type=PROJECT)
@json_option
def recipe_list(project: str, as_json: bool) -> None:
    """List the recipes a project can train on: built-in, presets and its own.

    Example: studio recipe list ~/proj
    """
    from studio.training.recipe import RecipeError, read_recipe, recipe_paths

    p = open_project(project, create=False)
    rows = []
    for name, (origin, path) in recipe_paths(p.root).items():
        try:
            description = read_recipe(path).description if path else "every document"
        except RecipeError as exc:
            description = f"unreadable: {exc}"
        rows.append(
            {"name": name, "origin": origin, "path": str(path or ""), "description": description}
        )
    if as_json:
        print_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<22} {r['origin']:<9} {r['description']}")


@recipe.command("show")
@click.argument("project", type=PROJECT)
@click.argument("name")
@click.option("--tokens", "run_tokens", type=IntRange(1), help="Show shares at this budget.")
@click.option("--tokenizer", type=click.Path(exists=True, path_type=Path), help="Count exactly.")
@json_option
def recipe_show(
    project: str, name: str, run_tokens: int | None, tokenizer: Path | None, as_json: bool
) -> None:
    """Show a recipe and, per source and eval set, its documents and tokens.

    Tokens are estimated from characters unless --tokenizer counts them on a sample.
    Example: studio recipe show ~/proj curated --tokens 5000000
    """
    from studio.training.counts import recipe_counts

    p = open_project(project, create=False)
    try:
        with p.store(readonly=True) as store:
            result = recipe_counts(p.root, store, name, run_tokens=run_tokens, tokenizer=tokenizer)
    except _training_errors() as exc:
        raise click.ClickException(_reason(exc)) from exc
    if as_json:
        print_json(result)
        return
    click.echo(f"{result['recipe']['name']}: {result['recipe']['description']}")
    for row in result["counts"]:
        note = f"  ({row['note']})" if row["note"] else ""
        if row["role"] == "eval":
            click.echo(
                f"  eval   {row['name']:<20} {row['heldout_documents']:>7,} held-out docs "
                f"{row['heldout_tokens']:>12,} tokens{note}"
            )
            continue
        share = f"  {row['mix_share']:.0%} of the mix" if row.get("mix_share") is not None else ""
        click.echo(
            f"  source {row['name']:<20} {row['documents']:>7,} docs "
            f"{row['tokens']:>12,} tokens  (held out: {row['heldout_documents']:,}){share}{note}"
        )


@recipe.command("new")
@click.argument("project", type=PROJECT)
@click.argument("name")
@click.option("--from", "base", default="all", show_default=True, help="Recipe to start from.")
def recipe_new(project: str, name: str, base: str) -> None:
    """Copy a recipe (a preset, or the built-in `all`) into PROJECT/recipes/NAME.toml to edit.

    Example: studio recipe new ~/proj my-mix --from phi3-mini
    """
    from studio.training.recipe import check_recipe_name, load_recipe, save_recipe

    p = open_project(project, create=False)
    try:
        check_recipe_name(name)  # before a path is made of it
        found = load_recipe(p.root, base)
        if name in ("all",) or (p.root / "recipes" / f"{name}.toml").exists():
            raise click.ClickException(f"a recipe {name} exists already in the project")
        found.name = name
        click.echo(save_recipe(p.root, found))
    except _training_errors() as exc:
        raise click.ClickException(_reason(exc)) from exc


@click.command("runs")
@click.argument("project", type=PROJECT)
@json_option
def runs(project: str, as_json: bool) -> None:
    """List the project's training runs with their state, step and last losses.

    Example: studio runs ~/proj --json
    """
    from studio.training.compare import run_summary
    from studio.training.run import list_runs

    p = open_project(project, create=False)
    rows = []
    for run in list_runs(p):
        row = run_summary(run)
        row.pop("curve")
        rows.append({**row, "steps": run.read("run.json", {}).get("steps")})
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"no training runs in {p.root} yet (start one with `studio train`)")
    for r in rows:
        losses = ", ".join(f"{k} {v['loss']:.3f}" for k, v in r["eval"].items())
        train_loss = "-" if r["train_loss"] is None else f"{r['train_loss']:.3f}"
        click.echo(
            f"{r['run']:<28} {r['recipe'] or '?':<16} {r['state'] or '?':<10} "
            f"step {r['step'] or 0}/{r['steps'] or '?'}  train {train_loss}  {losses}"
        )


@bench.command("train")
@size_option
@click.option("--steps", type=IntRange(1), default=10, show_default=True, help="Per block.")
@click.option("--blocks", type=IntRange(1, 1000), default=10, show_default=True)
@device_option
@threads_option
@json_option
def bench_train(
    size: str, steps: int, blocks: int, device: str, threads: int | None, as_json: bool
) -> None:
    """Tokens/s of the studio's training loop beside a bare nanoGPT-style loop, same model/data.

    The two run in alternating blocks of --steps steps (target: studio >= 0.95 of reference).
    Example: studio bench train --size tiny --steps 10 --blocks 10
    """
    from studio.bench import train as train_bench

    with cli_task("benchmarking", unit="block") as task:
        result = train_bench.run(
            size=size, steps=steps, blocks=blocks, device=device, threads=threads, task=task
        )
    if as_json:
        print_json(result)
    else:
        click.echo(train_bench.format_table(result))


COMMANDS: list[click.Command] = [train, compare, sample, recipe, runs]
