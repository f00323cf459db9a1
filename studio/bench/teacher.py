"""Benchmark: tokens per second through the studio's teachers beside the tools they wrap, same
model, same prompts, same run.

*Local*: the studio's :class:`LlamaCppTeacher` against llama-cpp-python's own
``create_chat_completion(stream=True)`` on a second instance of the same GGUF with the same
settings. Both decode greedily (temperature 0), so they write the same tokens; their order
alternates from one round to the next, and each side's best round is kept. Tokens per second is
completion tokens over the whole reply's wall time (prompt included). Target: overhead < 5 %.

*Remote*: the same GGUF behind ``python -m llama_cpp.server`` on 127.0.0.1 (or ``server_url``),
``requests`` replies at each concurrency setting, through the studio's
:class:`OpenAICompatTeacher` and through a bare ``http.client`` streaming client (the reference),
in alternating order, best of ``rounds`` per side. Aggregate tokens per second (all completion
chunks over the wall time) draws the throughput-against-concurrency curve. llama_cpp.server
decodes one reply at a time, so its curve is flat; a batching server (vLLM) rises with
concurrency.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from studio.teachers.base import Message, Sampling

PROMPTS: list[list[Message]] = [
    [
        {"role": "system", "content": "You write clear textbook pages for students."},
        {"role": "user", "content": "Explain what a prime number is, with two examples."},
    ],
    [
        {"role": "system", "content": "You write clear textbook pages for students."},
        {"role": "user", "content": "Write a short section on how a Python for-loop works."},
    ],
    [
        {"role": "system", "content": "You write clear textbook pages for students."},
        {"role": "user", "content": "Describe the water cycle for a ten-year-old."},
    ],
]
TARGET_OVERHEAD = 0.05
ProgressFn = Callable[[int, int, str], None]


def run(
    model: Path,
    *,
    max_tokens: int = 128,
    rounds: int = 2,
    n_threads: int = 1,
    n_gpu_layers: int = 0,
    concurrency: tuple[int, ...] = (1, 2, 4),
    requests: int = 4,
    server: bool = True,
    server_url: str | None = None,
    server_model: str = "bench",
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Both benchmarks; ``server=False`` skips the remote one."""
    report = progress or (lambda done, total, msg: None)
    result: dict[str, Any] = {
        "model": model.name,
        "max_tokens": max_tokens,
        "local": bench_local(
            model,
            max_tokens=max_tokens,
            rounds=rounds,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            progress=report,
        ),
    }
    if server:
        result["remote"] = bench_remote(
            model,
            max_tokens=max_tokens,
            concurrency=concurrency,
            requests=requests,
            rounds=rounds,
            n_threads=n_threads,
            server_url=server_url,
            server_model=server_model,
            progress=report,
        )
    return result


# -- local ---------------------------------------------------------------------------------------


def bench_local(
    model: Path,
    *,
    max_tokens: int,
    rounds: int,
    n_threads: int,
    n_gpu_layers: int,
    progress: ProgressFn,
) -> dict[str, Any]:
    from llama_cpp import Llama

    from studio.teachers.llama import LlamaCppTeacher, LlamaSettings

    settings = LlamaSettings(
        n_ctx=4096, n_threads=n_threads, n_threads_batch=n_threads, n_gpu_layers=n_gpu_layers
    )
    studio = LlamaCppTeacher(model, settings)
    studio.load()
    direct = Llama(
        model_path=str(model),
        n_ctx=settings.n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_gpu_layers=n_gpu_layers,
        verbose=False,
    )
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0)
    n = len(PROMPTS)
    tokens = [0] * n

    def studio_reply(i: int) -> str:
        reply = studio.chat(PROMPTS[i], sampling)
        tokens[i] = reply.completion_tokens  # the direct side writes the same text (greedy)
        return reply.text

    sides = {
        "studio": studio_reply,
        "direct": lambda i: _direct_reply(direct, PROMPTS[i], sampling),
    }
    wall = {side: [float("inf")] * n for side in sides}
    cpu = {side: [float("inf")] * n for side in sides}
    texts: dict[str, list[str]] = {side: [""] * n for side in sides}
    try:
        for r in range(rounds):
            for i in range(n):
                for side in ("studio", "direct") if (r + i) % 2 == 0 else ("direct", "studio"):
                    w, c = time.perf_counter(), time.process_time()
                    texts[side][i] = sides[side](i)
                    wall[side][i] = min(wall[side][i], time.perf_counter() - w)
                    cpu[side][i] = min(cpu[side][i], time.process_time() - c)
                progress(r * n + i + 1, rounds * n, f"local round {r + 1}")
    finally:
        studio.close()
        direct.close()
    rate = {side: sum(tokens) / sum(wall[side]) for side in sides}
    cpu_rate = {side: sum(tokens) / sum(cpu[side]) for side in sides}
    overhead = rate["direct"] / rate["studio"] - 1
    overhead_cpu = cpu_rate["direct"] / cpu_rate["studio"] - 1
    return {
        "prompts": n,
        "rounds": rounds,
        "completion_tokens": sum(tokens),
        "studio_tokens_per_second": round(rate["studio"], 1),
        "direct_tokens_per_second": round(rate["direct"], 1),
        "overhead": round(overhead, 4),
        "studio_tokens_per_cpu_second": round(cpu_rate["studio"], 1),
        "direct_tokens_per_cpu_second": round(cpu_rate["direct"], 1),
        "overhead_cpu": round(overhead_cpu, 4),
        "same_text": texts["studio"] == texts["direct"],
        "target": f"overhead < {TARGET_OVERHEAD:.0%}",
        "target_met": overhead < TARGET_OVERHEAD,
    }


