"""CLI commands for near-duplicates and benchmark decontamination: ``studio dedup``,
``studio decontam`` and ``studio bench dedup``."""

from __future__ import annotations

from pathlib import Path

import click

from studio.cli.bench import bench
from studio.cli.common import (
    PROJECT,
    ROW_ID,
    SEED,
    FiniteRange,
    IntRange,
    cli_task,
    json_option,
    open_project,
    print_json,
)
from studio.paths import read_small_file
from studio.text import visible

MAX_ALLOW_BYTES = 16 * 1024 * 1024  # a list of phrases, not a corpus

SHOWN = 10  # clusters listed by the text output (--json lists up to LISTED)
LISTED = 1000


@click.command("dedup")
@click.argument("project", type=PROJECT)
@click.option("--bands", type=IntRange(1, 512), default=14, show_default=True, help="LSH bands.")
@click.option("--rows", type=IntRange(1, 64), default=8, show_default=True, help="Hashes a band.")
@click.option(
    "--ngram", type=IntRange(1, 64), default=5, show_default=True, help="Words a shingle."
)
@click.option(
    "--threshold",
    type=FiniteRange(0, 1, min_open=True),
    default=0.7,
    show_default=True,
    help="Estimated Jaccard similarity at which two documents are near-duplicates.",
)
@click.option(
    "--seed",
    type=SEED,
    default=1,
    show_default=True,
    help="Seed of the MinHash family.",
)
@click.option(
    "--keep",
    "keep",
    type=ROW_ID,
    default=None,
    metavar="DOC_ID",
    help="Keep this document in its cluster instead (remembered by later runs); no new run.",
)
@json_option
def dedup(
    project: str,
    bands: int,
    rows: int,
    ngram: int,
    threshold: float,
    seed: int,
    keep: int | None,
    as_json: bool,
) -> None:
    """Find clusters of near-duplicate documents (MinHash LSH over word n-grams) and mark all
    but one of each cluster, with the reason and the kept document; export drops them.

    Kept: a curator's choice (--keep), else the highest score of the newest classifier version,
    then the most words, then the earliest document. Re-running gives the same marks.
    Example: studio dedup ~/proj --threshold 0.8
    """
    from studio.dedup import corpus
    from studio.dedup.index import MAX_HASHES, lsh_reach, suggested_lsh
    from studio.progress import Cancelled

    if keep is not None:  # a choice in the clusters there are: the run's options do nothing
        source = click.get_current_context().get_parameter_source
        given = [f"--{n}" for n in ("bands", "rows", "ngram", "threshold", "seed")
                 if source(n) == click.core.ParameterSource.COMMANDLINE]  # fmt: skip
        if given:
            raise click.UsageError(
                f"--keep changes the kept document of the last run's cluster; {', '.join(given)} "
                "would be ignored: run `studio dedup` with them first"
            )
    if bands * rows > MAX_HASHES:
        raise click.ClickException(f"bands x rows must be at most {MAX_HASHES}")
    warnings = []
    compared = lsh_reach(bands, rows, threshold)[1]
    if keep is None and compared < 0.5:  # as the Duplicates tab says
        sb, sr = suggested_lsh(threshold)
        warnings.append(
            f"with {bands} bands of {rows} rows a pair {threshold:.2f} similar is compared "
            f"{compared:.0%} of the time: most near-duplicates at the "
            f"threshold would be missed; for {threshold:.2f} use --bands {sb} --rows {sr}"
        )
        if not as_json:  # --json carries it in "warnings"
            click.echo(f"warning: {warnings[0]}", err=True)
    p = open_project(project, create=False)
    with p.store() as store:
        if keep is not None:
            try:
                corpus.keep_document(store, keep)
            except LookupError as exc:
                raise click.ClickException(str(exc.args[0])) from exc
            members = corpus.cluster_members(store, _cluster_of(store, keep))
            if as_json:
                print_json({"kept": keep, "members": members})
            else:
                click.echo(f"kept document {keep}; {len(members) - 1} other(s) marked")
            return
        try:
            with cli_task("deduplicating", unit="doc") as task:
                report = corpus.dedup_corpus(
                    store,
                    bands=bands,
                    rows=rows,
                    ngram=ngram,
                    threshold=threshold,
                    seed=seed,
                    task=task,
                )
        except Cancelled as exc:
            raise click.ClickException("cancelled: the earlier marks are unchanged") from exc
        found = corpus.clusters(store, limit=LISTED)
    warnings += report.notes
    if as_json:
        print_json({**report.to_dict(), "warnings": warnings, "clusters_listed": found})
        return
    click.echo(report.text)
    for note in report.notes:
        click.echo(f"warning: {note}", err=True)
    for c in found[:SHOWN]:
        title = visible((c["title"] or c["url"] or "")[:60])
        click.echo(
            f"  cluster {c['id']}: {c['size']} documents, similarity >= {c['similarity']:.2f}, "
            f"kept {c['kept_doc_id']} ({c['kept_by']}) {title}"
        )


