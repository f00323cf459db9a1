"""Simulated generation runs: five rounds drawn from a pool of real pages, healthy or collapsing.

Used by the tests (each collapse must raise its own alarm, the healthy run none) and by the
benchmark. Every scenario takes its pages from a pool the reference never saw and changes them
the way a collapsing teacher does:

- ``healthy``: fresh pages of the pool every round;
- ``topic-loss``: each round draws from a shrinking neighbourhood (TF-IDF cosine, a representation
  the studio's measures do not use) of three seed pages, down to a fifth of the pool;
- ``template-collapse``: a growing share of pages is poured into a few lesson templates (the
  same opening, headings and closing around the page's own paragraphs);
- ``tail-loss``: each round draws from a shrinking, more typical part of every topic (pages ranked
  by the mean surprisal of their words), so surprising pages and rare words fade as in Shumailov
  et al. (2024) while the topics stay.

:func:`library_pages` gives real pages wherever Python runs, for a clone without the shared web
corpus: the English prose of Python's language reference and of its standard library's
docstrings.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCENARIOS = ("healthy", "topic-loss", "template-collapse", "tail-loss")
ROUNDS = 5
SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\w+")

TEMPLATES = (
    (
        "In this lesson, we will explore {topic}. By the end of it, you will understand the key "
        "ideas and how they are used in everyday life.",
        ("## Introduction", "## Key Concepts", "## Summary"),
        "To sum up, {topic} is an important subject to understand. Remember the key points above "
        "and practise them regularly.",
    ),
    (
        "Have you ever wondered about {topic}? In this chapter, we will take a closer look at it "
        "step by step, with clear explanations and examples.",
        ("## What Is It?", "## How It Works", "## Conclusion"),
        "In conclusion, {topic} plays an important role, and understanding it helps us make "
        "better decisions.",
    ),
    (
        "Welcome to our guide on {topic}! This section explains the main ideas in simple terms "
        "so that anyone can follow along.",
        ("## Overview", "## Main Ideas", "## Final Thoughts"),
        "We hope this guide on {topic} was helpful. Keep exploring and learning more about it.",
    ),
)


def trim(text: str, words: int) -> str:
    """The text cut after the paragraph that reaches ``words`` words (pages stay pages)."""
    out, count = [], 0
    for para in text.split("\n"):
        out.append(para)
        count += len(para.split())
        if count >= words:
            break
    return "\n".join(out).strip()


# -- real pages that ship with Python ------------------------------------------------------------

SKIPPED_PARTS = {"site-packages", "test", "tests", "idle_test", "turtledemo", "__pycache__"}
PROSE_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]*[,.;:!?)]*$")


@functools.lru_cache(maxsize=2)  # parsing the library's sources takes seconds
def library_pages(words: int = 200) -> tuple[str, ...]:
    """Pages of Python's own documentation, cut into pages of about ``words`` words, the first
    line naming what the page documents, one paragraph a line: the language reference (the
    topics ``help()`` shows) and every standard library module's docstrings (module, classes,
    functions, in source order).

    Docstrings are read from the source files with :mod:`ast` (nothing is imported or run);
    doctest examples, grammar rules, parameter tables and other code-like paragraphs are left
    out. Python 3.11 gives about 1,000 pages of 200 words, on topics from the ``for`` statement
    to e-mail headers, HTTP cookies and decimal arithmetic.
    """
    import sysconfig
    from pydoc_data.topics import topics  # plain data: the text of the language reference

    pages = _pages_of("Python reference:", sorted(topics.items()), words)
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if SKIPPED_PARTS.intersection(parts):
            continue
        module = ".".join(parts).removesuffix(".py").removesuffix(".__init__")
        pages.extend(_pages_of(module, _docstrings(path), words))
    return tuple(pages)


def _docstrings(path: Path) -> list[tuple[str, str]]:
    """(qualified name, docstring) of a source file's module, classes and functions, in order."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    out: list[tuple[str, str]] = []

    def visit(node: ast.AST, name: str) -> None:
        doc = ast.get_docstring(node, clean=True)  # type: ignore[arg-type]
        if doc:
            out.append((name, doc))
        for child in getattr(node, "body", []):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, f"{name}.{child.name}" if name else child.name)

    visit(tree, "")
    return out


def _prose(paragraph: str) -> str:
    """The paragraph as one line when it is prose (not code, a doctest or a parameter table)."""
    lines = paragraph.splitlines()
    if not lines or lines[0][:1].isspace() or any(ln.lstrip().startswith(">>>") for ln in lines):
        return ""
    tokens = " ".join(ln.strip() for ln in lines).split()
    if len(tokens) < 8 or sum(bool(PROSE_WORD.match(t)) for t in tokens) < 0.8 * len(tokens):
        return ""
    return " ".join(tokens)


