"""What every teacher is: a chat model that streams a reply, and the errors it may raise.

A teacher is named by a spec string a curator can type: ``local:PATH.gguf`` (llama.cpp in-process)
or ``openai:BASE_URL`` with a model name (any OpenAI-compatible chat-completions server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}
TokenFn = Callable[[str], None]
CancelFn = Callable[[], bool]
RestartFn = Callable[[str], None]
JsonSchema = dict[str, Any]  # a JSON Schema object, as json.loads gives it

# control characters (but tab and newline) and lone surrogates: a reply is stored, shown and
# exported as text, and SQLite's UTF-8 encoding refuses surrogates
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def clean_text(piece: str) -> str:
    """A piece of a reply as the studio keeps it: no control characters but tab and newline
    (``\\r`` goes too, so a ``\\r\\n`` split across two pieces still ends one line)."""
    return _UNPRINTABLE.sub("", piece)


class TeacherError(Exception):
    """A teacher could not give a complete reply; the message says why, for the curator."""


class IncompleteReply(TeacherError):
    """The reply stopped before the teacher finished it (dropped connection, cancel, cut-off).

    ``partial`` holds what arrived, for display only: a partial reply is never stored as a
    finished page."""

    def __init__(self, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(slots=True)
class Sampling:
    """Sampling parameters, recorded with every page a teacher writes."""

    max_tokens: int = 1024
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int | None = None
    # a local model's penalty on repeating recent tokens (llama.cpp's long-standing 1.1): small
    # models loop without it. Remote servers keep their own defaults (OpenAI has no such field).
    repeat_penalty: float = 1.1

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "repeat_penalty": self.repeat_penalty,
        }


@dataclass(slots=True)
class Completion:
    """A finished reply: its text, why it stopped, token counts and timing."""

    text: str
    finish_reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    teacher: str  # the teacher's name, as recorded with the page
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@runtime_checkable
class Teacher(Protocol):
    """A chat model. ``chat`` blocks until the reply is complete, calling ``on_token`` with each
    piece as it arrives, and raises :class:`TeacherError` (or :class:`IncompleteReply`) when it
    cannot finish; ``cancelled`` is polled between pieces.

    A remote teacher may start a reply over (a dropped connection, a 5xx, a malformed stream):
    it then calls ``on_restart(reason)``, and the pieces given to ``on_token`` so far are void
    (a live preview clears itself). The studio's teachers also say how many ``chat`` calls
    they serve at once, ``concurrency`` (read it as ``getattr(teacher, "concurrency", 1)``);
    more callers wait their turn.

    ``json_schema`` asks for a reply that is one JSON value of that schema: a local model is
    held to it by a grammar, a server is sent it as ``response_format`` when it takes one.
    The caller still validates the reply: a server may ignore the schema, and a reply cut off
    at ``max_tokens`` is not complete JSON."""

    name: str

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        on_token: TokenFn | None = None,
        cancelled: CancelFn | None = None,
        on_restart: RestartFn | None = None,
        json_schema: JsonSchema | None = None,
    ) -> Completion: ...

    def close(self) -> None: ...
