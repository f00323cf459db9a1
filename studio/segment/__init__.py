"""HTML → blocks labelled signal or boilerplate → main text.

    >>> from studio.segment import segment_html, main_text
    >>> blocks = segment_html(html, url)      # every block, in document order, labelled
    >>> text = main_text(html)                # the signal blocks joined

The model is a gradient-boosted tree ensemble evaluated with numpy (no LightGBM at run
time); see ``models/segmenter/MODEL_CARD.md`` and :mod:`studio.segment.train`.
"""

from __future__ import annotations

from studio.segment.blocks import (
    BOILERPLATE,
    SIGNAL,
    Block,
    SegmentError,
    join_main_text,
    signal_share,
)
from studio.segment.segmenter import HtmlSegmenter, main_text, read_meta, segment_html

# the shipped model's version, as its meta.json says ("unversioned" before a model is trained)
MODEL_VERSION: str = str(read_meta().get("version", "unversioned"))

__all__ = [
    "BOILERPLATE",
    "MODEL_VERSION",
    "SIGNAL",
    "Block",
    "HtmlSegmenter",
    "SegmentError",
    "join_main_text",
    "main_text",
    "segment_html",
    "signal_share",
]