def _pages_of(prefix: str, texts: list[tuple[str, str]], words: int) -> list[str]:
    """The prose paragraphs of ``texts`` (name, text), in order, as pages of ``words`` words
    titled with the prefix and the name of the text each page starts in."""
    pages: list[str] = []
    title, body, count = "", [], 0
    for name, doc in texts:
        for paragraph in re.split(r"\n\s*\n", doc):
            line = _prose(paragraph)
            if not line:
                continue
            if not body:
                title = f"{prefix} {name}".strip()
            body.append(line)
            count += len(line.split())
            if count >= words:
                pages.append("\n".join([title, *body]))
                body, count = [], 0
    if count >= words // 2:
        pages.append("\n".join([title, *body]))
    return pages


def topic_clusters(texts: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """A topic per text: k-means over TF-IDF (not the studio's embeddings, on purpose)."""
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=20_000, stop_words="english", sublinear_tf=True).fit_transform(
        texts
    )
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)


def rounds(
    pool: Sequence[str],
    scenario: str,
    *,
    per_round: int = 100,
    n_rounds: int = ROUNDS,
    seed: int = 0,
) -> list[list[str]]:
    """The pages of each round of ``scenario``, drawn from ``pool``."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} (choose from {', '.join(SCENARIOS)})")
    rng = np.random.default_rng(seed)
    if scenario == "topic-loss":
        return _topic_loss(pool, per_round, n_rounds, rng, seed)
    if scenario == "tail-loss":
        return _tail_loss(pool, per_round, n_rounds, rng, seed)
    out = []
    for r in range(n_rounds):
        picked = [pool[i] for i in rng.choice(len(pool), size=per_round, replace=False)]
        if scenario == "template-collapse":
            share = (r + 1) / n_rounds
            picked = [templated(t, rng) if rng.random() < share else t for t in picked]
        out.append(picked)
    return out


def _topic_loss(
    pool: Sequence[str], per_round: int, n_rounds: int, rng: np.random.Generator, seed: int
) -> list[list[str]]:
    """Each round draws from the pages closest (TF-IDF cosine) to a few seed pages, a shrinking
    share of the pool: the teacher keeps writing about the same few subjects."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=20_000, stop_words="english", sublinear_tf=True).fit_transform(
        pool
    )
    seeds = rng.choice(len(pool), size=3, replace=False)
    closeness = np.asarray((X @ X[seeds].T).max(axis=1).todense()).ravel()
    order = np.argsort(-closeness)
    out = []
    for share in np.linspace(1.0, 0.2, n_rounds):
        allowed = order[: max(int(1.2 * per_round), int(share * len(pool)))]
        picked = rng.choice(allowed, size=per_round, replace=False)
        out.append([pool[i] for i in picked])
    return out


def templated(text: str, rng: np.random.Generator) -> str:
    """The page poured into one of the lesson templates, keeping its own paragraphs."""
    opening, headings, closing = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    title = lines[0] if lines else "this topic"
    words = [w for w in WORD.findall(title.lower()) if len(w) > 3][:3]
    topic = " ".join(words) or "this topic"
    body = [ln for ln in lines[1:] if len(ln.split()) > 6] or lines
    third = max(1, len(body) // 3)
    parts = [f"# {title}", opening.format(topic=topic)]
    for h, chunk in zip(
        headings, (body[:third], body[third : 2 * third], body[2 * third :]), strict=True
    ):
        parts.append(h)
        parts.extend(chunk[:2])
    parts.append(closing.format(topic=topic))
    return "\n\n".join(parts)


def typicality(pool: Sequence[str]) -> np.ndarray:
    """Per page: its mean word surprisal under the pool's own word frequencies (low: typical)."""
    docs = [WORD.findall(t.lower()) for t in pool]
    counts = Counter(w for d in docs for w in d)
    total = sum(counts.values())
    return np.array([np.mean([-np.log(counts[w] / total) for w in d]) if d else 0.0 for d in docs])


def _tail_loss(
    pool: Sequence[str], per_round: int, n_rounds: int, rng: np.random.Generator, seed: int
) -> list[list[str]]:
    """Each round draws from the more typical pages of every topic, a shrinking share of each,
    so surprising pages and the rare words they carry vanish while every topic stays."""
    labels = topic_clusters(pool, 12, seed)
    surprise = typicality(pool)
    out = []
    for share in np.linspace(1.0, 0.3, n_rounds):
        allowed = []
        for t in np.unique(labels):
            members = np.flatnonzero(labels == t)
            members = members[np.argsort(surprise[members])]
            allowed.extend(members[: max(1, int(round(share * len(members))))])
        picked = rng.choice(allowed, size=per_round, replace=len(allowed) < per_round)
        out.append([pool[i] for i in picked])
    return out
