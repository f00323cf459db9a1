"""Commands over single pages: see how the studio splits a page, or take its main text."""

from __future__ import annotations

from pathlib import Path

import click

from studio.cli.common import json_option, print_json
from studio.paths import require_regular_file


def _read_page(path: Path) -> tuple[str, str | None]:
    """The first document in ``path`` (HTML, .html.gz, a WARC...), decoded as the importer would."""
    from studio.ingest import read_file
    from studio.ingest.base import HTML, IngestError, RawDocument

    try:
        require_regular_file(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        for item in read_file(path):
            if isinstance(item, RawDocument):
                if item.kind != HTML:
                    raise click.ClickException(f"{path} holds plain text, not an HTML page")
                return item.content, item.url
    except IngestError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    raise click.ClickException(f"{path}: no HTML page found")


@click.command("segment")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def segment(file: Path, as_json: bool) -> None:
    """Split an HTML page into blocks, each judged signal or boilerplate, with the reasons.

    Example: studio segment page.html --json
    """
    from studio.segment import SegmentError, segment_html
    from studio.segment.blocks import signal_share

    html, url = _read_page(file)
    try:
        blocks = segment_html(html, url=url)
    except SegmentError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    if as_json:
        print_json(
            [
                {
                    "index": i,
                    "label": b.label,
                    "confidence": round(b.confidence, 4),
                    "tag": b.tag,
                    "locator": b.locator,
                    "text": b.text,
                    "features": b.features,
                }
                for i, b in enumerate(blocks)
            ]
        )
        return
    for b in blocks:
        mark = click.style("SIGNAL", fg="green") if b.is_signal else click.style("boiler", dim=True)
        text = b.text if len(b.text) < 100 else b.text[:97] + "..."
        click.echo(f"{mark} {b.confidence:.2f}  {b.locator}\n        {text}")
    signal, total = signal_share(blocks)
    click.echo(
        f"{len(blocks)} blocks, {signal}/{total} words signal ({signal / max(total, 1):.0%})"
    )


@click.command("extract")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def extract(file: Path) -> None:
    """Print the main text of an HTML page (its signal blocks, in order).

    Example: studio extract page.html > page.txt
    """
    from studio.segment import SegmentError, main_text

    html, url = _read_page(file)
    try:
        click.echo(main_text(html, url=url))
    except SegmentError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc


COMMANDS = [segment, extract]
