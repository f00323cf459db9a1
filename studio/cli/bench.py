"""``studio bench ...``: measured figures, each next to the reference tool in the same run."""

from __future__ import annotations

from pathlib import Path

import click

from studio.cli.common import cli_task, json_option, print_json


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
@click.option("--limit", type=int, default=None, help="Only the first N pages.")
@click.option("--cv", type=int, default=0, help="K-fold by domain: retrain per fold (honest F1).")
@json_option
def bench_segment(corpus: Path | None, limit: int | None, cv: int, as_json: bool) -> None:
    """F1, precision, recall and pages/s of the studio's segmenter beside trafilatura.

    Example: studio bench segment --corpus ../shared/corpora/wcxb-dev --cv 5
    """
    from studio.bench import segment as seg_bench

    corpus = corpus or default_corpus()
    if not (corpus / "ground-truth").is_dir():
        raise click.ClickException(f"{corpus} is not a WCXB-style corpus (no ground-truth/)")
    with cli_task("segmenting", unit="page") as task:
        result = seg_bench.run(corpus, limit=limit, cv=cv, progress=task.progress)
    if as_json:
        print_json(result)
    else:
        click.echo(seg_bench.format_table(result))
