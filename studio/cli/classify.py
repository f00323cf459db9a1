"""Commands over the educational-value classifier: train it, list its versions, score the corpus."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from studio.classify.features import ALL_SETS
from studio.classify.models import KINDS
from studio.cli.bench import bench
from studio.cli.common import (
    PROJECT,
    ROW_ID,
    SEED,
    STOPPED,
    IntRange,
    cli_task,
    json_option,
    open_project,
    own_process_group_if,
    print_json,
    sigterm_as_ctrl_c,
    stop_on_signals,
    threshold_option,
    version_option,
)
from studio.progress import Task

FEATURE_CHOICES = ["auto", *ALL_SETS]
MODEL_CHOICES = ["auto", *KINDS]
ENGINE_CHOICES = ["local", "processes", "ray"]  # studio.engines.ENGINES, without importing it

embedding_option = click.option(
    "--embedding",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A sentence-transformers or Hugging Face model folder for the minilm features "
    "(default: the shipped all-MiniLM-L6-v2).",
)


@click.group("classifier")
def classify() -> None:
    """The educational-value classifier: train on the labels, list, export and import versions."""


@classify.command("train")
@click.argument("project", type=PROJECT)
@click.option(
    "--features",
    type=click.Choice(FEATURE_CHOICES),
    default="auto",
    show_default=True,
    help="Feature set; auto cross-validates every fast one, and the transformer (minilm) "
    "sets when asked or cached.",
)
@click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES),
    default="auto",
    show_default=True,
    help="Model; auto cross-validates every one.",
)
@threshold_option
@click.option("--folds", type=IntRange(2, 20), default=5, show_default=True)
@click.option(
    "--embed/--no-embed",
    default=None,
    help="Compare the transformer embedding sets in auto (slow on a CPU). Default: only when "
    "every labelled page's vector is cached, or --embedding is given.",
)
@embedding_option
@json_option
def classify_train(
    project: str,
    features: str,
    model: str,
    threshold: float,
    folds: int,
    embed: bool | None,
    embedding: str | None,
    as_json: bool,
) -> None:
    """Cross-validate feature sets x models on the labels, keep the best as a new version.

    The best has the highest F1 at the keep threshold; Spearman decides between those within
    one standard error of it, and the cheaper features between those whose Spearman is within
    0.01. Example: studio classifier train ~/proj --threshold 3 --embed
    """
    from studio.classify.train import TrainError, train_classifier
    from studio.progress import Cancelled
    from studio.text import os_error_text

    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("training", unit="step") as task:
            report = train_classifier(
                p,
                store,
                features=features,
                model=model,
                threshold=threshold,
                folds=folds,
                embed=embed,
                embedding=embedding,
                task=task,
            )
    except (TrainError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:  # the disk filled while the version was written
        raise click.ClickException(f"no version was stored: {os_error_text(exc)}") from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled: no version was stored") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(_cv_table(report.table, threshold))
    click.echo(f"\nchosen: {report.reason}")
    for note in report.notes:
        click.echo(note)
    curve = ", ".join(f"{pt['labels']}: {pt['f1_keep']}" for pt in report.learning_curve)
    click.echo(f"learning curve (labels: CV F1): {curve}")
    click.echo(f"stored as version {report.version['id']} ({report.version['path']})")


def _cv_table(table: list[dict[str, Any]], threshold: float) -> str:
    head = (
        "features",
        "model",
        f"F1 keep>={threshold:g}",
        "Spearman",
        "ROC-AUC",
        "keep accuracy",
    )
    rows = [head]
    for r in table:
        m = r["metrics"]
        rows.append(
            (
                r["features"],
                r["model"],
                *(
                    "-" if m.get(k) is None else f"{m[k]:.3f}"
                    for k in ("f1_keep", "spearman", "roc_auc", "keep_accuracy")
                ),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


@classify.command("versions")
@click.argument("project", type=PROJECT)
@json_option
def classify_versions(project: str, as_json: bool) -> None:
    """List the trained classifier versions with their CV figures and label hash.

    Example: studio classifier versions ~/proj
    """
    from studio.classify.versions import ClassifierFileError, read_meta

    p = open_project(project, create=False)
    with p.store() as store:
        versions = store.classifier_versions()
    for v in versions:  # files are the curator's to edit or delete: a damaged one is marked
        try:
            read_meta(p.root / v["path"], v["id"])
            v["damaged"] = None
        except ClassifierFileError as exc:
            v["damaged"] = str(exc)
    if as_json:
        print_json(versions)
        return
    if not versions:
        click.echo("no classifier trained yet: run `studio classifier train`")
    for v in versions:
        m = v["metrics"] if isinstance(v["metrics"], dict) else {}
        click.echo(
            f"{v['id']}  {v['created_at']}  keep>={v['threshold']:g}  F1 {m.get('f1_keep')}  "
            f"Spearman {m.get('spearman')}  {v['n_labels']} labels ({v['label_hash'][:12]})  "
            f"scored {v['scored']}"
        )
        if v["damaged"]:
            click.echo(f"  DAMAGED, cannot be used: {v['damaged']}")


@classify.command("explain")
@click.argument("project", type=PROJECT)
@click.argument("doc_id", type=ROW_ID)
@version_option()
@click.option(
    "--top",
    type=IntRange(1, 200),
    default=8,
    show_default=True,
    help="Features to list per block.",
)
@json_option
def classify_explain(
    project: str, doc_id: int, version: str | None, top: int, as_json: bool
) -> None:
    """Why a page got its score: the features that moved it most, with their signed shares.

    Linear versions (ridge, blend, logistic) only; the blocks' shares and the intercept add up
    to the score. Example: studio classifier explain ~/proj 42 --top 8
    """
    from studio.classify.explain import ExplainError, explain
    from studio.classify.features import load_docs
    from studio.classify.versions import load_classifier

    p = open_project(project, create=False)
    with p.store() as store:
        if store.document(doc_id) is None:
            raise click.ClickException(f"no document {doc_id} in {project}")
        try:
            classifier = load_classifier(p, store, version)
            why = explain(classifier, load_docs(store, [doc_id])[0], store, top)
        except LookupError as exc:
            raise click.ClickException(str(exc.args[0])) from exc
        except ExplainError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(why.to_dict())
        return
    verdict = "kept" if why.keep else "dropped"
    click.echo(
        f"document {doc_id}: {why.measure} {why.output:.2f} with {why.version} "
        f"({verdict}: the cut is {why.cut:.2f})"
    )
    click.echo(f"  {why.intercept:+.3f}  intercept")
    for block in why.blocks:
        click.echo(f"  {block.total:+.3f}  {block.name}")
    for block in why.blocks:
        if block.parts:
            click.echo(f"{block.name}: what moved it most")
        for name, value in block.parts:
            click.echo(f"  {value:+.3f}  {name}")


@classify.command("export")
@click.argument("project", type=PROJECT)
@click.argument("file", type=click.Path(dir_okay=False))
@version_option("Version to export (default: the latest).")
def classify_export(project: str, file: str, version: str | None) -> None:
    """Write a trained version to FILE: one zip with its files, a manifest and checksums.

    Example: studio classifier export ~/proj edu.zip --model 0002-tfidf-logistic
    """
    from pathlib import Path

    from studio.classify.share import ShareError, export_version

    p = open_project(project, create=False)
    try:
        with sigterm_as_ctrl_c(), p.store() as store:
            manifest = export_version(p, store, Path(file), version)
    except ShareError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc}") from exc
    click.echo(f"exported {manifest['version']} -> {file}")


@classify.command("import")
@click.argument("project", type=PROJECT)
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option
def classify_import(project: str, file: str, as_json: bool) -> None:
    """Add a version exported from another project, after checking every file in it.

    Nothing is written unless the names, sizes, checksums and the model itself check out.
    Example: studio classifier import ~/other edu.zip
    """
    from pathlib import Path

    from studio.classify.share import ShareError, import_version

    p = open_project(project, create=False)
    try:
        with sigterm_as_ctrl_c(), p.store() as store:
            report = import_version(p, store, Path(file))
    except ShareError as exc:
        raise click.ClickException(f"nothing imported: {exc}") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot import {file}: {exc}") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(report.text)


@classify.command("simulate")
@click.argument("project", type=PROJECT)
@click.option(
    "--features",
    type=click.Choice(FEATURE_CHOICES[1:]),
    default=None,
    help="Feature set (default: the latest version's, else tfidf).",
)
@embedding_option
@click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES[1:]),
    default=None,
    help="Model (default: the latest version's, else ridge).",
)
@threshold_option
@click.option(
    "--start",
    type=IntRange(2),
    default=20,
    show_default=True,
    help="Random labels to start from.",
)
@click.option(
    "--step",
    type=IntRange(1),
    default=None,
    help="Labels added per round (default: 20, or about a 40th of a larger pool).",
)
@click.option(
    "--folds",
    type=IntRange(2, 20),
    default=5,
    show_default=True,
    help="Held-out folds the curves are averaged over.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--seeds",
    type=IntRange(1, 20),
    default=1,
    show_default=True,
    help="Repeats (seed, seed+1, ...) the curves are averaged over; one seed's crossing is noisy.",
)
@json_option
def classify_simulate(
    project: str,
    features: str | None,
    model: str | None,
    threshold: float,
    start: int,
    step: int | None,
    folds: int,
    seed: int,
    seeds: int,
    embedding: str | None,
    as_json: bool,
) -> None:
    """Simulate active learning on the labels: uncertainty sampling against random sampling.

    Held-out F1 at the keep threshold after each batch of labels, for both ways of choosing
    the next pages, and the share of labels active learning needs to match random's final F1.
    Example: studio classifier simulate ~/proj --features tfidf --start 20 --step 20
    """
    from studio.classify.simulate import format_table, simulate
    from studio.progress import Cancelled

    if seed + seeds - 1 > SEED.max:  # the repeats use seed, seed+1, ...
        raise click.BadParameter(
            f"with --seeds {seeds} the last seed is {seed + seeds - 1:,}: at most {SEED.max:,}",
            param_hint="--seed",
        )
    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("simulating", unit="step") as task:
            result = simulate(
                store,
                features=features,
                model=model,
                threshold=threshold,
                start=start,
                step=step,
                folds=folds,
                seed=seed,
                seeds=seeds,
                embedding=embedding,
                task=task,
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled") from exc
    if as_json:
        print_json(result)
        return
    click.echo(format_table(result))


@classify.command("embed")
@click.argument("project", type=PROJECT)
@click.option("--all", "every", is_flag=True, help="Every page, not only the labelled ones.")
@embedding_option
@json_option
def classify_embed(project: str, every: bool, embedding: str | None, as_json: bool) -> None:
    """Embed pages with the transformer and cache their vectors in the project.

    Resumable batch by batch. Once every labelled page is cached, training compares the
    transformer sets without being asked; with --all, scoring with them reads the cache too.
    Example: studio classifier embed ~/proj --embedding ~/models/bge-small-en
    """
    from studio.classify.embedding import embed_pages
    from studio.progress import Cancelled

    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("embedding", unit="page") as task:
            report = embed_pages(store, every=every, embedding=embedding, task=task)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled: the pages embedded so far are cached") from exc
    if as_json:
        print_json(report)
        return
    click.echo(report["text"])


def _cluster_address(value: str | None) -> str | None:
    """An empty --address is a shell variable left unset, not a request for a local Ray."""
    if value is not None and not value.strip():
        raise click.BadParameter(
            "name the cluster (ray://host:10001, host:6379 or auto), not an empty string; "
            "leave --address out for a Ray on this machine"
        )
    return value


@click.command("score")
@click.argument("project", type=PROJECT)
@version_option()
@click.option(
    "--engine",
    type=click.Choice(ENGINE_CHOICES),
    default="local",
    show_default=True,
    help="local: this process; processes: Parquet shards on local worker processes; "
    "ray: Parquet shards as Ray tasks.",
)
@click.option(
    "--address",
    default=None,
    callback=lambda _ctx, _param, value: _cluster_address(value),
    help="The Ray cluster (ray://host:10001, host:6379 or auto); default: a local Ray.",
)
@click.option(
    "--workers", type=IntRange(1, 512), default=None, help="Worker processes or local CPUs."
)
@click.option(
    "--shard-rows",
    type=IntRange(1),
    default=None,
    help="Documents per shard (default 2000).",
)
@click.option(
    "--progress-json",
    is_flag=True,
    help="Stream JSON lines on stdout: progress events, then one end (or error) event.",
)
@click.option("--own-process-group", is_flag=True, hidden=True, help="Used by the studio.")
@json_option
def score(
    project: str,
    version: str | None,
    engine: str,
    address: str | None,
    workers: int | None,
    shard_rows: int | None,
    progress_json: bool,
    own_process_group: bool,
    as_json: bool,
) -> None:
    """Score every document with a classifier version; resumes where a run stopped.

    With --engine ray the documents go to Parquet shards under runs/ and are scored as Ray
    tasks; finished shards are skipped when a run is resumed. SIGTERM or Ctrl-C stops between
    batches (shards): the scores written so far stay, and the next run goes on from there; the
    exit status of a stopped run is 130 (with --progress-json the end line says "cancelled").
    With --progress-json the command streams {"event": "progress", "done", "total", "message"}
    lines, then {"event": "end", "state": "done" | "cancelled", ...the report} or
    {"event": "error", "message"} with a non-zero exit.
    Example: studio score ~/proj --model 0001-tfidf-logistic --engine ray --address auto
    """
    own_process_group_if(own_process_group)
    try:
        report, summary = _score(
            project, version, engine, address, workers, shard_rows, progress_json
        )
    except click.ClickException as exc:
        if progress_json:
            _json_line({"event": "error", "message": exc.message})
        raise
    except Exception as exc:
        if not progress_json:
            raise
        import traceback

        traceback.print_exc()  # to stderr: the studio shows it as the job's log
        _json_line({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        raise SystemExit(1) from exc
    if progress_json:
        state = "cancelled" if report is None or report.cancelled else "done"
        body = {} if report is None else {**report.to_dict(), "keep": summary.to_dict()}
        _json_line({"event": "end", "state": state, **body})
        return
    if report is None:
        raise click.ClickException("cancelled: the scores written so far stay; run it again")
    if as_json:
        print_json({**report.to_dict(), "keep": summary.to_dict()})
    else:
        _echo_scored(report, summary)
    if report.cancelled:  # a script must not take a stopped run for a finished one
        raise SystemExit(STOPPED)


def _echo_scored(report: Any, summary: Any) -> None:
    shards = (
        f", {report.shards} shards ({report.shards_skipped} finished before)"
        if report.shards
        else ""
    )
    cancelled = " (stopped: run it again to go on)" if report.cancelled else ""
    click.echo(
        f"scored {report.scored} documents with {report.version} on {report.engine}{shards} "
        f"({report.skipped} scored before, {report.total} in all){cancelled}; {summary.text}"
    )


def _score(
    project: str,
    version: str | None,
    engine: str,
    address: str | None,
    workers: int | None,
    shard_rows: int | None,
    progress_json: bool,
) -> tuple[Any, Any]:
    """The report and the keep summary; (None, None) when a stop request ended the run on an
    error (a worker stopped by the same signal): what was committed stays, a rerun resumes."""
    from studio.classify.score import keep_summary
    from studio.engines import make_engine
    from studio.engines.shards import ShardError
    from studio.progress import Cancelled
    from studio.project import ProjectError

    p = open_project(project, create=False)
    try:  # before a local Ray or worker processes start: their scores could not be kept
        p.check_writable("the scores", *(["runs"] if engine != "local" else []))
    except ProjectError as exc:
        raise click.ClickException(str(exc)) from exc
    tracker = _json_task() if progress_json else cli_task("scoring", unit="doc")
    task: Task | None = None
    try:
        with (
            p.store() as store,
            tracker as task,
            stop_on_signals(task),
            make_engine(engine, address=address, workers=workers, shard_rows=shard_rows) as runner,
        ):
            report = runner.score(p, store, version, task=task)
            return report, keep_summary(store, report.version)
    except Cancelled:  # stopped while the shards were written: the next run writes them again
        return None, None
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    except (ValueError, ConnectionError, ShardError, OSError) as exc:
        if task is not None and task.cancelled():
            return None, None
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _json_task() -> Iterator[Task]:
    """A task that writes a progress line per step the core reports: at most one per
    thousandth of the run and one per change of message, so a large corpus does not flood
    the reader."""
    last: list[Any] = [None]

    def on_progress(done: int, total: int, message: str) -> None:
        key = (1000 * done // total if total else 0, message)
        if key != last[0] or done == total:
            last[0] = key
            _json_line({"event": "progress", "done": done, "total": total, "message": message})

    yield Task(on_progress)


def _json_line(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, default=str) + "\n")
    sys.stdout.flush()


@bench.command("embedding")
@click.argument("project", type=PROJECT)
@click.option(
    "--features",
    "feature_sets",
    type=click.Choice(ALL_SETS),
    multiple=True,
    help="Feature sets to measure (repeatable; default: minilm and tfidf+minilm).",
)
@embedding_option
@click.option(
    "--model",
    type=click.Choice(KINDS),
    default=None,
    help="Model kind fitted per feature set (default: the latest version's, else logistic).",
)
@click.option("--limit", type=IntRange(1), default=50, show_default=True)
@click.option("--repeats", type=IntRange(1, 10), default=1, show_default=True)
@threshold_option
@json_option
def bench_embedding(
    project: str,
    feature_sets: tuple[str, ...],
    embedding: str | None,
    model: str | None,
    limit: int,
    repeats: int,
    threshold: float,
    as_json: bool,
) -> None:
    """Pages/s of scoring with the transformer sets beside the bare extractor and
    sentence-transformers, on the first --limit pages (slow on a CPU: keep it small).

    The same measurement as `studio bench classify`, for the transformer feature sets.
    Example: studio bench embedding ~/proj --limit 50 --features minilm
    """
    from studio.classify.features import EMBEDDING_SETS
    from studio.cli.bench import run_classify_bench

    run_classify_bench(
        project,
        as_json,
        model=model,
        features=list(feature_sets or EMBEDDING_SETS),
        embedding=embedding,
        limit=limit,
        repeats=repeats,
        threshold=threshold,
    )


COMMANDS = [classify, score]