def _cluster_of(store, doc_id: int) -> int:  # noqa: ANN001 (Store, imported lazily)
    row = store.conn.execute(
        "SELECT cluster_id FROM dedup_marks WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    return int(row[0])


@click.command("decontam")
@click.argument("project", type=PROJECT)
@click.option(
    "--benchmark",
    "benchmarks",
    multiple=True,
    metavar="NAME|FILE",
    help="A shipped benchmark (humaneval, gsm8k, hellaswag, truthfulqa) or a JSONL/CSV/TXT file "
    "of items; repeatable. Default: every shipped one.",
)
@click.option(
    "--n",
    "n",
    type=IntRange(1, 200),
    default=13,
    show_default=True,
    help="Words per n-gram (at least 8: shorter ones match ordinary prose).",
)
@click.option(
    "--allow",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A text file of common phrases (one a line) whose n-grams never count as hits; "
    "added to the studio's own list of licence texts.",
)
@json_option
def decontam(
    project: str, benchmarks: tuple[str, ...], n: int, allow: Path | None, as_json: bool
) -> None:
    """Mark documents that share an n-gram span with a benchmark item; export drops them.

    Each hit keeps the span in the document and in the item, for a side-by-side view.
    Example: studio decontam ~/proj --benchmark gsm8k --benchmark my_eval.jsonl --n 13
    """
    from studio.decontam import (
        DEFAULT_ALLOW,
        BenchmarkError,
        BenchmarkIndex,
        shipped_names,
    )
    from studio.decontam.corpus import decontaminate
    from studio.decontam.index import MIN_N
    from studio.progress import Cancelled

    if n < MIN_N:  # checked here, not by the option's type: the index module holds the floor
        raise click.BadParameter(
            f"{n} is too few words: n-grams under {MIN_N} words match ordinary prose, so nearly "
            "every page would be marked",
            param_hint="--n",
        )

    phrases = list(DEFAULT_ALLOW)
    if allow is not None:
        try:
            text = read_small_file(allow, MAX_ALLOW_BYTES).decode("utf-8")
        except OSError as exc:
            raise click.ClickException(f"{allow}: cannot be read ({exc.strerror or exc})") from exc
        except ValueError as exc:  # not UTF-8, a device, too large
            raise click.ClickException(f"{allow}: cannot be used ({exc})") from exc
        phrases += [line for line in text.splitlines() if line.strip()]
    try:
        chosen = list(benchmarks) or shipped_names()
        if not chosen:
            raise BenchmarkError("no benchmark given and none shipped: pass --benchmark FILE")
        index = BenchmarkIndex.load(chosen, n=n, allow=phrases)
    except BenchmarkError as exc:
        raise click.ClickException(str(exc)) from exc
    p = open_project(project, create=False)
    try:
        with p.store() as store, cli_task("checking", unit="doc") as task:
            report = decontaminate(store, index, task=task)
    except Cancelled as exc:
        raise click.ClickException("cancelled: the earlier hits are unchanged") from exc
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(report.text)
    for line in report.skipped_text:
        click.echo(f"  {line}")


@bench.command("dedup")
@click.option("--docs", type=IntRange(100, 1_000_000), default=20_000, show_default=True)
@click.option("--words", type=IntRange(10, 100_000), default=300, show_default=True)
@click.option("--repeats", type=IntRange(1, 10), default=3, show_default=True)
@click.option(
    "--reference-docs",
    type=IntRange(10, 1_000_000),
    default=2000,
    show_default=True,
    help="Documents the slow reference (datasketch) is timed on.",
)
@json_option
def bench_dedup(docs: int, words: int, repeats: int, reference_docs: int, as_json: bool) -> None:
    """MinHash signatures/s of the studio beside datasketch and rensa, same texts, same run.

    Example: studio bench dedup --docs 20000 --words 300
    """
    from studio.bench import dedup as dedup_bench

    with cli_task("benchmarking", unit="step") as task:
        result = dedup_bench.run(
            docs=docs,
            words=words,
            repeats=repeats,
            reference_docs=reference_docs,
            progress=task.progress,
        )
    if as_json:
        print_json(result)
    else:
        click.echo(dedup_bench.format_table(result))


COMMANDS: list[click.Command] = [dedup, decontam]
