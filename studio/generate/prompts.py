"""The prompts a teacher is sent, built from the templates in ``resources/prompts/``.

Templates use ``$name`` placeholders (``string.Template``), so JSON examples in them need no
escaping. Text that came from a teacher or a web page goes into a prompt clipped, and with its
closing delimiter defused, so a draft cannot close its own ``<draft>`` block and speak as the
studio.
"""

from __future__ import annotations

import json
import random
from functools import cache
from string import Template
from typing import Any

from studio.generate.plan import Cell
from studio.generate.taxonomy import Dimensions
from studio.paths import resource
from studio.teachers.base import Message

MAX_QUOTED_CHARS = 24_000  # of a draft quoted back to the teacher (~6k tokens)
MAX_REPLY_QUOTED = 2_000  # of a malformed reply quoted back in a retry


@cache
def template(name: str) -> Template:
    return Template(resource("prompts", f"{name}.txt").read_text("utf-8"))


@cache
def system_messages() -> dict[str, Any]:
    """``default`` (the writer), ``critic``, and the Orca-style ``reasoning`` bank."""
    return json.loads(resource("prompts", "system_messages.json").read_text("utf-8"))


def quoted(text: str, tag: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """Text to place inside ``<tag>…</tag>``: clipped, and unable to close the block."""
    if len(text) > limit:
        text = text[:limit] + "\n[… clipped]"
    return text.replace(f"</{tag}>", f"</ {tag}>").replace(f"<{tag}>", f"< {tag}>")


def system_message(style_uses_bank: bool, rng: random.Random) -> str:
    bank = system_messages()
    if style_uses_bank and bank.get("reasoning"):
        return str(rng.choice(bank["reasoning"]))
    return str(bank["default"])


def generate_messages(
    cell: Cell, dims: Dimensions, *, system: str, extract: str | None = None
) -> list[Message]:
    audience = dims.find("audiences", cell.audience)
    style = dims.find("styles", cell.style)
    difficulty = dims.find("difficulties", cell.difficulty)
    seed_block = template("seed").substitute(extract=quoted(extract, "extract")) if extract else ""
    user = template("generate").substitute(
        subject=cell.subject,
        topic=cell.topic,
        subtopic=cell.subtopic,
        audience=audience.name,
        audience_description=audience.description or audience.name,
        difficulty=difficulty.name,
        difficulty_description=difficulty.description or difficulty.name,
        style=style.name,
        style_instruction=style.instruction,
        seed_block=seed_block,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def critique_messages(cell: Cell, draft: str) -> list[Message]:
    user = template("critique").substitute(cell=cell.key, draft=quoted(draft, "draft"))
    return [
        {"role": "system", "content": system_messages()["critic"]},
        {"role": "user", "content": user},
    ]


def rewrite_messages(
    cell: Cell, draft: str, scores: dict[str, float], problems: list[str], *, system: str
) -> list[Message]:
    listed = "\n".join(f"- {quoted(p, 'draft', 500)}" for p in problems) or "- (none named)"
    user = template("rewrite").substitute(
        cell=cell.key,
        draft=quoted(draft, "draft"),
        scores=", ".join(f"{k} {v:g}" for k, v in scores.items()),
        problems=listed,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def repair_messages(messages: list[Message], reply: str, error: str) -> list[Message]:
    """The conversation again, with the unreadable reply and a request to send JSON only."""
    return [
        *messages,
        {"role": "assistant", "content": reply[:MAX_REPLY_QUOTED]},
        {"role": "user", "content": template("repair").substitute(error=error)},
    ]


def propose_messages(subject: str, topic: str, existing: list[str], n: int) -> list[Message]:
    user = template("propose").substitute(
        subject=subject,
        topic=topic,
        existing="\n".join(f"- {s}" for s in existing) or "- (none yet)",
        n=n,
    )
    return [{"role": "user", "content": user}]


MAX_PAGE_CHARS = 12_000  # of a page's main text sent to be scored (~3k tokens)


def score_messages(rubric: str, page: str, limit: int = MAX_PAGE_CHARS) -> list[Message]:
    """Ask for a page's educational-value score on ``rubric`` (:mod:`studio.teacher_labels`)."""
    user = template("score").substitute(
        rubric=quoted(rubric, "rubric"), page=quoted(page, "page", limit)
    )
    return [{"role": "user", "content": user}]
