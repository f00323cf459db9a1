"""Commands over labels: bring them in from elsewhere, take them out, build the demo project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from studio.cli.common import (
    NEW_PROJECT,
    PROJECT,
    SEED,
    IntRange,
    cli_task,
    json_option,
    open_project,
    print_json,
    threshold_option,
)
from studio.text import abbreviated, plural, visible


@click.group("labels")
def labels() -> None:
    """Labels: import (CSV, JSONL or Parquet) and export (CSV or JSONL), agreement between
    annotators, and a teacher's scores as one more annotator."""


@labels.command("import")
@click.argument("project", type=PROJECT)
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--annotator", default=None, help="For rows that name no annotator (default: you).")
@json_option
def labels_import(project: str, file: Path, annotator: str | None, as_json: bool) -> None:
    """Import scores (0-5) naming documents by content_hash, url or doc_id (.csv, .jsonl, .parquet).

    A row's int_score, where it has one, is its score (FineWeb-Edu's files keep a fractional
    mean in score).

    A row's content hash decides which page it labels (a file from another project names its own
    doc_ids); without one, the url, then the doc_id. Rows that match no document or are malformed
    are skipped and listed with their line numbers, the others are imported; the exit status is
    1 when any row was skipped, and a file that cannot be read imports nothing.
    Example: studio labels import ~/proj scores.csv
    """
    from studio.documents import default_annotator
    from studio.labelling import annotator_problem
    from studio.labels import LabelFileError, import_labels

    why = annotator_problem(annotator) if annotator is not None else None
    if why:  # an empty --annotator is a shell variable left unset, not a request for the user
        raise click.BadParameter(why, param_hint="--annotator")
    p = open_project(project, create=False)
    try:
        with p.store() as store:
            report = import_labels(store, file, annotator or default_annotator())
    except LabelFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(
            f"imported {plural(report.imported, 'label')}; {plural(report.unmatched, 'row')} "
            f"matched no document, {plural(report.invalid, 'row')} malformed"
        )
        if report.replaced:
            click.echo(
                f"  {report.replaced} labels replaced scores the project held for the same page "
                "and annotator"
            )
        if report.repeated:
            click.echo(
                f"  {report.repeated} rows gave a document and annotator again: the last one counts"
            )
        if report.moved:
            click.echo(
                f"  {report.moved} rows found their page by content hash under another doc_id "
                "than they name (labels from another project)"
            )
        for problem in report.problems:
            click.echo(f"  {problem}")
        if report.skipped > len(report.problems):
            click.echo(f"  … and {report.skipped - len(report.problems):,} more skipped rows")
    if report.skipped:
        raise SystemExit(1)


@labels.command("export")
@click.argument("project", type=PROJECT)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def labels_export(project: str, file: Path) -> None:
    """Write every label (with doc_id, content_hash, url, title) to FILE (.csv or .jsonl).

    Example: studio labels export ~/proj labels.jsonl
    """
    from studio.labels import LabelFileError, export_labels

    p = open_project(project, create=False)
    try:
        with p.store() as store:
            n = export_labels(store, file)
    except LabelFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {n} labels to {file}")


@labels.command("agreement")
@click.argument("project", type=PROJECT)
@click.option(
    "--gap",
    type=IntRange(1, 5),
    default=2,
    show_default=True,
    help="List pages scored this far apart.",
)
@threshold_option
@json_option
def labels_agreement(project: str, gap: int, threshold: float, as_json: bool) -> None:
    """How far annotators agree (quadratic-weighted Cohen's kappa on the scores, Cohen's kappa
    on the keep decision), and where they do not.

    Example: studio labels agreement ~/proj --gap 2 --threshold 3
    """
    from dataclasses import asdict

    from studio.labelling import agreement

    p = open_project(project, create=False)
    with p.store() as store:
        pairs = agreement(store, min_gap=gap, threshold=threshold)
    if as_json:
        print_json([asdict(pair) for pair in pairs])
        return
    if not pairs:
        click.echo("fewer than two annotators: nothing to compare")
    for pair in pairs:
        kappa = "n/a" if pair.kappa is None else f"{pair.kappa:.3f}"
        keep = "n/a" if pair.keep_kappa is None else f"{pair.keep_kappa:.3f}"
        click.echo(
            f"{pair.a} vs {pair.b}: kappa {kappa} on {pair.shared} shared pages, "
            f"keep decision (>= {threshold:g}) kappa {keep}"
        )
        if pair.disagreements:
            click.echo(f"  {len(pair.disagreements)} pages {gap}+ points apart:")
        for doc_id, sa, sb in pair.disagreements[:20]:
            click.echo(f"    document {doc_id}: {pair.a} {sa}, {pair.b} {sb}")
        if pair.split:
            click.echo(f"  {len(pair.split)} pages one keeps and the other drops:")
        for doc_id, sa, sb in pair.split[:20]:
            click.echo(f"    document {doc_id}: {pair.a} {sa}, {pair.b} {sb}")


