"""A stored document as the curator sees it: its blocks, with the curator's corrections applied.

The blocks are not stored: the page is segmented again when opened (milliseconds), and the
curator's corrections, stored per block locator, are laid over the model's labels.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field, replace

from studio.segment import SegmentError, segment_html
from studio.segment.blocks import BOILERPLATE, SIGNAL, Block, join_main_text, signal_share
from studio.store import DamagedRow, DocumentRecord, Store


class PageChanged(LookupError):
    """The stored page is not the one the curator was shown, so a block cannot be relabelled."""


@dataclass(slots=True)
class DocumentPage:
    record: DocumentRecord
    raw: str
    blocks: list[Block] = field(default_factory=list)
    model_labels: dict[str, str] = field(default_factory=dict)  # locator -> model's label
    corrected: set[str] = field(default_factory=set)  # locators the curator relabelled
    segment_error: str | None = None

    @property
    def main_text(self) -> str:
        return join_main_text(self.blocks) if self.blocks else self.raw_text

    @property
    def raw_text(self) -> str:
        return self.raw if self.record.kind != "html" else ""

    def signal_words(self) -> tuple[int, int]:
        if not self.blocks:
            n = len(self.raw_text.split())
            return n, n
        return signal_share(self.blocks)


def load_page(store: Store, doc_id: int) -> DocumentPage:
    record = store.document(doc_id)
    if record is None:
        raise KeyError(f"no document {doc_id}")
    try:
        raw = store.raw(doc_id)
    except DamagedRow as exc:  # shown in place of the page; nothing can be relabelled
        return DocumentPage(record=record, raw="", segment_error=str(exc))
    page = DocumentPage(record=record, raw=raw)
    if record.kind != "html":
        return page
    try:
        blocks = segment_html(page.raw, url=record.url)
    except SegmentError as exc:
        page.segment_error = str(exc)
        return page
    corrections = store.corrections(doc_id)
    for i, block in enumerate(blocks):
        page.model_labels[block.locator] = block.label
        label = corrections.get(block.locator)
        if label is not None and label != block.label:
            blocks[i] = replace(block, label=label, confidence=1.0)
            page.corrected.add(block.locator)
        elif label is not None:
            page.corrected.add(block.locator)
    page.blocks = blocks
    return page


def relabel_block(
    store: Store,
    doc_id: int,
    locator: str,
    label: str,
    annotator: str | None = None,
    *,
    shown: str | None = None,
) -> DocumentPage:
    """Store the curator's label for one block and update the document's main text to match.

    ``shown``: the block's text as the curator saw it. The page is segmented again here, so
    if another process changed the stored page since it was opened, the block now at
    ``locator`` may be another one: then nothing is stored and :class:`PageChanged` says so.
    """
    if label not in (SIGNAL, BOILERPLATE):
        raise ValueError(f"a block is {SIGNAL!r} or {BOILERPLATE!r}, not {label!r}")
    page = load_page(store, doc_id)
    if page.segment_error is not None:
        raise PageChanged(f"cannot relabel a block of document {doc_id}: {page.segment_error}")
    index = next((i for i, b in enumerate(page.blocks) if b.locator == locator), None)
    if index is None:
        raise PageChanged(
            f"document {doc_id} has no block at {locator} now: the stored page changed since "
            "it was opened; open it again"
        )
    block = page.blocks[index]
    if shown is not None and block.text != shown:
        raise PageChanged(
            f"the block at {locator} of document {doc_id} no longer reads as shown: the "
            "stored page changed since it was opened; open it again (nothing was stored)"
        )
    page.blocks[index] = replace(block, label=label, confidence=1.0)
    page.corrected.add(locator)
    signal, _total = page.signal_words()
    store.correct_block(
        doc_id,
        locator=locator,
        text=block.text,
        label=label,
        model_label=page.model_labels[locator],
        features=block.features,
        annotator=annotator or default_annotator(),
        main_text=page.main_text,
        signal_words=signal,
    )
    return page


def default_annotator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "curator"
