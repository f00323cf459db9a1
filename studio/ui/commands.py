"""The commands that open windows: ``studio gui`` and ``studio bench ui``. Registered onto the
CLI by :mod:`studio.main`, so the core CLI never imports Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

TARGETS = {"first_paint_s": 2.0, "open_ms": 300.0, "search_ms": 300.0}
# what `studio bench ui` types into the corpus search, in turn ("t*": every term starting
# with t, most of the corpus)
SEARCHES = ["water", "energy cell", '"carbon dioxide"', "photo*", "kato", "t*"]


@click.command("gui")
@click.argument("project", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--self-test",
    is_flag=True,
    help="Open offscreen, import one sample page, exit 0 if all worked. Without PROJECT it "
    "uses a temporary project, removed after; with one, the sample page is imported into it.",
)
@click.option("--measure", is_flag=True, hidden=True, help="Used by `studio bench ui`.")
def gui(project: Path | None, self_test: bool, measure: bool) -> None:
    """Open the studio on PROJECT (default: your default project, created on first start).

    Example: studio gui ~/corpora/physics
    """
    if self_test:
        from studio.ui.app import self_test as run_self_test

        sys.exit(run_self_test(project))
    if measure:
        from studio.ui.measure import measure as run_measure

        assert project is not None
        sys.exit(run_measure(project))
    from studio.ui.app import run

    sys.exit(run(project))


@click.command("ui")
@click.option(
    "--docs",
    type=click.IntRange(1, 10_000_000),
    default=1_000_000,
    show_default=True,
    help="Corpus size.",
)
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to build the synthetic project (reused when it already holds --docs documents).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_ui(docs: int, project_dir: Path | None, as_json: bool) -> None:
    """Start to first paint, opening a document, scrolling and search on a synthetic project.

    Example: studio bench ui --docs 1000000
    """
    from studio import paths
    from studio.bench import synthetic
    from studio.cli.common import cli_task
    from studio.project import DB_NAME, ProjectError, data_dir

    root = project_dir or data_dir() / "bench" / f"ui-{docs}"
    if root.is_dir() and not (root / DB_NAME).exists() and any(root.iterdir()):
        raise click.ClickException(
            f"{root} holds files and is not a studio project: give a new or empty folder"
        )
    started = time.perf_counter()
    try:
        with cli_task("building", unit="doc") as task:
            synthetic.build(root, docs, task)
    except (ProjectError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    build_s = time.perf_counter() - started
    env = dict(os.environ, STUDIO_T0=repr(time.time()))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    proc = subprocess.run(
        paths.self_command("gui", str(root), "--measure"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise click.ClickException(f"the measuring studio failed:\n{proc.stderr[-2000:]}")
    result = json.loads(lines[-1]) | {"build_s": build_s}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(format_ui_table(result))


def format_ui_table(r: dict) -> str:
    rows = [
        ("documents", f"{r['documents']:,}", ""),
        ("start to first paint", f"{r['first_paint_s']:.2f} s", f"< {TARGETS['first_paint_s']} s"),
        ("corpus counted after first paint", f"{r['first_count_ms']:.0f} ms", ""),
        ("open first document", f"{r['open_first_ms']:.0f} ms", f"< {TARGETS['open_ms']:.0f} ms"),
        ("open middle document", f"{r['open_middle_ms']:.0f} ms", f"< {TARGETS['open_ms']:.0f} ms"),
        ("scroll to bottom", f"{r['scroll_bottom_ms']:.0f} ms", ""),
        ("scroll jump (worst of 20)", f"{r['scroll_jump_ms_max']:.0f} ms", ""),
        ("sort by words", f"{r['sort_words_ms']:.0f} ms", ""),
        (
            f"search (worst of {len(r['search_ms'])})",
            f"{max(r['search_ms']):.0f} ms",
            f"< {TARGETS['search_ms']:.0f} ms",
        ),
        (
            "search (each)",
            " / ".join(f"{x:.0f}" for x in r["search_ms"]) + " ms",
            "for " + " / ".join(SEARCHES),
        ),
        (
            "search, exact count (each)",
            " / ".join(f"{x:.0f}" for x in r["search_count_ms"]) + " ms",
            "(arrives from a reader thread)",
        ),
        ("synthetic corpus build", f"{r['build_s']:.1f} s", "(once; reused)"),
    ]
    width = max(len(a) for a, _, _ in rows)
    out = [f"{'measure':{width}}  {'studio':>22}  target", "-" * (width + 34)]
    out += [f"{a:{width}}  {b:>22}  {c}" for a, b, c in rows]
    return "\n".join(out)


def register(cli: click.Group) -> None:
    cli.add_command(gui)
    bench = cli.commands.get("bench")
    if isinstance(bench, click.Group):
        bench.add_command(bench_ui)
        bench.add_command(bench_label)


@click.command("label")
@click.argument("project", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--pages",
    type=click.IntRange(1, 100_000),
    default=100,
    show_default=True,
    help="How many pages to score.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_label(project: Path, pages: int, as_json: bool) -> None:
    """Keypress to next page shown, in labelling mode, on a copy of PROJECT (target p95 < 50 ms).

    Example: studio bench label ~/demo --pages 100
    """
    import shutil
    import tempfile

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from studio.project import DB_NAME
    from studio.ui.measure import measure_labelling

    if not (project / DB_NAME).is_file():  # before anything is copied
        raise click.ClickException(f"{project} is not a Textbook Studio project (no {DB_NAME})")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("runs", "exports"))
        result = measure_labelling(copy, pages)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"{result['pages']} keypresses: p50 {result['p50_ms']:.1f} ms, "
        f"p95 {result['p95_ms']:.1f} ms, max {result['max_ms']:.1f} ms (target p95 < 50 ms)"
    )
