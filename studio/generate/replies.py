"""Reading a teacher's structured replies: the critique (JSON scores and problems), proposed
subtopics (a JSON list) and a page's educational-value score (:mod:`studio.teacher_labels`), and
the JSON schemas they are asked for with (a local model is held to
the schema by a grammar; a server that takes a ``response_format`` is sent it).

The schemas keep to what structured-output servers take (OpenAI's strict mode included): every
key required, no other keys, a score's range as an ``enum``, no string lengths; the one bound is
``maxItems`` on the problems, without which a small model can list one problem until it runs
out of tokens. A server that refuses a schema is asked without one (``studio.teachers.openai``).

A malformed reply is repaired only mechanically: code fences and prose around the JSON are
dropped, trailing commas removed, Python's True/False/None spelled as JSON, raw line breaks
inside strings allowed. A value that is not there is never guessed: a critique without a score
for every criterion is an error, and the loop asks the teacher again.
"""

from __future__ import annotations

import json
import math
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
MAX_PROBLEMS = 10  # of one critique: more is a critic repeating itself, not a page's problems
MAX_PROBLEM_CHARS = 500

# the order of the keys is the order a constrained model writes them: the problems first, so
# that the scores come after the critic has named what is wrong
CRITIQUE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "problems": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_PROBLEMS},
        "scores": {
            "type": "object",
            "properties": {c: {"type": "integer", "enum": [1, 2, 3, 4, 5]} for c in CRITERIA},
            "required": list(CRITERIA),
            "additionalProperties": False,
        },
        "summary": {"type": "string"},
    },
    "required": ["problems", "scores", "summary"],
    "additionalProperties": False,
}
# an object, not a bare array: OpenAI's structured outputs want an object at the top
SUBTOPICS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"subtopics": {"type": "array", "items": {"type": "string"}}},
    "required": ["subtopics"],
    "additionalProperties": False,
}


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
                        return json.loads(fixed, strict=False), repairs + done
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
    try:
        json.loads(literals)
    except ValueError:
        try:  # a raw line break or tab inside a string: JSON wants it escaped
            json.loads(literals, strict=False)
        except ValueError:
            pass
        else:
            done.append("allowed line breaks inside strings")
    except RecursionError:
        pass
    return literals, done


_JSON_LITERAL = {"True": "true", "False": "false", "None": "null"}


# -- the critique -------------------------------------------------------------------------------


def _criterion(name: str) -> str:
    return re.sub(r"[^a-z]+", "_", name.lower()).strip("_")


def _number(value: Any, what: str) -> float:
    """A score as a number: a JSON number, or a string holding one; ``what`` names it."""
    if isinstance(value, bool):
        raise ReplyError(f"{what} is {value!r}, not a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError as exc:
            raise ReplyError(f"{what} is {value[:40]!r}, not a number") from exc
    if not isinstance(value, int | float) or value != value:  # NaN is not a score
        raise ReplyError(f"{what} is not a number")
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits: far outside any scale
        raise ReplyError(f"{what} is a number of {len(str(value))} digits") from None


def _score(value: Any, name: str) -> float:
    value = _number(value, f"the score for {name}")
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
    # the same problem named twice is one problem
    kept = list(dict.fromkeys(t for t in (_as_text(p) for p in problems) if t not in _PLACEHOLDERS))
    summary = _as_text(data.get("summary", ""))
    summary = "" if summary in _PLACEHOLDERS else summary
    return Critique(scores, kept[:MAX_PROBLEMS], summary, repairs)


def parse_string_list(text: str, *, max_items: int = 50, max_chars: int = 120) -> list[str]:
    """A JSON array of short strings (proposed subtopics); non-strings are an error."""
    data, _repairs = extract_json(text, list)
    return _names(data, max_items, max_chars)


def parse_subtopics(text: str, *, max_items: int = 50, max_chars: int = 120) -> list[str]:
    """Proposed subtopics: the ``subtopics`` list of a JSON object (the form asked for), or a
    bare JSON array of names (what a teacher not held to the schema may send)."""
    brace, bracket = text.find("{", 0, MAX_SCAN), text.find("[", 0, MAX_SCAN)
    if brace < 0 or 0 <= bracket < brace:
        return parse_string_list(text, max_items=max_items, max_chars=max_chars)
    data, _repairs = extract_json(text, dict)
    names = data.get("subtopics")
    if not isinstance(names, list):
        raise ReplyError('"subtopics" must be a list of strings')
    return _names(names, max_items, max_chars)


def _names(data: list[Any], max_items: int, max_chars: int) -> list[str]:
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


# -- a page's educational value (studio.teacher_labels) -------------------------------------------

PAGE_SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "score": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]},
    },
    "required": ["reason", "score"],
    "additionalProperties": False,
}


@dataclass(slots=True)
class PageScore:
    score: int  # 0-5 on the rubric
    reason: str
    repairs: list[str] = field(default_factory=list)


def parse_page_score(text: str) -> PageScore:
    """The rubric score in a reply (a whole number 0-5; "3" and 3.0 are read as 3), or
    :class:`ReplyError` saying what is wrong."""
    data, repairs = extract_json(text, dict)
    if "score" not in data:
        raise ReplyError('no "score"')
    value = _number(data["score"], "the score")
    if not math.isfinite(value) or value != int(value):
        raise ReplyError("the score must be a whole number from 0 to 5")
    if not 0 <= value <= 5:
        raise ReplyError(f"the score is {value:g}, outside 0 to 5")
    reason = _as_text(data.get("reason", ""))
    return PageScore(int(value), "" if reason in _PLACEHOLDERS else reason, repairs)
