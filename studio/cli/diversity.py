"""CLI commands for diversity of document sets and mode-collapse alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from studio.cli.bench import bench, default_corpus
from studio.cli.common import PROJECT, IntRange, cli_task, json_option, open_project, print_json
from studio.diversity.sets import GROUPINGS

SHOWN = (
    ("distinct_2", "dist-2"),
    ("compression_xz", "xz"),
    ("cross_doc_repetition", "x-doc rep"),
    ("vendi", "Vendi"),
    ("cluster_entropy", "topic H"),
    ("recall", "recall"),
    ("ppl_p90", "ppl p90"),
    ("rare_types", "rare"),
    ("repeated_openings", "openings"),
    ("near_duplicates", "near-dup"),
)


@click.command("diversity")
@click.argument("project", type=PROJECT)
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="round",
    show_default=True,
    help="Sets to compare: generation round, batch, plan cell, teacher, source, classifier "
    "score band, document kind, or the documents a --search matches.",
)
@click.option("--search", default="", help="With --by query: full-text search of the set.")
@click.option(
    "--block",
    type=IntRange(10, 10_000),
    default=200,
    show_default=True,
    help="Documents per block (fewer when the smallest set is smaller).",
)
@json_option
def diversity(project: str, by: str, search: str, block: int, as_json: bool) -> None:
    """Diversity of document sets against the real pages, with mode-collapse alarms.

    Every measure family (lexical, semantic, tails, templates, near-duplicates) is computed for
    each set and for random blocks of the real (non-synthetic) pages; an alarm names the kind of
    collapse (topic loss, template collapse, tail loss) and the documents that show it.
    Example: studio diversity ~/proj --by round --json
    """
    from studio.diversity.analysis import Options
    from studio.diversity.project import analyze
    from studio.diversity.sets import SetError
    from studio.progress import Cancelled
    from studio.store import DocumentQuery

    if search and by != "query":  # it would be ignored, and the sets not what was meant
        raise click.UsageError("--search chooses the set of --by query: add --by query")
    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("measuring", unit="step") as task:
            report = analyze(
                p,
                store,
                by,
                query=DocumentQuery(search=search),
                options=Options(block=block),
                task=task,
            )
    except (SetError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(format_report(report.to_dict()))


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def format_report(data: dict[str, Any]) -> str:
    head = f"{'set':<24} {'docs':>6} " + " ".join(f"{label:>9}" for _, label in SHOWN)
    lines = [
        f"blocks of {data['block']} documents, windows of {data['window']:,} words; "
        "real pages: median of random blocks [5th–95th percentile]",
        head,
        "-" * len(head),
    ]
    real = data["real"]
    lines.append(
        f"{'real pages':<24} {real['documents']:>6} "
        + " ".join(f"{_cell(real['metrics'].get(k)):>9}" for k, _ in SHOWN)
    )
    band = data["band"]
    for edge in ("p5", "p95"):
        cells = " ".join(f"{_cell(band[k][edge]) if k in band else '—':>9}" for k, _ in SHOWN)
        lines.append(f"{'  band ' + edge:<31}{cells}")
    for s in data["sets"]:
        values = " ".join(f"{_cell(s['metrics'].get(k)):>9}" for k, _ in SHOWN)
        lines.append(f"{s['name'][:24]:<24} {s['documents']:>6} {values}  {s['note']}".rstrip())
    lines.append("")
    if not data["alarms"]:
        lines.append("no alarm: every set stays within reach of the real pages")
    for a in data["alarms"]:
        docs = ", ".join(str(d) for d in a["documents"][:8])
        lines.append(f"ALARM {a['set']}: {a['message']}\n      documents: {docs}")
    lines.extend(f"note: {n}" for n in data["notes"])
    return "\n".join(lines)


@bench.command("diversity")
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="WCXB-style folder of pages (ground-truth/*.json). Default: ../shared/corpora/wcxb-dev, "
    "or Python's own documentation pages where that is absent.",
)
@click.option("--docs", "n_docs", type=IntRange(100, 200_000), default=10_000, show_default=True)
@click.option("--real", "n_real", type=IntRange(50, 50_000), default=2_000, show_default=True)
@json_option
def bench_diversity(corpus: Path | None, n_docs: int, n_real: int, as_json: bool) -> None:
    """Seconds for every diversity measure over N documents, and MinHash signatures per second
    beside datasketch's, on the same texts in the same run.

    Documents are passages of the corpus's main texts (about 200 words each), or Python's own
    documentation pages where no corpus is found.
    Example: studio bench diversity --docs 10000
    """
    from studio.bench import diversity as div_bench

    if corpus is None and (default_corpus() / "ground-truth").is_dir():
        corpus = default_corpus()
    if corpus is not None and not (corpus / "ground-truth").is_dir():
        raise click.ClickException(f"{corpus} is not a WCXB-style corpus (no ground-truth/)")
    try:
        with cli_task("benchmarking", unit="step") as task:
            result = div_bench.run(corpus, n_docs=n_docs, n_real=n_real, task=task)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result)
    else:
        click.echo(div_bench.format_table(result))


COMMANDS: list[click.Command] = [diversity]