def _direct_reply(llm: Any, messages: list[Message], sampling: Sampling) -> str:
    pieces = []
    for chunk in llm.create_chat_completion(
        messages,
        stream=True,
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        repeat_penalty=sampling.repeat_penalty,
    ):
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            pieces.append(content)
    return "".join(pieces)


# -- remote --------------------------------------------------------------------------------------


def bench_remote(
    model: Path,
    *,
    max_tokens: int,
    concurrency: tuple[int, ...],
    requests: int,
    rounds: int,
    n_threads: int,
    server_url: str | None,
    server_model: str,
    progress: ProgressFn,
) -> dict[str, Any]:
    from studio.teachers.server import LlamaServerProcess

    args = (max_tokens, concurrency, requests, rounds, progress)
    if server_url:
        return _curve(server_url, server_model, *args)
    with LlamaServerProcess(model, alias=server_model, n_threads=n_threads) as server:
        result = _curve(server.url, server_model, *args)
    result["server"] = "llama_cpp.server (started for the benchmark)"
    return result


def _curve(
    url: str,
    model: str,
    max_tokens: int,
    concurrency: tuple[int, ...],
    requests: int,
    rounds: int,
    progress: ProgressFn,
) -> dict[str, Any]:
    from studio.teachers.openai import OpenAICompatTeacher, RemoteSettings

    sampling = Sampling(max_tokens=max_tokens, temperature=0.0)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(requests)]
    rows = []
    for step, level in enumerate(concurrency):
        teacher = OpenAICompatTeacher(
            RemoteSettings(base_url=url, model=model, concurrency=level, retries=0)
        )
        sides = {
            "studio": partial(_studio_reply, teacher, sampling),
            "bare": partial(_bare_stream, url, model, sampling),
        }
        best = {"studio": 0.0, "bare": 0.0}
        for r in range(rounds):
            for side in ("studio", "bare") if r % 2 == 0 else ("bare", "studio"):
                best[side] = max(best[side], _throughput(sides[side], prompts, level))
        rows.append(
            {
                "concurrency": level,
                "studio_tokens_per_second": round(best["studio"], 1),
                "bare_tokens_per_second": round(best["bare"], 1),
                "overhead": round(best["bare"] / best["studio"] - 1, 4),
            }
        )
        progress(step + 1, len(concurrency), f"concurrency {level}")
    return {"server": url, "requests": requests, "rounds": rounds, "rows": rows}


def _studio_reply(teacher: Any, sampling: Sampling, messages: list[Message]) -> int:
    return teacher.chat(messages, sampling).completion_tokens


def _throughput(reply: Callable[[list[Message]], int], prompts: list, level: int) -> float:
    """All completion tokens over the wall time of ``len(prompts)`` replies, ``level`` at once."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=level) as pool:
        tokens = sum(pool.map(reply, prompts))
    return tokens / (time.perf_counter() - started)


def _bare_stream(url: str, model: str, sampling: Sampling, messages: list[Message]) -> int:
    """The reference client: one streamed request with http.client, counting content chunks."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    # what the studio's OpenAI-compatible client sends: no repeat_penalty (a local-model field)
    fields = {k: v for k, v in sampling.as_dict().items() if k != "repeat_penalty"}
    body = {"model": model, "messages": messages, "stream": True, **fields}
    body.pop("seed")
    headers = {"Content-Type": "application/json"}
    conn.request("POST", parts.path + "/chat/completions", json.dumps(body), headers)
    response = conn.getresponse()
    chunks = 0
    while line := response.readline():
        if line.startswith(b"data:") and not line.startswith(b"data: [DONE]"):
            delta = json.loads(line[5:])["choices"]
            if delta and delta[0].get("delta", {}).get("content") is not None:
                chunks += 1
    conn.close()
    return chunks


def format_table(result: dict[str, Any]) -> str:
    """The result as two small text tables: local beside llama-cpp-python, remote by concurrency."""
    loc = result["local"]
    lines = [
        f"model {result['model']}: {loc['prompts']} prompts x {loc['rounds']} rounds, "
        f"greedy, up to {result['max_tokens']} tokens each (best round per side)",
        "",
        f"{'local':26}{'tokens/s':>10}{'tokens/cpu-s':>14}",
        f"{'studio (LlamaCppTeacher)':26}{loc['studio_tokens_per_second']:>10.1f}"
        f"{loc['studio_tokens_per_cpu_second']:>14.1f}",
        f"{'llama-cpp-python (direct)':26}{loc['direct_tokens_per_second']:>10.1f}"
        f"{loc['direct_tokens_per_cpu_second']:>14.1f}",
        f"{'overhead':26}{loc['overhead']:>+10.1%}{loc['overhead_cpu']:>+14.1%}",
        f"same text: {'yes' if loc['same_text'] else 'NO'}; "
        f"target {loc['target']} (wall): {'met' if loc['target_met'] else 'NOT met'}",
    ]
    remote = result.get("remote")
    if remote:
        lines += [
            "",
            f"remote: {remote['server']}, {remote['requests']} replies per setting, "
            f"best of {remote['rounds']} rounds per side",
            f"{'concurrency':>12}{'studio tok/s':>14}{'bare http tok/s':>17}{'overhead':>10}",
        ]
        for row in remote["rows"]:
            over = f"{row['overhead']:+.1%}" if row["overhead"] is not None else "-"
            lines.append(
                f"{row['concurrency']:>12}{row['studio_tokens_per_second']:>14.1f}"
                f"{row['bare_tokens_per_second']:>17.1f}{over:>10}"
            )
    return "\n".join(lines)
