"""``studio bench generate``: what the loop costs over the teacher's own replies.

The studio runs whole pages (drafts, critiques with their retries, the rewrite, the checks,
every step committed) in a scratch project; then every draft and rewrite it wrote is asked again
of llama-cpp-python's own ``create_chat_completion`` with the same messages and sampling. Both
report generated tokens per second of call time; the loop adds its wall time per page and the
share of it spent outside the teacher (prompts, parsing, checks, SQLite).

With ``concurrency`` above 1 the same pages also go through the same GGUF behind llama.cpp's
OpenAI-compatible server (``python -m llama_cpp.server`` on 127.0.0.1), once one page at a time
and once ``concurrency`` pages at a time: the wall time per page of each, and the most pages that
were in flight together. That server decodes one request at a time, so this measures what the
loop's parallel pages cost or save around the teacher, not a batching server's gain.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from studio.generate import record
from studio.generate.loop import BatchConfig, Event, TeacherChoice, new_batch, run_batch
from studio.progress import Task
from studio.project import Project


def run(
    model: Path,
    *,
    pages: int = 3,
    max_tokens: int = 256,
    seed: int = 1,
    concurrency: int = 1,
    task: Task | None = None,
) -> dict[str, Any]:
    from studio.teachers.config import TeacherConfig, close_teachers

    task = task or Task()
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        project = Project.open(Path(tmp) / "bench")
        choice = TeacherChoice.of(TeacherConfig(kind="local", path=str(model)))
        config = BatchConfig(pages=pages, teachers=[choice], max_tokens=max_tokens, seed=seed)
        with project.store() as store:
            task.progress(0, 2, "the studio's loop")
            started = time.perf_counter()
            report = run_batch(project, store, new_batch(store, config), task=task)
            wall = time.perf_counter() - started
            calls = [
                v
                for p in record.pages(store)
                for v in record.versions(store, p.id)
                if v.kind in ("draft", "rewrite") and v.ok and v.prompt and v.seconds
            ]
        close_teachers()
    studio_tokens = sum(v.completion_tokens or 0 for v in calls)
    studio_seconds = sum(v.seconds or 0.0 for v in calls)
    outside = max(0.0, wall - report.teacher_seconds)
    parallel = (
        _parallel(model, pages, max_tokens, seed, concurrency, task) if concurrency > 1 else None
    )
    return {
        "model": model.name,
        "pages": pages,
        "max_tokens": max_tokens,
        "reference": _reference(model, calls, task),
        "studio": {
            "tool": "studio teacher (llama.cpp in-process)",
            "calls": len(calls),
            "tokens": studio_tokens,
            "teacher_seconds": round(studio_seconds, 3),
            "tokens_per_second": _rate(studio_tokens, studio_seconds),
        },
        "loop": {
            "wall_seconds": round(wall, 3),
            "seconds_per_page": round(wall / pages, 3),
            "teacher_calls_seconds": round(report.teacher_seconds, 3),
            "outside_teacher_share": round(outside / wall, 4) if wall else 0.0,
            "completion_tokens": report.completion_tokens,
            "accepted": report.accepted,
            "rejected": report.rejected,
            "failed": report.failed,
        },
        "parallel": parallel,
    }


def _parallel(
    model: Path, pages: int, max_tokens: int, seed: int, concurrency: int, task: Task
) -> dict[str, Any]:
    """The same pages through llama.cpp's server, one at a time and ``concurrency`` at once."""
    from studio.teachers.config import TeacherConfig, close_teachers
    from studio.teachers.server import LlamaServerProcess

    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp,
        LlamaServerProcess(model, alias="bench") as server,
    ):
        for width in (1, concurrency):
            task.check()
            task.progress(1, 2, f"llama_cpp.server, {width} page(s) at a time")
            config = TeacherConfig(
                kind="openai", base_url=server.url, model="bench", concurrency=width
            )
            project = Project.open(Path(tmp) / f"pages-{width}")
            rows.append(_timed_batch(project, config, pages, max_tokens, seed, task))
            close_teachers()
    one, many = rows
    return {
        "tool": "llama_cpp.server (decodes one request at a time)",
        "rows": rows,
        "speedup": round(one["wall_seconds"] / many["wall_seconds"], 2)
        if many["wall_seconds"]
        else 0.0,
    }


