"""Commands over the educational-value classifier: train it, list its versions, score the corpus."""

from __future__ import annotations

from typing import Any

import click

from studio.classify.features import FEATURE_SETS
from studio.classify.models import KINDS
from studio.cli.common import cli_task, json_option, open_project, print_json, threshold_option

FEATURE_CHOICES = ["auto", *FEATURE_SETS]
MODEL_CHOICES = ["auto", *KINDS]


@click.group("classifier")
def classify() -> None:
    """The educational-value classifier: train on the labels, list, export and import versions."""


@classify.command("train")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--features",
    type=click.Choice(FEATURE_CHOICES),
    default="auto",
    show_default=True,
    help="Feature set; auto cross-validates every one.",
)
@click.option(
    "--model",
    type=click.Choice(MODEL_CHOICES),
    default="auto",
    show_default=True,
    help="Model; auto cross-validates every one.",
)
@threshold_option
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@json_option
def classify_train(
    project: str, features: str, model: str, threshold: float, folds: int, as_json: bool
) -> None:
    """Cross-validate feature sets x models on the labels, keep the best as a new version.

    The best has the highest F1 at the keep threshold (Spearman breaks near-ties).
    Example: studio classifier train ~/proj --threshold 3
    """
    from studio.classify.train import TrainError, train_classifier
    from studio.progress import Cancelled

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
                task=task,
            )
    except (TrainError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled: no version was stored") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(_cv_table(report.table, threshold))
    click.echo(f"\nchosen: {report.reason}")
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
        "accuracy",
        "macro F1",
    )
    rows = [head]
    for r in table:
        m = r["metrics"]
        rows.append(
            (
                r["features"],
                r["model"],
                *(
                    "-" if m[k] is None else f"{m[k]:.3f}"
                    for k in ("f1_keep", "spearman", "roc_auc", "accuracy", "macro_f1")
                ),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


@classify.command("versions")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@json_option
def classify_versions(project: str, as_json: bool) -> None:
    """List the trained classifier versions with their CV figures and label hash.

    Example: studio classifier versions ~/proj
    """
    p = open_project(project, create=False)
    with p.store() as store:
        versions = store.classifier_versions()
    if as_json:
        print_json(versions)
        return
    if not versions:
        click.echo("no classifier trained yet: run `studio classifier train`")
    for v in versions:
        m = v["metrics"]
        click.echo(
            f"{v['id']}  {v['created_at']}  keep>={v['threshold']:g}  F1 {m['f1_keep']}  "
            f"Spearman {m['spearman']}  {v['n_labels']} labels ({v['label_hash'][:12]})  "
            f"scored {v['scored']}"
        )


@classify.command("export")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--model", "version", default=None, help="Version to export (default: the latest).")
def classify_export(project: str, file: str, version: str | None) -> None:
    """Write a trained version to FILE: one zip with its files, a manifest and checksums.

    Example: studio classifier export ~/proj edu.zip --model 0002-tfidf-logistic
    """
    from pathlib import Path

    from studio.classify.share import ShareError, export_version

    p = open_project(project, create=False)
    try:
        with p.store() as store:
            manifest = export_version(p, store, Path(file), version)
    except ShareError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {file}: {exc}") from exc
    click.echo(f"exported {manifest['version']} -> {file}")


@classify.command("import")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
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
        with p.store() as store:
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
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--features", type=click.Choice(FEATURE_CHOICES[1:]), default="tfidf", show_default=True
)
@click.option(
    "--model", type=click.Choice(MODEL_CHOICES[1:]), default="logistic", show_default=True
)
@threshold_option
@click.option(
    "--start",
    type=click.IntRange(2),
    default=20,
    show_default=True,
    help="Random labels to start from.",
)
@click.option(
    "--step", type=click.IntRange(1), default=20, show_default=True, help="Labels added per round."
)
@click.option(
    "--folds",
    type=click.IntRange(2, 20),
    default=5,
    show_default=True,
    help="Held-out folds the curves are averaged over.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def classify_simulate(
    project: str,
    features: str,
    model: str,
    threshold: float,
    start: int,
    step: int,
    folds: int,
    seed: int,
    as_json: bool,
) -> None:
    """Simulate active learning on the labels: uncertainty sampling against random sampling.

    Held-out F1 at the keep threshold after each batch of labels, for both ways of choosing
    the next pages, and the share of labels active learning needs to match random's final F1.
    Example: studio classifier simulate ~/proj --features tfidf --start 20 --step 20
    """
    from studio.classify.simulate import format_table, simulate
    from studio.progress import Cancelled

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


@click.command("score")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option("--model", "version", default=None, help="Classifier version (default: the latest).")
@json_option
def score(project: str, version: str | None, as_json: bool) -> None:
    """Score every document with a classifier version; resumes where a run stopped.

    Example: studio score ~/proj --model 0001-tfidf-logistic
    """
    from studio.classify.score import keep_summary, score_documents

    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("scoring", unit="doc") as task:
            report = score_documents(p, store, version, task=task)
            summary = keep_summary(store, report.version)
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    if as_json:
        print_json({**report.to_dict(), "keep": summary.to_dict()})
        return
    click.echo(
        f"scored {report.scored} documents with {report.version} "
        f"({report.skipped} scored before, {report.total} in all); {summary.text}"
    )


COMMANDS = [classify, score]
