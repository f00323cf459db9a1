"""CLI commands for teachers: check that one answers, choose a project's, keep an API key, and
``studio bench teacher``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from studio.cli.bench import bench
from studio.cli.common import FiniteRange, IntRange, cli_task, json_option, open_project, print_json
from studio.paths import expand_home


def _bounded(name: str) -> click.IntRange:
    """The range a setting may take, as the saved settings' own check has it."""
    from studio.teachers.config import LIMITS

    low, high, _unit = LIMITS[name]
    return IntRange(int(low), int(high))


def teacher_options(command):
    """The settings a teacher spec leaves out; unset ones keep the saved or default value."""
    options = [
        click.option("--model", help="Model name on the server (remote teachers)."),
        click.option(
            "--api-key-env",
            help="Environment variable that holds the API key (default: the OS keyring).",
        ),
        click.option(
            "--n-ctx", type=_bounded("n_ctx"), help="Context size, 256 to 1048576 tokens (local)."
        ),
        click.option("--threads", type=_bounded("n_threads"), help="CPU threads (local)."),
        click.option(
            "--gpu-layers", type=_bounded("n_gpu_layers"), help="Layers on the GPU, -1 all (local)."
        ),
        click.option(
            "--concurrency", type=_bounded("concurrency"), help="Replies at once (remote)."
        ),
        click.option(
            "--timeout",
            type=FiniteRange(min=0, min_open=True, max=3600),
            help="Seconds of silence, at most 3600 (remote).",
        ),
        click.option("--retries", type=_bounded("retries"), help="Retries per reply (remote)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _warn_context(config) -> None:
    """Say, before a local model loads, that its context is past the one it was trained on."""
    from studio.teachers.base import TeacherError
    from studio.teachers.llama import context_note

    if config.kind != "local":
        return
    try:
        note = context_note(config.model_path(), config.n_ctx)
    except TeacherError:  # no model file: the command says so itself
        return
    if note:
        click.echo(f"warning: {note}", err=True)


def _config(spec: str | None, project: str | None, **opts: Any):
    """The teacher a command means: SPEC if given, else the project's saved one, else default."""
    from studio.teachers.base import TeacherError
    from studio.teachers.config import TeacherConfig, load_config, parse_spec, with_overrides

    changes = {
        "model": opts.get("model"),
        "api_key_env": opts.get("api_key_env"),
        "n_ctx": opts.get("n_ctx"),
        "n_threads": opts.get("threads"),
        "n_gpu_layers": opts.get("gpu_layers"),
        "concurrency": opts.get("concurrency"),
        "read_timeout": opts.get("timeout"),
        "retries": opts.get("retries"),
    }
    try:
        if spec:
            base = parse_spec(spec, model=changes.pop("model"))
        elif project:
            base = load_config(open_project(project, create=False).root)
        else:
            base = TeacherConfig()
        return with_overrides(base, **changes)
    except TeacherError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("teacher")
def teacher() -> None:
    """The teacher model that writes synthetic pages: local GGUF or OpenAI-compatible server."""


@teacher.command("check")
@click.argument("spec", required=False)
@click.option(
    "--project", type=click.Path(file_okay=False), help="Check the project's saved teacher."
)
@teacher_options
@click.option("--max-tokens", type=IntRange(1, 4096), default=32, show_default=True)
@json_option
def teacher_check(
    spec: str | None, project: str | None, max_tokens: int, as_json: bool, **opts: Any
) -> None:
    """Load or reach a teacher and ask it one short question.

    SPEC is local:PATH.gguf, local (the shipped model) or openai:BASE_URL with --model;
    without SPEC, the --project's saved teacher, else the shipped model.
    Example: studio teacher check openai:http://127.0.0.1:8080/v1 --model qwen2.5-7b-instruct
    """
    from studio.teachers.base import TeacherError
    from studio.teachers.check import check_teacher

    config = _config(spec, project, **opts)
    _warn_context(config)
    try:
        result = check_teacher(config, max_tokens=max_tokens)
    except TeacherError as exc:
        raise click.ClickException(f"{config.spec}: {exc}") from exc
    if as_json:
        print_json(result)
        return
    where = result.get("path") or result.get("base_url")
    click.echo(f"ok: {result['name']} ({where})")
    click.echo(f"model: {result['model']}; opened in {result['open_seconds']:.2f} s")
    click.echo(
        f"reply ({result['completion_tokens']} tokens, {result['tokens_per_second']:.1f} "
        f"tokens/s, {result['finish_reason']}): {result['reply']}"
    )
    if result["warning"]:
        click.echo(f"warning: {result['warning']}", err=True)


@teacher.command("use")
@click.argument("spec")
@click.option("--project", type=click.Path(file_okay=False), required=True)
@teacher_options
@json_option
def teacher_use(spec: str, project: str, as_json: bool, **opts: Any) -> None:
    """Save SPEC as the project's teacher (teacher.json in the project folder; never a key).

    Example: studio teacher use openai:https://api.openai.com/v1 --model gpt-4o-mini
    --api-key-env OPENAI_API_KEY --project ~/proj
    """
    from studio.teachers.base import TeacherError
    from studio.teachers.config import save_config
    from studio.teachers.llama import check_gguf_file

    if not spec.strip():
        raise click.ClickException(
            "name a teacher (local, local:PATH, openai:URL...): nothing saved"
        )
    p = open_project(project, create=False)
    config = _config(spec, None, **opts)
    try:
        if config.kind == "local" and config.path:
            # caught now, not at the first page a curator asks it to write
            check_gguf_file(expand_home(config.path))
        _warn_context(config)
        path = save_config(p.root, config)
    except TeacherError as exc:
        raise click.ClickException(f"{exc}: nothing saved") from exc
    except OSError as exc:  # a read-only project, a full disk
        raise click.ClickException(
            f"cannot save the teacher settings in {p.root}: {exc.strerror or exc}; nothing saved"
        ) from exc
    if as_json:
        print_json(config.to_json())
    else:
        click.echo(f"{p.name} now uses {config.spec} (saved in {path})")


@teacher.command("show")
@click.option("--project", type=click.Path(file_okay=False), required=True)
@json_option
def teacher_show(project: str, as_json: bool) -> None:
    """Print the project's teacher settings.  Example: studio teacher show --project ~/proj"""
    config = _config(None, project)
    if as_json:
        print_json(config.to_json())
        return
    click.echo(config.spec + (f" (model {config.model})" if config.model else ""))
    for key, value in config.to_json().items():
        click.echo(f"  {key}: {value}")


@teacher.command("key")
@click.argument("base_url")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the key from standard input.")
def teacher_key(base_url: str, from_stdin: bool) -> None:
    """Keep an API key for BASE_URL in the OS keyring (service "textbook-studio").

    Example: studio teacher key https://api.openai.com/v1
    """
    from studio.teachers.base import TeacherError
    from studio.teachers.config import check_base_url, store_api_key

    try:  # before the key is asked for
        check_base_url(base_url)
    except TeacherError as exc:
        raise click.ClickException(f"{exc}: no key kept") from exc
    if from_stdin:
        key = sys.stdin.readline().strip()
    else:
        key = click.prompt("API key", hide_input=True).strip()
    if not key:
        raise click.ClickException("no key given")
    try:
        store_api_key(base_url, key)
    except TeacherError as exc:
        raise click.ClickException(f"{exc} (use --api-key-env instead)") from exc
    click.echo(f"key kept in the OS keyring for {base_url}")


@bench.command("teacher")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A GGUF file (default: the shipped SmolLM2-135M-Instruct).",
)
@click.option("--max-tokens", type=IntRange(8, 2048), default=128, show_default=True)
@click.option("--rounds", type=IntRange(1, 10), default=2, show_default=True)
@click.option("--threads", type=_bounded("n_threads"), default=1, show_default=True)
@click.option("--gpu-layers", type=_bounded("n_gpu_layers"), default=0, show_default=True)
@click.option(
    "--concurrency",
    default="1,2,4",
    show_default=True,
    help="Comma-separated concurrency settings for the remote curve.",
)
@click.option("--requests", type=IntRange(1, 64), default=4, show_default=True)
@click.option("--no-server", is_flag=True, help="Only the local (in-process) benchmark.")
@click.option("--server-url", help="Measure this OpenAI-compatible server instead of starting one.")
@click.option("--server-model", default="bench", show_default=True)
@json_option
def bench_teacher(
    model_path: Path | None,
    max_tokens: int,
    rounds: int,
    threads: int,
    gpu_layers: int,
    concurrency: str,
    requests: int,
    no_server: bool,
    server_url: str | None,
    server_model: str,
    as_json: bool,
) -> None:
    """Tokens/s through the studio beside llama-cpp-python on the same model and prompts, and
    throughput against concurrency on a llama_cpp.server (bare HTTP client beside it).

    Example: studio bench teacher --model ~/models/qwen2.5-1.5b-instruct-q4_k_m.gguf
    """
    from studio.bench import teacher as teacher_bench
    from studio.teachers.base import TeacherError
    from studio.teachers.config import default_local_model
    from studio.teachers.llama import check_gguf_file

    try:
        levels = tuple(int(x) for x in concurrency.split(",") if x.strip())
    except ValueError as exc:
        raise click.ClickException(
            f"--concurrency takes numbers like 1,2,4: {concurrency}"
        ) from exc
    if not levels or min(levels) < 1:
        raise click.ClickException("--concurrency takes numbers of at least 1")
    model = model_path or default_local_model()
    if model is None:
        raise click.ClickException("the shipped model is not installed: pass --model PATH.gguf")
    try:
        check_gguf_file(model)
        with cli_task("benchmarking", unit="step") as task:
            result = teacher_bench.run(
                model,
                max_tokens=max_tokens,
                rounds=rounds,
                n_threads=threads,
                n_gpu_layers=gpu_layers,
                concurrency=levels,
                requests=requests,
                server=not no_server,
                server_url=server_url,
                server_model=server_model,
                progress=task.progress,
            )
    except TeacherError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        print_json(result)
    else:
        click.echo(teacher_bench.format_table(result))


COMMANDS: list[click.Command] = [teacher]