def _timed_batch(
    project: Project, config: Any, pages: int, max_tokens: int, seed: int, task: Task
) -> dict[str, Any]:
    in_flight: set[int] = set()
    peak = [0]

    def on_event(e: Event) -> None:  # called from the pages' threads: a set is enough here
        if e.kind == "step":
            in_flight.add(e.page_id)
        elif e.kind == "page":
            in_flight.discard(e.page_id)
        peak[0] = max(peak[0], len(in_flight))

    batch = BatchConfig(
        pages=pages, teachers=[TeacherChoice.of(config)], max_tokens=max_tokens, seed=seed
    )
    with project.store() as store:
        started = time.perf_counter()
        report = run_batch(project, store, new_batch(store, batch), task=task, on_event=on_event)
        wall = time.perf_counter() - started
    return {
        "concurrency": config.concurrency,
        "wall_seconds": round(wall, 3),
        "seconds_per_page": round(wall / pages, 3),
        "peak_pages_in_flight": peak[0],
        "completion_tokens": report.completion_tokens,
        "tokens_per_wall_second": _rate(report.completion_tokens, wall),
        "accepted": report.accepted,
        "rejected": report.rejected,
        "failed": report.failed,
    }


def _reference(model: Path, calls: list[record.Version], task: Task) -> dict[str, Any]:
    """The studio's drafts and rewrites asked again of llama-cpp-python itself, with the same
    messages and sampling (seed included)."""
    from llama_cpp import Llama

    from studio.teachers.llama import SAMPLER_DEFAULTS, LlamaSettings

    s = LlamaSettings()
    llm = Llama(
        model_path=str(model), n_ctx=s.n_ctx, n_threads=s.n_threads,
        n_threads_batch=s.n_threads_batch, verbose=False,
    )  # fmt: skip
    tokens, seconds = 0, 0.0
    try:
        for i, v in enumerate(calls):
            task.check()
            task.progress(1, 2, f"llama-cpp-python, call {i + 1}/{len(calls)}")
            sampling = v.sampling or {}
            started = time.perf_counter()
            reply = llm.create_chat_completion(
                messages=v.prompt,  # type: ignore[arg-type]
                max_tokens=sampling.get("max_tokens", 256),
                temperature=sampling.get("temperature", 0.8),
                top_p=sampling.get("top_p", 0.95),
                seed=sampling.get("seed"),
                top_k=SAMPLER_DEFAULTS["top_k"],
                min_p=SAMPLER_DEFAULTS["min_p"],
                repeat_penalty=sampling.get("repeat_penalty", 1.0),
            )
            seconds += time.perf_counter() - started
            tokens += int(reply["usage"]["completion_tokens"])  # type: ignore[index]
    finally:
        llm.close()
    return {
        "tool": "llama-cpp-python create_chat_completion",
        "calls": len(calls),
        "tokens": tokens,
        "teacher_seconds": round(seconds, 3),
        "tokens_per_second": _rate(tokens, seconds),
    }


def _rate(tokens: int, seconds: float) -> float:
    return round(tokens / seconds, 1) if seconds > 0 else 0.0


def format_table(result: dict[str, Any]) -> str:
    ref, st, loop = result["reference"], result["studio"], result["loop"]
    lines = [
        f"{result['model']}: {result['pages']} pages, max {result['max_tokens']} tokens a reply;"
        " the same drafts and rewrites through each",
        f"{'tool':<42} {'calls':>6} {'tokens':>7} {'seconds':>8} {'tokens/s':>9}",
    ]
    for row in (ref, st):
        lines.append(
            f"{row['tool']:<42} {row['calls']:>6} {row['tokens']:>7} "
            f"{row['teacher_seconds']:>8.2f} {row['tokens_per_second']:>9.1f}"
        )
    lines.append(
        f"loop: {loop['seconds_per_page']:.1f} s a page (drafts, critiques and their retries, "
        f"rewrite, checks), {loop['outside_teacher_share']:.1%} of it outside the teacher; "
        f"{loop['accepted']} accepted, {loop['rejected']} rejected, {loop['failed']} failed"
    )
    parallel = result.get("parallel")
    if parallel:
        lines.append(f"the same pages through {parallel['tool']}:")
        lines.append(
            f"{'pages at once':<14} {'peak':>5} {'wall s':>8} {'s/page':>7} {'tokens':>7} "
            f"{'tokens/wall s':>14}"
        )
        for row in parallel["rows"]:
            lines.append(
                f"{row['concurrency']:<14} {row['peak_pages_in_flight']:>5} "
                f"{row['wall_seconds']:>8.1f} {row['seconds_per_page']:>7.1f} "
                f"{row['completion_tokens']:>7} {row['tokens_per_wall_second']:>14.1f}"
            )
        lines.append(f"speed-up: {parallel['speedup']:.2f}x")
    return "\n".join(lines)
