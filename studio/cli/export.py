"""``studio export``: write the kept documents, with their provenance, to JSONL or Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from studio.cli.common import cli_task, json_option, open_project, print_json


@click.command("export")
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--model",
    "version",
    default=None,
    help="Keep what this classifier version keeps ('latest': the newest). Default: keep all.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 5),
    default=None,
    help="Keep pages whose predicted score is at least this (ridge and forest versions).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "parquet"]),
    default=None,
    help="Output format. Default: from OUT's name (.parquet, else JSONL; .gz/.zst compress).",
)
@click.option(
    "--dropped",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the dropped documents here, each with the reason.",
)
@json_option
def export(
    project: str,
    out: str,
    version: str | None,
    threshold: float | None,
    fmt: str | None,
    dropped: str | None,
    as_json: bool,
) -> None:
    """Write the documents a classifier keeps, with their provenance, to OUT.

    OUT appears only once it is complete, with OUT.manifest.json beside it.
    Example: studio export ~/proj kept.jsonl.zst --model latest --dropped dropped.jsonl
    """
    from studio.export import ExportError, export_documents
    from studio.progress import Cancelled

    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("exporting", unit="doc") as task:
            report = export_documents(
                p,
                store,
                Path(out),
                version=version,
                threshold=threshold,
                fmt=fmt,
                dropped=Path(dropped) if dropped else None,
                task=task,
            )
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write the export: {exc}") from exc
    except Cancelled as exc:
        raise click.ClickException("cancelled: nothing was written") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(f"{report.text} -> {report.path}")
    if report.dropped_path:
        click.echo(f"dropped {report.dropped:,} documents -> {report.dropped_path}")


COMMANDS = [export]
