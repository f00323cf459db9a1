"""The segmenter: HTML → labelled blocks, with the shipped model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from studio import paths
from studio.segment import dom
from studio.segment.blocks import (
    BOILERPLATE,
    CELL_TAGS,
    ITEM,
    SIGNAL,
    Block,
    join_main_text,
    join_texts,
    preformatted,
)
from studio.segment.decode import choose_signal, label_confidence
from studio.segment.features import FEATURE_NAMES, PageFeatures, page_features, readable
from studio.segment.hints import HINT_WORDS
from studio.segment.model import TreeEnsemble, load_npz

MODEL_FILE = "model.npz"
META_FILE = "meta.json"


def default_model_dir() -> Path:
    return paths.model("segmenter")


def read_meta(model_dir: Path | None = None) -> dict:
    path = (model_dir or default_model_dir()) / META_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


class HtmlSegmenter:
    """Labels every block of a page signal or boilerplate.

    A tree ensemble scores each block from its own, its containers' and its neighbours'
    features (:mod:`~studio.segment.features`); the page's signal set is then the one with the
    best expected F1 (:mod:`~studio.segment.decode`).
    """

    def __init__(self, model: TreeEnsemble, meta: dict) -> None:
        self.model = model
        self.meta = meta
        self.version = str(meta.get("version", "unversioned"))

    @classmethod
    def load(cls, model_dir: Path | None = None) -> HtmlSegmenter:
        model_dir = model_dir or default_model_dir()
        meta = read_meta(model_dir)
        if not meta:
            raise FileNotFoundError(f"no segmenter model in {model_dir} (meta.json missing)")
        if meta.get("features") != FEATURE_NAMES:
            raise RuntimeError(
                f"the model in {model_dir} was trained on other features than this code computes;"
                " retrain it with `python -m studio.segment.train`"
            )
        arrays = load_npz(model_dir / MODEL_FILE)
        return cls(TreeEnsemble.from_arrays(arrays, ""), meta)

    def probabilities(self, pf: PageFeatures) -> np.ndarray:
        """P(signal) per block, as the model says (before the page's cut-off is chosen)."""
        return self.model.predict(pf.X)

    def segment(self, html: str | bytes, url: str | None = None) -> list[Block]:
        root = dom.parse(html)
        if root is None:
            return []
        table = dom.walk(root)
        pf = page_features(table)
        if pf is None:
            return []
        p = self.probabilities(pf)
        keep, threshold = choose_signal(p, pf.words)
        conf = label_confidence(p, threshold)
        confidence = np.round(np.where(keep, conf, 1.0 - conf), 4).tolist()
        tree, elements, tags = table.tree, table.elements, table.tags
        hints: dict[tuple[int, int], dict[str, float]] = {}  # few distinct ones per page
        own, inherited = table.own_hints.tolist(), table.hints.tolist()
        texts = shown_texts(table, pf)
        places = block_places(table, pf.nodes.tolist())
        blocks = []
        for k, (node, features) in enumerate(zip(pf.nodes.tolist(), readable(pf), strict=True)):
            key = (own[node], inherited[node])
            if key not in hints:
                hints[key] = _hint_features(*key)
            features.update(hints[key])
            blocks.append(
                Block(
                    text=texts[k],
                    locator=tree.getpath(elements[node]),
                    label=SIGNAL if keep[k] else BOILERPLATE,
                    confidence=confidence[k],
                    tag=tags[node],
                    features=features,
                    place=places[k],
                )
            )
        return blocks

    def main_text(self, html: str | bytes, url: str | None = None) -> str:
        """The signal blocks' text, without building Block objects or locators."""
        root = dom.parse(html)
        if root is None:
            return ""
        table = dom.walk(root)
        pf = page_features(table)
        if pf is None:
            return ""
        keep, _ = choose_signal(self.probabilities(pf), pf.words)
        kept = [k for k, signal in enumerate(keep.tolist()) if signal]
        texts = shown_texts(table, pf)
        nodes = pf.nodes.tolist()
        places = block_places(table, [nodes[k] for k in kept])
        return join_texts((texts[k] for k in kept), places)


def block_places(table: dom.BlockTable, nodes: list[int]) -> list[tuple[int, int] | str | None]:
    """Where each block sits, for the layout of the main text (see :func:`join_texts`): a list
    item, a cell's (table, row) as its nearest block ancestors, or nothing of note."""
    parent, tags = table.parent, table.tags
    places: list[tuple[int, int] | str | None] = []
    for node in nodes:
        if tags[node] == ITEM:
            places.append(ITEM)
        elif tags[node] in CELL_TAGS:
            row = int(parent[node])
            places.append((int(parent[row]), row))
        else:
            places.append(None)
    return places


def shown_texts(table: dom.BlockTable, pf: PageFeatures) -> list[str]:
    """The blocks' texts as a reader sees them: whitespace made single spaces (as the model
    reads them), except in ``<pre>`` blocks, which keep their lines and indentation."""
    texts = list(pf.texts)
    for k, node in enumerate(pf.nodes.tolist()):
        if table.tags[node] == "pre":
            texts[k] = preformatted(table.texts[node]) or texts[k]
    return texts


def _hint_features(own: int, inherited: int) -> dict[str, float]:
    """Class/id/tag hints as readable 0/1 entries: 'hint:footer' (own), 'in:nav' (ancestor)."""
    out: dict[str, float] = {}
    for bit, (name, _, _) in enumerate(HINT_WORDS):
        if own >> bit & 1:
            out[f"hint:{name}"] = 1.0
        elif inherited >> bit & 1:
            out[f"in:{name}"] = 1.0
    return out


_default: HtmlSegmenter | None = None
_lock = threading.Lock()


def default_segmenter() -> HtmlSegmenter:
    """The shipped model, loaded once per process."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = HtmlSegmenter.load()
    return _default


def segment_html(html: str | bytes, url: str | None = None) -> list[Block]:
    """Every block of the page in document order, each labelled signal or boilerplate.

    Raises :class:`~studio.segment.blocks.SegmentError` for input that is not HTML (binary
    data, no markup) or nests deeper than :data:`~studio.segment.dom.MAX_DEPTH`; a page without
    text gives ``[]``.
    """
    return default_segmenter().segment(html, url)


def main_text(html: str | bytes, url: str | None = None) -> str:
    """The page's main text: its signal blocks joined (see :func:`join_main_text`)."""
    return default_segmenter().main_text(html, url)


__all__ = ["HtmlSegmenter", "segment_html", "main_text", "join_main_text"]
