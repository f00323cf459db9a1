"""``studio``: one subcommand per step of the pipeline, each a few lines over the core.

Every command that reports takes ``--json``; errors become a one-line message and a non-zero
exit status, never a traceback.
"""

from __future__ import annotations

import os

import click

from studio import __version__

# the studio never fetches a model from a hub at run time
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="studio")
def cli() -> None:
    """Textbook Studio: curate the training data of small language models.

    Run with no command to open the studio on the default project.
    """


def _register() -> None:
    from studio.cli import (
        bench,
        classify,
        corpus,
        dedup,
        diversity,
        export,
        funnel,
        generate,
        labels,
        segment,
        teacher,
        train,
    )

    modules = (
        corpus,
        segment,
        labels,
        classify,
        export,
        funnel,
        teacher,
        generate,
        dedup,
        diversity,
        train,
    )
    for module in modules:
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(bench.bench)


_register()


def main() -> None:
    run_cli(cli)


def run_cli(command: click.Command) -> None:
    """Run the command line; a project database that fails half-way through a command (not
    when the project was opened, which says so itself) ends it with one line, not a traceback:
    busy, read-only, a full disk, or damaged (see :func:`studio.project.damaged`); so does a
    damaged plan (its stored dimensions), which every command that draws cells reads."""
    import sqlite3

    from studio.project import damaged

    try:
        command(prog_name="studio")
    except sqlite3.DatabaseError as exc:
        click.echo(f"Error: {damaged(None, exc)}", err=True)
        raise SystemExit(1) from exc
    except ValueError as exc:
        # the plan's stored dimensions damaged: every command that draws cells meets it
        from studio.generate.taxonomy import TaxonomyError

        if not isinstance(exc, TaxonomyError):
            raise
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from exc
