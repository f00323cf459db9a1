"""The checks a rewritten page passes before it is accepted, each with its reason.

Readable text; not cut off; length; every code block parses (Python is parsed and compiled into a
code object, never run; JSON is loaded); no reference to what the page does not hold ("click
here", "see chapter 3", links); educational markers; the classifier's keep decision where the
project has one; no near-duplicate among the project's documents; no overlap with benchmark text.

A check that cannot run here (no classifier yet, no dedup index) says so with ``passed = None``;
only a ``False`` rejects a page.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import warnings
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from studio.store import Store

log = logging.getLogger("studio.generate")

MIN_COMPRESSION = 0.2  # zlib ratio below which a page is a loop, not prose
MIN_REPEAT_BYTES = 600
MAX_REPEATED_LINES = 0.3
MAX_CODE_CHARS = 100_000  # per block: larger blocks are refused, not parsed
PYTHON_TAGS = {"python", "py", "python3", "py3", "pycon"}
JSON_TAGS = {"json"}
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)


@dataclass(slots=True)
class CheckResult:
    name: str
    passed: bool | None  # None: the check could not run here
    detail: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reason(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(slots=True)
class CheckSettings:
    min_words: int = 120
    max_words: int = 5000
    min_markers: int = 3
    classifier: bool = True
    near_duplicates: bool = True
    benchmarks: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CheckSettings:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


# -- text, completeness, length -------------------------------------------------------------------


def check_text(text: str) -> CheckResult:
    """Fails on an empty reply, or one that is largely not text (binary, replacement chars)."""
    if not text.strip():
        return CheckResult("text", False, "the page is empty")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\t"))
    share = odd / len(text)
    if share > 0.01:
        return CheckResult("text", False, f"{share:.0%} of the characters are not text", share)
    longest = max((len(w) for w in text.split()), default=0)
    if longest > 200:
        return CheckResult("text", False, f"a 'word' of {longest:,} characters", longest)
    return CheckResult("text", True, "readable text", share)


def check_complete(finish_reason: str) -> CheckResult:
    if finish_reason == "length":
        return CheckResult("complete", False, "the teacher was cut off at the token limit")
    return CheckResult("complete", True, "the teacher finished the page")


def check_repetition(text: str) -> CheckResult:
    """Fails on a page that loops: it compresses far better than prose (~0.35-0.5 with zlib), or
    many of its lines are copies of earlier ones."""
    data = text.encode("utf-8")
    ratio = len(zlib.compress(data, 6)) / len(data) if len(data) >= MIN_REPEAT_BYTES else 1.0
    lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= 20]
    repeated = (len(lines) - len(set(lines))) / len(lines) if len(lines) >= 5 else 0.0
    if ratio < MIN_COMPRESSION:
        return CheckResult(
            "repetition", False, f"loops: compresses to {ratio:.0%} of its size", ratio
        )
    if repeated > MAX_REPEATED_LINES:
        return CheckResult("repetition", False, f"{repeated:.0%} of its lines repeat", repeated)
    return CheckResult("repetition", True, f"compresses to {ratio:.0%}", ratio)


def check_length(text: str, settings: CheckSettings) -> CheckResult:
    n = len(text.split())
    if n < settings.min_words:
        return CheckResult("length", False, f"{n:,} words < {settings.min_words:,}", n)
    if n > settings.max_words:
        return CheckResult("length", False, f"{n:,} words > {settings.max_words:,}", n)
    return CheckResult("length", True, f"{n:,} words", n)


# -- code blocks -----------------------------------------------------------------------------------


@dataclass(slots=True)
class CodeBlock:
    lang: str
    code: str
    line: int  # of the opening fence, 1-based


def code_blocks(text: str) -> tuple[list[CodeBlock], bool]:
    """Fenced blocks of ``text``, and whether every fence was closed."""
    blocks: list[CodeBlock] = []
    fences = list(_FENCE.finditer(text))
    i = 0
    while i < len(fences):
        opening = fences[i]
        mark = opening.group(1)
        close = next(
            (
                j
                for j in range(i + 1, len(fences))
                if fences[j].group(1)[0] == mark[0]
                and len(fences[j].group(1)) >= len(mark)
                and not fences[j].group(2)
            ),
            None,
        )
        if close is None:
            return blocks, False
        code = text[opening.end() + 1 : fences[close].start()]
        line = text.count("\n", 0, opening.start()) + 1
        blocks.append(CodeBlock(opening.group(2).lower(), code, line))
        i = close + 1
    return blocks, True


def _from_console(code: str) -> str:
    """The source in a ``>>>`` console transcript (its output lines dropped)."""
    lines = []
    for line in code.splitlines():
        stripped = line.lstrip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            lines.append(stripped[4:])
    return "\n".join(lines)


_PYTHONISH = re.compile(
    r"^\s*(def |class |import |from \w+ import |print\(|return\b|for \w+ in |while |if .*:$)",
    re.MULTILINE,
)


def compile_python(code: str) -> str | None:
    """None when ``code`` parses and compiles as Python; else why not. Nothing is run."""
    if ">>>" in code:
        code = _from_console(code)
    if len(code) > MAX_CODE_CHARS:
        return f"{len(code):,} characters: too long to check"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning on odd escapes is not an error
            tree = ast.parse(code, "<page>", "exec")
            compile(tree, "<page>", "exec", dont_inherit=True)  # a code object; never executed
    except SyntaxError as exc:
        return f"line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def check_code(text: str) -> CheckResult:
    blocks, closed = code_blocks(text)
    if not closed:
        return CheckResult("code", False, "a code block is never closed")
    checked, errors, other = 0, [], 0
    for block in blocks:
        if block.lang in PYTHON_TAGS or (not block.lang and _PYTHONISH.search(block.code)):
            error = compile_python(block.code)
        elif block.lang in JSON_TAGS:
            error = _json_error(block.code)
        else:
            other += 1
            continue
        checked += 1
        if error:
            errors.append(f"block at line {block.line} ({block.lang or 'python'}): {error}")
    if errors:
        return CheckResult("code", False, "; ".join(errors[:3]), len(errors))
    if not blocks:
        return CheckResult("code", True, "no code blocks", 0)
    extra = f"; {other} in other languages not checked" if other else ""
    return CheckResult("code", True, f"{checked} block(s) parse and compile{extra}", checked)


def _json_error(code: str) -> str | None:
    if len(code) > MAX_CODE_CHARS:
        return f"{len(code):,} characters: too long to check"
    try:
        json.loads(code)
    except (ValueError, RecursionError) as exc:
        return str(exc)[:200]
    return None


# -- references and markers ------------------------------------------------------------------------

_PLACES = r"(?:chapter|section|figure|fig\.|table|page|unit|lesson|appendix|diagram|video|module)"
REFERENCE_PATTERNS = [
    re.compile(r"\bclick (?:here|on the link|the link|below)\b", re.I),
    re.compile(
        rf"\b(?:see|refer to|as (?:shown|discussed|described|explained|seen) in|turn to)"
        rf" (?:the )?(?:previous |next |following |earlier |last )?{_PLACES}s? ?\d+(?:\.\d+)*",
        re.I,
    ),
    re.compile(r"\bin (?:chapter|figure|fig\.|table|appendix|page) \d+(?:\.\d+)*", re.I),
    re.compile(
        r"\b(?:in|from|see) the (?:previous|next|last|earlier|following) "
        r"(?:chapter|section|lesson|unit|video|module)\b",
        re.I,
    ),
    re.compile(
        r"\b(?:the |this )(?:figure|diagram|image|picture|video|graph) (?:above|below)\b", re.I
    ),
    re.compile(r"https?://\S+|\bwww\.\S+", re.I),
    re.compile(
        r"\b(?:visit|check out|subscribe to|follow|download) (?:our|my|the) "
        r"(?:website|channel|blog|site|app|newsletter)\b",
        re.I,
    ),
]


def check_references(text: str) -> CheckResult:
    found = []
    for pattern in REFERENCE_PATTERNS:
        found += [m.group(0)[:60] for m in pattern.finditer(text[:200_000])]
    if found:
        shown = ", ".join(repr(f) for f in list(dict.fromkeys(found))[:3])
        return CheckResult("references", False, f"refers outside the page: {shown}", len(found))
    return CheckResult("references", True, "self-contained", 0)


MARKERS = {
    "example": re.compile(r"\bfor (?:example|instance)\b|\bexample\s*\d*\s*[:.]", re.I),
    "exercise": re.compile(r"\b(?:exercise|problem|practice|question)\s*\d*\s*[:.]", re.I),
    "solution": re.compile(r"\b(?:solution|answer)\s*\d*\s*[:.]", re.I),
    "steps": re.compile(r"\bstep\s*\d+\b|^\s*\d+[.)]\s+\S", re.I | re.M),
    "reasons": re.compile(
        r"\bbecause\b|\btherefore\b|\bthis (?:is why|means that)\b|\bso that\b", re.I
    ),
    "definitions": re.compile(r"\bis defined as\b|\bdefinition\b|\bis called\b|\bwe call\b", re.I),
    "headings": re.compile(r"^#{1,4} \S", re.M),
    "summary": re.compile(
        r"\bin summary\b|\bto summari[sz]e\b|\bkey (?:idea|point|takeaway)s?\b", re.I
    ),
}


def check_markers(text: str, settings: CheckSettings) -> CheckResult:
    head = text[:200_000]
    found = [name for name, pattern in MARKERS.items() if pattern.search(head)]
    n = len(found)
    detail = ", ".join(found) or "none"
    if n < settings.min_markers:
        return CheckResult(
            "markers", False, f"{n} educational marker(s) < {settings.min_markers}: {detail}", n
        )
    return CheckResult("markers", True, f"{n} educational markers: {detail}", n)


# -- checks against the project --------------------------------------------------------------------


class PageChecker:
    """Runs every check on a page; loads the classifier, the near-duplicate index and the
    benchmark index once, on first use, and says when one is not there."""

    def __init__(self, project_root: Any, store: Store, settings: CheckSettings) -> None:
        self.root, self.store, self.settings = project_root, store, settings
        self._classifier: Any = None
        self._dedup: Any = None
        self._bench: Any = None
        self._missing: dict[str, str] = {}

    def run(self, text: str, finish_reason: str = "stop") -> list[CheckResult]:
        s = self.settings
        results = [check_text(text), check_complete(finish_reason), check_length(text, s)]
        results.append(check_repetition(text))
        results += [check_code(text), check_references(text), check_markers(text, s)]
        if s.classifier:
            results.append(self._guarded("classifier", self.check_classifier, text))
        if s.near_duplicates:
            results.append(self._guarded("near-duplicate", self.check_near_duplicate, text))
        if s.benchmarks:
            results.append(self._guarded("benchmarks", self.check_benchmarks, text))
        return results

    def _guarded(self, name: str, check: Any, text: str) -> CheckResult:
        try:
            return check(text)
        except Exception as exc:  # a broken model file or index must not stop the batch
            log.exception("check %s failed", name)
            return CheckResult(name, None, f"could not run: {type(exc).__name__}: {exc}")

    def check_classifier(self, text: str) -> CheckResult:
        if self._classifier is None and "classifier" not in self._missing:
            from studio.classify.versions import latest_version, load_classifier
            from studio.project import Project

            if latest_version(self.store) is None:
                self._missing["classifier"] = "no classifier trained yet"
            else:
                self._classifier = load_classifier(Project(self.root), self.store)
        if self._classifier is None:
            return CheckResult("classifier", None, self._missing["classifier"])
        from studio.classify.features import DocText

        clf = self._classifier
        score, keep = clf.predict([DocText(0, text, 1.0)])  # no store: nothing cached for id 0
        what = "P(keep)" if clf.meta.get("model_kind") == "logistic" else "score"
        verdict = "kept" if bool(keep[0]) else "dropped"
        detail = f"{what} {float(score[0]):.2f}: {verdict} by {clf.version}"
        return CheckResult("classifier", bool(keep[0]), detail, float(score[0]))

    def check_near_duplicate(self, text: str) -> CheckResult:
        if self._dedup is None and "near-duplicate" not in self._missing:
            try:
                from studio.dedup import NearDuplicateIndex
            except ImportError:
                self._missing["near-duplicate"] = "near-duplicate detection is not available"
            else:
                # save=False: the loop reads here; its writes go through the caller's writer
                self._dedup = NearDuplicateIndex.from_store(self.store, save=False)
        if self._dedup is None:
            return CheckResult("near-duplicate", None, self._missing["near-duplicate"])
        matches = sorted(self._dedup.query(text), key=lambda m: -m[1])
        if matches:
            doc_id, sim = matches[0]
            return CheckResult(
                "near-duplicate", False, f"near-duplicate of document {doc_id} ({sim:.2f})", sim
            )
        return CheckResult("near-duplicate", True, "no near-duplicate in the project", 0.0)

    def remember(self, doc_id: int, text: str) -> None:
        """An accepted page joins the near-duplicate index, so the batch's next pages see it."""
        add = getattr(self._dedup, "add", None)
        if add is not None:
            add(doc_id, text)

    def check_benchmarks(self, text: str) -> CheckResult:
        if self._bench is None and "benchmarks" not in self._missing:
            try:
                from studio.decontam import BenchmarkIndex
            except ImportError:
                self._missing["benchmarks"] = "decontamination is not available"
            else:
                self._bench = BenchmarkIndex.load()
        if self._bench is None:
            return CheckResult("benchmarks", None, self._missing["benchmarks"])
        hits = list(self._bench.hits(text))
        if hits:
            first = hits[0]
            name = getattr(first, "benchmark", None) or str(first)[:80]
            return CheckResult(
                "benchmarks",
                False,
                f"overlaps benchmark text ({name}; {len(hits)} hit(s))",
                len(hits),
            )
        return CheckResult("benchmarks", True, "no overlap with benchmark text", 0)


def failures(results: list[CheckResult]) -> list[str]:
    return [r.reason for r in results if r.passed is False]
