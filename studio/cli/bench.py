"""``studio bench ...``: measured figures, each next to the reference tool in the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from studio.classify.models import KINDS
from studio.cli.common import PROJECT, IntRange, cli_task, json_option, print_json, threshold_option


def default_corpus() -> Path:
    """The WCXB development split beside the checkout (``../shared``), or $STUDIO_SHARED's."""
    import os

    root = os.environ.get("STUDIO_SHARED")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "shared"
    return base / "corpora" / "wcxb-dev"


@click.group()
def bench() -> None:
    """Benchmarks: each prints a table of the studio beside the reference tool."""


@bench.command("segment")
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A folder of html/NNNN.html.gz + ground-truth/NNNN.json (WCXB layout). "
    "Default: ../shared/corpora/wcxb-dev.",
)
@click.option("--limit", type=IntRange(min=1), default=None, help="Only the first N pages.")
@click.option(
    "--cv",
    type=IntRange(min=0),
    default=0,
    help="K-fold by domain: retrain per fold (honest F1); 0: the shipped model as it is.",
)
@json_option
def bench_segment(corpus: Path | None, limit: int | None, cv: int, as_json: bool) -> None:
    """F1, precision, recall and pages/s of the studio's segmenter beside trafilatura.

    Example: studio bench segment --corpus ../shared/corpora/wcxb-dev --cv 5
    """
    from studio.bench import segment as seg_bench

    if cv == 1:
        raise click.BadParameter("0 (the shipped model) or at least 2 folds", param_hint="--cv")
    corpus = corpus or default_corpus()
    if not (corpus / "ground-truth").is_dir():
        raise click.ClickException(f"{corpus} is not a WCXB-style corpus (no ground-truth/)")
    try:
        with cli_task("segmenting", unit="page") as task:
            result = seg_bench.run(corpus, limit=limit, cv=cv, progress=task.progress)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result)
    else:
        click.echo(seg_bench.format_table(result))


@bench.command("classify")
@click.argument("project", type=PROJECT)
@click.option(
    "--model",
    type=click.Choice(KINDS),
    default=None,
    help="Model kind fitted per feature set (default: the latest version's, else logistic).",
)
@click.option("--limit", type=IntRange(min=1), default=None, help="Only the first N documents.")
@click.option("--repeats", type=IntRange(1, 10), default=3, show_default=True)
@threshold_option
@json_option
def bench_classify(
    project: str,
    model: str | None,
    limit: int | None,
    repeats: int,
    threshold: float,
    as_json: bool,
) -> None:
    """Pages/s of the whole scoring step beside the bare feature extractor, per feature set.

    Each feature set is fitted with the model on the project's labels (no version is written).
    Example: studio bench classify ~/proj --limit 1000
    """
    run_classify_bench(
        project, as_json, model=model, limit=limit, repeats=repeats, threshold=threshold
    )


def run_classify_bench(project: str, as_json: bool, **options: Any) -> None:
    """Run the scoring benchmark on PROJECT with ``options`` and print its table (or JSON)."""
    from studio.bench import classify as clf_bench
    from studio.cli.common import open_project

    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("benchmarking", unit="step") as task:
            result = clf_bench.run(p, store, progress=task.progress, **options)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result)
    else:
        click.echo(clf_bench.format_table(result))
