"""Why a page got its score: what each feature added to a linear classifier's output.

A ridge or blend version predicts the rubric score as ``intercept + sum(coef_j * x_j)`` (a logistic
version the log-odds of keeping the page), so every column's share of a page's score is exact:
the blocks' shares and the intercept add up to the score. Within a block, TF-IDF columns are
named by their word or word pair and hand features by their name; an embedding's dimensions mean
nothing one by one, so an embedding is given as its block's total only. A random forest's score
does not split this way: asking to explain one raises :class:`ExplainError`.

Example::

    with project.store() as store:
        classifier = load_classifier(project, store)
        why = explain(classifier, load_docs(store, [42])[0], store)
    for block in why.blocks:
        print(f"{block.total:+.2f}  {block.name}", block.parts[:3])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from studio.classify.features import HAND_NAMES, DocText
from studio.classify.models import LinearModel
from studio.classify.versions import Classifier

BLOCKS = {
    "tfidf": "words (TF-IDF)",
    "hand": "hand features",
    "static": "static embedding (whole page)",
    "minilm": "MiniLM embedding (whole page)",
}


class ExplainError(Exception):
    """The version's model does not split its score into per-feature parts."""


@dataclass(slots=True)
class Block:
    name: str  # the feature block: words, hand features, an embedding
    total: float  # what the whole block added to the output
    parts: list[tuple[str, float]]  # its features that moved the output most, largest first


@dataclass(slots=True)
class Explanation:
    version: str
    doc_id: int
    output: float  # the score (ridge, blend) or the log-odds of keeping the page (logistic)
    measure: str  # "score" or "log-odds"
    keep: bool
    cut: float  # on the output's scale
    intercept: float
    blocks: list[Block]  # intercept + every block's total = output

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain(classifier: Classifier, doc: DocText, store: Any = None, top: int = 8) -> Explanation:
    """Each feature block's share of this page's output, and the ``top`` features of each that
    moved it most (an embedding is one part: its dimensions mean nothing one by one)."""
    model = classifier.model
    if not isinstance(model, LinearModel):
        raise ExplainError(
            f"{classifier.version} is a random forest: its score does not split into per-feature "
            "parts (train a ridge, blend or logistic version to read why a page scored so)"
        )
    blocks, start = [], 0
    for extractor in classifier.features.extractors:
        row = _dense_row(extractor.transform([doc], store))
        coef = model.coef[start : start + len(row)]
        start += len(row)
        shares = row * coef
        names = _names(extractor, len(row))
        if names is None:
            parts = []
        else:
            nonzero = np.flatnonzero(shares)
            order = nonzero[np.lexsort((nonzero, -np.abs(shares[nonzero])))][: max(top, 0)]
            parts = [(names[j], round(float(shares[j]), 6)) for j in order]
        name = BLOCKS.get(extractor.name, extractor.name)
        blocks.append(Block(name, round(float(shares.sum()), 6), parts))
    z = model.intercept + sum(b.total for b in blocks)
    if model.predicts_score:
        cut = model.cut
    else:  # the probability cut on the log-odds scale
        p = min(max(model.cut, 1e-9), 1.0 - 1e-9)
        cut = float(np.log(p / (1.0 - p)))
    return Explanation(
        classifier.version,
        doc.doc_id,
        round(float(z), 6),
        "score" if model.predicts_score else "log-odds",
        bool(z >= cut),
        round(cut, 6),
        round(model.intercept, 6),
        blocks,
    )


def _names(extractor: Any, width: int) -> list[str] | None:
    """Column names of one extractor's block; None for an embedding."""
    if extractor.name == "tfidf":
        return list(extractor.vocabulary)
    if extractor.name == "hand":
        return list(HAND_NAMES[:width])
    return None


def _dense_row(block: Any) -> np.ndarray:
    row = block.toarray() if hasattr(block, "toarray") else np.asarray(block)
    return np.ravel(row).astype(np.float64)
