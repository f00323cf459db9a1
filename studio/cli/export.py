"""``studio export``: write the kept documents, with their provenance, as a dataset folder in the
Hugging Face datasets layout (data shards, a README.md dataset card, manifest.json)."""

from __future__ import annotations

from pathlib import Path

import click

from studio.cli.common import (
    PROJECT,
    FiniteRange,
    IntRange,
    cli_task,
    json_option,
    open_project,
    print_json,
    sigterm_as_ctrl_c,
    version_option,
)


@click.command("export")
@click.argument("project", type=PROJECT)
@click.argument("outdir", type=click.Path(dir_okay=True, file_okay=False))
@version_option(
    "Keep what this classifier version keeps ('latest': the newest). Default: with "
    "--min-score the newest, else keep every page (duplicates and contaminated pages are "
    "dropped all the same)."
)
@click.option(
    "--min-score",
    "--threshold",
    "threshold",
    type=FiniteRange(0, 5),
    default=None,
    help="Keep pages whose predicted score is at least this (versions that predict a score: "
    "ridge, forest, blend). Default: the version's own keep decision.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "jsonl", "jsonl.gz"]),
    default="parquet",
    show_default=True,
    help="Format of the data shards.",
)
@click.option(
    "--shard-size",
    type=IntRange(min=1),
    default=100_000,
    show_default=True,
    help="At most this many records a shard.",
)
@click.option(
    "--license",
    "license_",
    default="other",
    show_default=True,
    help="License the dataset card declares (a Hugging Face license id).",
)
@click.option(
    "--dropped",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the dropped documents to this file (.jsonl[.gz|.zst] or .parquet), "
    "each with the reason.",
)
@json_option
def export(
    project: str,
    outdir: str,
    version: str | None,
    threshold: float | None,
    fmt: str,
    shard_size: int,
    license_: str,
    dropped: str | None,
    as_json: bool,
) -> None:
    """Write the documents a classifier keeps, with their provenance, to the folder OUTDIR.

    OUTDIR holds data/train-NNNNN-of-MMMMM.<format> shards, a README.md dataset card and
    manifest.json; it appears only once complete and must not exist (or be empty) before.
    Example: studio export ~/proj kept --model latest --min-score 3 --dropped dropped.jsonl
    """
    from studio.export import ExportError, export_documents
    from studio.progress import Cancelled

    if not outdir.strip():  # Path("") is the current folder
        raise click.BadParameter("name the folder to write", param_hint="OUTDIR")
    if dropped is not None and not dropped.strip():
        raise click.BadParameter("name the file to write", param_hint="--dropped")
    p = open_project(project, create=False)
    try:
        with sigterm_as_ctrl_c(), p.store() as store, cli_task("exporting", unit="doc") as task:
            report = export_documents(
                p,
                store,
                Path(outdir),
                version=version,
                threshold=threshold,
                fmt=fmt,
                dropped=Path(dropped) if dropped else None,
                shard_size=shard_size,
                license=license_,
                task=task,
            )
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        from studio.text import os_error_text

        raise click.ClickException(f"cannot write the export: {os_error_text(exc)}") from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled: nothing was written") from exc
    if as_json:
        print_json(report.to_dict())
        return
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{report.text} -> {report.path} ({len(report.shards)} shard(s))")
    if report.dropped_path:
        click.echo(f"dropped {report.dropped:,} documents -> {report.dropped_path}")


COMMANDS = [export]