@labels.command("teacher")
@click.argument("project", type=PROJECT)
@click.option(
    "--pages",
    "which",
    type=click.Choice(["labelled", "unlabelled"]),
    default="labelled",
    show_default=True,
    help="The pages people labelled (to measure the teacher against them), or pages nobody "
    "labelled (to extend the labels).",
)
@click.option("--limit", type=IntRange(1, 10_000_000), default=100, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Order of unlabelled pages.")
@click.option("--teacher", "spec", default=None, metavar="local:PATH | openai:URL",
              help="The teacher (default: the project's).")  # fmt: skip
@click.option("--model", default=None, help="Model name on an openai: server.")
@json_option
def labels_teacher(
    project: str,
    which: str,
    limit: int,
    seed: int,
    spec: str | None,
    model: str | None,
    as_json: bool,
) -> None:
    """Let a teacher score pages with the project's rubric, as annotator "teacher:NAME".

    Its scores are stored as they come (a rerun skips pages it scored). A page's label stays
    the people's mean where people scored it; `studio labels agreement` then compares the
    teacher with them. The exit status is 1 when the teacher failed on any page.
    Example: studio labels teacher ~/proj --pages labelled --limit 50
    """
    from studio.cli.generate import _open, _teacher_choices
    from studio.labelling import rubric_text
    from studio.teacher_labels import (
        TeacherDown,
        label_with_teacher,
        pages_to_score,
        teacher_annotator,
    )

    p = open_project(project, create=False)
    choice = _teacher_choices(p.root, (spec,) if spec else (), (model,) if model else ())[0]
    teacher = _open([choice])[choice.label]
    with p.store() as store:
        pages = pages_to_score(store, teacher_annotator(teacher), which, limit, seed)
        try:
            with cli_task("scoring", unit="page") as task:
                report = label_with_teacher(store, teacher, pages, rubric_text(p.root), task=task)
        except TeacherDown as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt as exc:
            raise click.ClickException(
                "interrupted: the scores given so far are kept; run again to go on"
            ) from exc
    if as_json:
        print_json(report.to_dict())
    elif not pages:
        click.echo(f"no {which} pages left for {report.annotator} to score")
    else:
        spread = ", ".join(f"{k}: {v}" for k, v in sorted(report.by_score.items())) or "none"
        click.echo(
            f"{report.annotator} scored {report.scored} of {report.asked} pages "
            f"({report.failed} failed, {report.skipped} skipped) in {report.seconds:.0f} s; "
            f"scores {spread}"
        )
        for problem in report.problems:
            click.echo(f"  {problem}")
    if report.failed:
        raise SystemExit(1)


@click.command("demo")
@click.argument("project", type=NEW_PROJECT)
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The WCXB development split (default: ../shared/corpora/wcxb-dev).",
)
@json_option
def demo(project: str, corpus: Path | None, as_json: bool) -> None:
    """Build a demo project: WCXB's real pages, with the studio team's hand labels (two reads).

    Run again over a project, it adds what is missing and keeps every label already there.

    Example: studio demo ~/demo --corpus ../shared/corpora/wcxb-dev
    """
    from studio.cli.bench import default_corpus
    from studio.demo import DemoError, build_demo
    from studio.project import ProjectError

    try:
        with cli_task("importing") as task:
            report = build_demo(Path(project), corpus or default_corpus(), task)
    except (DemoError, ProjectError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        _echo_demo(report)
    if report.failed:  # as `studio import`: a failed file fails the command, after the others
        raise SystemExit(1)


def _echo_demo(report: Any) -> None:
    click.echo(
        f"demo project at {report.project}: {report.imported} pages imported, "
        f"{report.labelled} hand-labelled ({report.labels} labels)"
    )
    if report.kept:
        click.echo(
            f"  {report.kept} labels the project already held were kept as they are "
            "(the team's scores never replace yours)"
        )
    if report.unreadable:
        shown = ", ".join(report.unreadable[:5]) + (" …" if len(report.unreadable) > 5 else "")
        click.echo(
            f"  {len(report.unreadable)} ground-truth files could not be read ({shown}): "
            "their pages are in, without a URL"
        )
    if report.failed:
        click.echo(f"  {plural(len(report.failed), 'page file')} could not be imported:", err=True)
        for line in report.failed[:10]:
            click.echo(f"    {visible(abbreviated(line, 300))}", err=True)
        if len(report.failed) > 10:
            click.echo(f"    … and {len(report.failed) - 10:,} more", err=True)


COMMANDS = [labels, demo]
