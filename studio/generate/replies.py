"""Reading a teacher's structured replies: the critique (JSON scores and problems) and proposed
subtopics (a JSON list).

A malformed reply is repaired only mechanically: code fences and prose around the JSON are
dropped, trailing commas removed, Python's True/False/None spelled as JSON. A value that is not
there is never guessed: a critique without a score for every criterion is an error, and the loop
asks the teacher again.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

CRITERIA = (
    "correctness",
    "self_contained",
    "progression",
    "explains_why",
    "worked_examples",
    "no_noise",
)
SCORE_RANGE = (1.0, 5.0)
MAX_SCAN = 64_000  # characters of a reply searched for JSON (a critique is ~1k)
MAX_STARTS = 16  # opening brackets tried: bounds the work on a hostile reply
MAX_PROBLEMS = 20
MAX_PROBLEM_CHARS = 500


class ReplyError(ValueError):
    """A reply that cannot be read as what was asked; the message is sent back to the teacher."""


@dataclass(slots=True)
class Critique:
    scores: dict[str, float]
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    repairs: list[str] = field(default_factory=list)  # what was fixed to read the reply

    @property
    def mean(self) -> float:
        return sum(self.scores.values()) / len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": round(self.mean, 3)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Critique:
        return cls(
            dict(data["scores"]),
            list(data.get("problems", [])),
            data.get("summary", ""),
            list(data.get("repairs", [])),
        )


# -- finding the JSON in a reply ------------------------------------------------------------------


def _balanced(text: str, start: int) -> int | None:
    """The index after the bracket closing the one at ``start`` (strings respected), or None."""
    opening = text[start]
    closing = "}" if opening == "{" else "]"
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1 if ch == closing else None
    return None


_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_PY_LITERALS = re.compile(r"\b(True|False|None)\b")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"'})


def _outside_strings(text: str, fix: Any) -> str:
    """Apply ``fix`` to the parts of JSON text that are not inside string literals."""
    parts = re.split(r'("(?:[^"\\]|\\.)*")', text)
    return "".join(p if i % 2 else fix(p) for i, p in enumerate(parts))


def extract_json(text: str, kind: type) -> tuple[Any, list[str]]:
    """The first JSON value of type ``kind`` (dict or list) in ``text``, and the repairs that
    reading it took. Raises :class:`ReplyError`."""
    text = text[:MAX_SCAN]
    opening = "{" if kind is dict else "["
    what = "object" if kind is dict else "array"
    start = text.find(opening)
    if start < 0:
        raise ReplyError(f"the reply holds no JSON {what}")
    repairs = []
    if text[:start].strip() or "```" in text:
        repairs.append("dropped text around the JSON")
    last_error = "unbalanced brackets"
    tries = 0
    while start >= 0 and tries < MAX_STARTS:
        tries += 1
        end = _balanced(text, start)
        if end is not None:
            candidate = text[start:end]
            try:
                return json.loads(candidate), repairs
            except RecursionError as exc:
                raise ReplyError(f"the JSON {what} is nested too deeply") from exc
            except ValueError as exc:
                last_error = str(exc)
                fixed, done = _repair(candidate)
                if done:
                    try:
                        return json.loads(fixed), repairs + done
                    except (ValueError, RecursionError) as exc2:
                        last_error = str(exc2)
        start = text.find(opening, start + 1)
    raise ReplyError(f"no readable JSON {what} in the reply ({last_error})")


def _repair(candidate: str) -> tuple[str, list[str]]:
    done = []
    fixed = candidate.translate(_SMART_QUOTES)
    if fixed != candidate:
        done.append("straightened quotes")
    no_commas = _outside_strings(fixed, lambda p: _TRAILING_COMMA.sub(r"\1", p))
    if no_commas != fixed:
        done.append("removed trailing commas")
    literals = _outside_strings(
        no_commas, lambda p: _PY_LITERALS.sub(lambda m: _JSON_LITERAL[m.group(1)], p)
    )
    if literals != no_commas:
        done.append("spelled True/False/None as JSON")
    return literals, done


_JSON_LITERAL = {"True": "true", "False": "false", "None": "null"}


# -- the critique -------------------------------------------------------------------------------


def _criterion(name: str) -> str:
    return re.sub(r"[^a-z]+", "_", name.lower()).strip("_")


def _score(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ReplyError(f"the score for {name} is {value!r}, not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError as exc:
            raise ReplyError(f"the score for {name} is {value[:40]!r}, not a number") from exc
    if not isinstance(value, int | float) or value != value:  # NaN is not a score
        raise ReplyError(f"the score for {name} is not a number")
    lo, hi = SCORE_RANGE
    if not lo <= value <= hi:
        raise ReplyError(f"the score for {name} is {value:g}, outside {lo:g} to {hi:g}")
    return float(value)


_PLACEHOLDERS = {"", "...", "…", "one sentence on the draft"}


def _as_text(value: Any) -> str:
    """A problem or summary as one line of text (an object's string values joined)."""
    if isinstance(value, dict):
        value = "; ".join(str(v) for v in value.values() if isinstance(v, str | int | float))
    elif isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    return " ".join(str(value).split())[:MAX_PROBLEM_CHARS]


def parse_critique(text: str) -> Critique:
    """The critique in a reply, or :class:`ReplyError` saying what is missing or wrong."""
    data, repairs = extract_json(text, dict)
    raw_scores = data.get("scores", data)
    if not isinstance(raw_scores, dict):
        raise ReplyError('"scores" must be an object of criterion: score')
    by_name = {_criterion(str(k)): v for k, v in raw_scores.items()}
    missing = [c for c in CRITERIA if c not in by_name]
    if missing:
        raise ReplyError(f"no score for {', '.join(missing)}")
    scores = {c: _score(by_name[c], c) for c in CRITERIA}
    problems = data.get("problems", [])
    if isinstance(problems, str):
        problems = [problems]
    if not isinstance(problems, list):
        raise ReplyError('"problems" must be a list of strings')
    kept = [t for t in (_as_text(p) for p in problems) if t not in _PLACEHOLDERS]
    summary = _as_text(data.get("summary", ""))
    summary = "" if summary in _PLACEHOLDERS else summary
    return Critique(scores, kept[:MAX_PROBLEMS], summary, repairs)


def parse_string_list(text: str, *, max_items: int = 50, max_chars: int = 120) -> list[str]:
    """A JSON array of short strings (proposed subtopics); non-strings are an error."""
    data, _repairs = extract_json(text, list)
    out = []
    for item in data[:max_items]:
        if not isinstance(item, str):
            raise ReplyError("the array must hold only strings")
        name = " ".join(item.split())
        if name and len(name) <= max_chars:
            out.append(name)
    if not out:
        raise ReplyError("the array holds no usable name")
    return out
