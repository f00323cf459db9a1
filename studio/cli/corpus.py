"""Commands over a project's corpus: create, import, describe."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import click

from studio.cli.common import (
    NEW_PROJECT,
    PROJECT,
    cli_task,
    json_option,
    open_project,
    print_json,
    sigterm_as_ctrl_c,
)
from studio.paths import expand_home


@click.command("init")
@click.argument("project", type=NEW_PROJECT)
def init(project: str) -> None:
    """Create an empty project folder.  Example: studio init ~/corpora/physics"""
    from studio.project import DB_NAME
    from studio.text import shown_path

    folder = expand_home(project)
    try:  # a folder of the curator's own files becomes a project beside them: said
        others = 0 if (folder / DB_NAME).exists() else sum(1 for _ in folder.iterdir())
    except OSError:  # not there yet (or not a folder: open_project says so)
        others = 0
    p = open_project(project)
    click.echo(f"project ready at {shown_path(p.root)}")
    if others:
        click.echo(
            f"note: the folder already held {others:,} other "
            f"{'entry' if others == 1 else 'entries'}, left as they are beside the project's files",
            err=True,
        )


def _document_limit(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A size limit must let something through: NaN, infinity, 0 and below would refuse (or
    crash on) every document."""
    limit = value * 1024 * 1024
    if not math.isfinite(limit) or limit < 1:
        raise click.BadParameter(f"give a positive number of MiB (e.g. 16), not {value:g}")
    return value


@click.command("import")
@click.argument("project", type=NEW_PROJECT)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--text-field", multiple=True, help="Record key or Parquet column of plain text.")
@click.option("--html-field", multiple=True, help="Record key or Parquet column holding HTML.")
@click.option(
    "--max-document-mb",
    type=float,
    default=16.0,
    show_default=True,
    callback=_document_limit,
    help="Refuse single documents larger than this many MiB.",
)
@json_option
def import_(
    project: str,
    paths: tuple[Path, ...],
    text_field: tuple[str, ...],
    html_field: tuple[str, ...],
    max_document_mb: float,
    as_json: bool,
) -> None:
    """Import files and folders (HTML, WARC, JSONL, JSON, Parquet, text, zip/tar) into PROJECT.

    The exit status is 1 when any file failed (a file whose every record failed counts) or
    any record failed; every other file and record is imported regardless.

    Example: studio import ~/corpora/physics crawl.warc.gz pages/ dump.jsonl.zst
    """
    from studio.ingest.base import IngestOptions
    from studio.ingest.pipeline import import_paths

    options = IngestOptions(max_document_bytes=int(max_document_mb * 1024 * 1024))
    if text_field:
        options.text_fields = text_field
    if html_field:
        options.html_fields = html_field
    p = open_project(project)
    with sigterm_as_ctrl_c(), p.store() as store, cli_task("importing") as task:
        report = import_paths(store, list(paths), options, task)
    if as_json:
        print_json(report.to_dict())
    else:
        for f in report.files:
            click.echo(f"{f.path}: {f.summary()}")
            for err in f.errors[:5]:
                click.echo(f"    {err}")
            if f.failed > min(len(f.errors), 5):
                click.echo(f"    … and {f.failed - min(len(f.errors), 5):,} more failed records")
        click.echo(
            f"imported {report.imported} documents, skipped {report.duplicates} duplicates, "
            f"{len(report.failed_files)} files failed, {report.failed_records} records failed"
        )
    if report.failed_files or report.failed_records:
        sys.exit(1)


@click.command("info")
@click.argument("project", type=PROJECT)
@json_option
def info(project: str, as_json: bool) -> None:
    """Say what PROJECT holds, and what each import did with each file.

    Example: studio info ~/corpora/physics --json
    """
    p = open_project(project, create=False)
    with p.store() as store:
        data = {"project": str(p.root), **store.summary(), "import_log": store.import_log()}
    if as_json:
        print_json(data)
        return
    click.echo(f"project {data['project']}")
    click.echo(
        f"{data['documents']} documents, {data['words']:,} words, "
        f"{data['signal_share']:.0%} of them signal (the rest is boilerplate)"
    )
    for key in ("by_kind", "by_format", "by_language"):
        if data[key]:  # an empty project has none to list
            click.echo(
                f"{key.removeprefix('by_')}: " + ", ".join(f"{k} {v}" for k, v in data[key].items())
            )
    labels = data["labels"]
    if labels["documents"]:
        scores = ", ".join(f"{k}: {v}" for k, v in sorted(labels["by_score"].items()))
        labels_n = sum(labels["by_score"].values())
        click.echo(f"labels: {labels_n} on {labels['documents']} documents (by score: {scores})")
    if not data["import_log"]:
        click.echo(
            "nothing imported yet: `studio import PROJECT PATH...`, or drop files on the studio"
        )
        return
    click.echo("import log (files with something to say; --json lists every file):")
    by_import: dict[int, list[dict]] = {}
    for row in data["import_log"]:
        by_import.setdefault(row["import_id"], []).append(row)
    for import_id, rows in by_import.items():
        statuses = Counter(r["status"] for r in rows)
        docs = sum(r["imported"] for r in rows)
        dups = sum(r["duplicates"] for r in rows)
        counts = ", ".join(f"{n} {status}" for status, n in statuses.items())
        click.echo(
            f"  import {import_id}: {len(rows)} files ({counts}); {docs} documents, "
            f"{dups} duplicates skipped"
        )
        for r in rows:
            if r["status"] in ("failed", "skipped", "cancelled", "interrupted"):
                click.echo(f"    {r['status']:11} {r['path']}: {r['reason']}")
            elif r["failed"]:
                click.echo(
                    f"    {r['failed']} bad records in {r['path']}: {'; '.join(r['errors'][:3])}"
                )


COMMANDS = [init, import_, info]
