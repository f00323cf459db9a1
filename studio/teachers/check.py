""" "Test connection": open a teacher, ask it for a few tokens, and say what happened."""

from __future__ import annotations

import time
from typing import Any

from studio.teachers.base import CancelFn, IncompleteReply, Sampling, TeacherError
from studio.teachers.config import TeacherConfig, open_teacher

CHECK_MESSAGES = [
    {"role": "system", "content": "You are a patient teacher."},
    {"role": "user", "content": "In one sentence, what is a prime number?"},
]
PREVIEW_CHARS = 300
EMPTY_REPLY = (
    "the teacher answered with no text: pages asked of it would come back empty; check the model "
    "and its chat template, or the server"
)


def check_teacher(
    config: TeacherConfig, *, max_tokens: int = 32, cancelled: CancelFn | None = None
) -> dict[str, Any]:
    """Load or reach the teacher and get a short reply. Returns what a curator needs to see:
    the model, the reply's start, its speed; raises :class:`TeacherError` with the reason."""
    started = time.perf_counter()
    teacher = open_teacher(config)
    # loads a local model; lists a server's models (a wait that ``cancelled`` cuts short)
    info = teacher.info(cancelled=cancelled)
    opened = time.perf_counter() - started
    if cancelled is not None and cancelled():
        raise IncompleteReply("cancelled")
    if info.get("model_listed") is False:
        names = ", ".join(info["server_models"][:5])
        raise TeacherError(f"the server has no model {config.model!r} (it offers: {names})")
    reply = teacher.chat(
        CHECK_MESSAGES, Sampling(max_tokens=max_tokens, temperature=0.0), cancelled=cancelled
    )
    text = reply.text.strip()
    return {
        **info,
        "ok": True,
        # reachable, but a page asked of it would come back empty (a server that sends no
        # content, a model whose chat template ends its turn at once)
        "warning": None if text else EMPTY_REPLY,
        "open_seconds": round(opened, 3),
        "reply": text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else ""),
        "finish_reason": reply.finish_reason,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "reply_seconds": round(reply.seconds, 3),
        "tokens_per_second": round(reply.tokens_per_second, 1),
    }
