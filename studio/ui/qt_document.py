"""The document view: the page with signal set apart from boilerplate, its main text, its source,
and why the latest classifier scored it as it did.

The highlighted page is rebuilt from the page's blocks as plain text runs, never from the page's
own HTML, so nothing in a page can run a script or fetch a resource.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, QPoint, QUrl, Signal
from PySide6.QtGui import QColor, QFont, QTextCursor
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QTabWidget,
    QTextBrowser,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from studio.documents import DocumentPage
from studio.project import Project
from studio.segment.blocks import BOILERPLATE, SIGNAL, Block
from studio.text import plural
from studio.ui.qt_ops import run_op

SIGNAL_BG = QColor("#e3f4e6")
SIGNAL_FG = QColor("#10301a")
BOILER_BG = QColor("#f1f1f1")
BOILER_FG = QColor("#9a9a9a")
CORRECTED_FG = QColor("#2b6cb0")
MAX_RAW_CHARS = 2_000_000  # the source tab shows this much of a huge page, and says so


NO_SIGNAL = (
    "No block of this page was judged signal: it has no main text. Its HTML holds navigation, "
    "notices and the like only (a page that builds its content with JavaScript looks like "
    "this). If a block is content, double-click it in the highlighted page to flip it."
)


class SafeBrowser(QTextBrowser):
    """A text browser that loads nothing: no images, no stylesheets, no links followed."""

    block_relabel_requested = Signal(str, str, str)  # locator, new label, the text shown

    def __init__(self, parent: QWidget | None = None, **qt_properties: Any) -> None:
        super().__init__(parent, **qt_properties)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.blocks: list[Block] = []
        self.corrected: set[str] = set()

    def loadResource(self, type: int, name: QUrl) -> Any:  # noqa: A002, N802 - Qt's signature
        return None

    def block_at(self, pos: QPoint) -> Block | None:
        index = self.cursorForPosition(pos).block().blockNumber()
        return self.blocks[index] if 0 <= index < len(self.blocks) else None

    def contextMenuEvent(self, event: Any) -> None:  # noqa: N802
        block = self.block_at(event.pos())
        menu = self.createStandardContextMenu()
        if block is not None:
            menu.insertSeparator(menu.actions()[0] if menu.actions() else None)
            other = BOILERPLATE if block.is_signal else SIGNAL
            action = menu.addAction(f"Mark this block as {other}")
            action.triggered.connect(
                lambda: self.block_relabel_requested.emit(block.locator, other, block.text)
            )
            menu.insertAction(menu.actions()[0], action)
        menu.exec(event.globalPos())

    def mouseDoubleClickEvent(self, event: Any) -> None:  # noqa: N802
        block = self.block_at(event.position().toPoint())
        if block is None:
            super().mouseDoubleClickEvent(event)
            return
        other = BOILERPLATE if block.is_signal else SIGNAL
        self.block_relabel_requested.emit(block.locator, other, block.text)

    def show_blocks(self, blocks: list[Block], corrected: set[str]) -> None:
        """One HTML string for the whole page, parsed by Qt in one go: on a page of a thousand
        blocks that is several times faster than inserting the blocks one by one from Python.
        Each block is one paragraph, so a paragraph's number is its block's index."""
        self.blocks, self.corrected = blocks, corrected
        self.setHtml("".join(_block_html(b, b.locator in corrected) for b in blocks))
        self.moveCursor(QTextCursor.MoveOperation.Start)
        self._scroll_to_first_signal()

    def tooltip(self, index: int) -> str:
        block = self.blocks[index]
        return block_tooltip(block, block.locator in self.corrected)

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802
        # tooltips are built when asked for, not for every block of every page shown
        if event.type() == QEvent.Type.ToolTip and self.blocks:
            index = self.cursorForPosition(event.pos()).block().blockNumber()
            if 0 <= index < len(self.blocks):
                QToolTip.showText(event.globalPos(), self.tooltip(index), self.viewport())
                return True
        return super().viewportEvent(event)

    def _scroll_to_first_signal(self) -> None:
        """Pages often open with screens of menus: start the view near the main content (the
        first signal block with a sentence's worth of words: a stray one-word "signal" menu item
        should not decide), with two blocks of what precedes it for context."""
        signal = [i for i, b in enumerate(self.blocks) if b.is_signal]
        first = next(
            (i for i in signal if self.blocks[i].n_words >= 12), signal[0] if signal else None
        )
        if not first or first < 8:
            return
        self.viewport().update()
        block = self.document().findBlockByNumber(max(first - 2, 0))
        top = self.document().documentLayout().blockBoundingRect(block).top()
        self.verticalScrollBar().setValue(int(top))


def _block_html(block: Block, corrected: bool) -> str:
    bg, fg = (SIGNAL_BG, SIGNAL_FG) if block.is_signal else (BOILER_BG, BOILER_FG)
    text = html.escape(block.text)
    # a <pre> block (a program, most often) is shown as laid out: its lines and indentation
    layout = "white-space:pre-wrap; font-family:monospace; " if block.tag == "pre" else ""
    if not layout:
        text = text.replace("\n", "<br>")
    if block.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
        text = f"<b>{text}</b>"
    if corrected:
        text = f"<span style='color:{CORRECTED_FG.name()}'>✎ </span>{text}"
    return (
        f"<p style='{layout}background-color:{bg.name()}; color:{fg.name()}; margin-top:2px; "
        f"margin-bottom:2px; margin-left:8px; margin-right:8px'>{text}</p>"
    )


def block_tooltip(block: Block, corrected: bool) -> str:
    """Why the block was judged so: its label, confidence and the features behind it."""
    who = "set by you" if corrected else f"model, confidence {block.confidence:.0%}"
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td align='right'>{html.escape(_fmt(v))}</td></tr>"
        for k, v in block.features.items()
    )
    return (
        f"<b>{block.label}</b> ({who})<br><code>{html.escape(block.locator)}</code>"
        f"<table cellspacing=0 cellpadding=1>{rows}</table>"
        "<i>Double-click or right-click to change</i>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


class DocumentView(QWidget):
    """One document: a header with its provenance and signal share, three views of it, and why
    the classifier scored it so."""

    relabel_requested = Signal(int, str, str, str)  # doc id, locator, label, text shown

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        project: Project | None = None,
        **qt_properties: Any,
    ) -> None:
        """``project``: show why its latest classifier scored the page, in a fourth tab (the
        label view leaves it out: an annotator scores a page without the classifier's view)."""
        super().__init__(parent, **qt_properties)
        self.page: DocumentPage | None = None
        self.project = project
        # no word wrap: a wrapped rich-text label is squeezed to one line by the tabs below;
        # long lines (a long URL) are clipped instead, and the full text is in the tooltip
        self.header = QLabel(objectName="documentHeader")
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.legend = QLabel(
            "<span style='background:#e3f4e6;color:#10301a'>&nbsp;signal&nbsp;</span> "
            "<span style='background:#f1f1f1;color:#9a9a9a'>&nbsp;boilerplate&nbsp;</span> "
            "<span style='color:#2b6cb0'>✎ corrected by you</span> · hover a block for why",
            objectName="legend",
        )
        self.highlighted = SafeBrowser(objectName="highlightedPage")
        self.highlighted.block_relabel_requested.connect(self._on_relabel)
        self.main_text = QPlainTextEdit(readOnly=True, objectName="mainText")
        self.raw_source = QPlainTextEdit(readOnly=True, objectName="rawSource")
        self.raw_source.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        mono = QFont("DejaVu Sans Mono")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.raw_source.setFont(mono)
        self.tabs = QTabWidget(objectName="documentTabs")
        self.tabs.addTab(self.highlighted, "Highlighted page")
        self.tabs.addTab(self.main_text, "Main text")
        self.tabs.addTab(self.raw_source, "Raw source")
        self.why = SafeBrowser(objectName="whyScore")
        if project is not None:
            self.tabs.addTab(self.why, "Why this score")
        # the latest classifier as loaded last time, (version, classifier): loading reads ~1 MB
        self._classifier: tuple[str, Any] | None = None
        self._stale: set[QWidget] = set()
        self.tabs.currentChanged.connect(lambda i: self._fill(self.tabs.widget(i)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.header)
        layout.addWidget(self.legend)
        layout.addWidget(self.tabs, 1)
        self.show_nothing()

    def show_nothing(self) -> None:
        self.page = None
        self.header.setText("<i>Select a document to see its signal and boilerplate.</i>")
        for w in (self.highlighted, self.main_text, self.raw_source, self.why):
            w.clear()

    def show_page(self, page: DocumentPage) -> None:
        """Show ``page``: the header and the visible tab now, the other tabs when opened
        (the raw source of a large page alone costs a keypress's worth of time)."""
        self.page = page
        text = header_html(page)
        self.header.setText(text)
        self.header.setToolTip(text)
        self._stale = {self.highlighted, self.main_text, self.raw_source, self.why}
        self._fill(self.tabs.currentWidget())

    def _fill(self, tab: QWidget) -> None:
        page = self.page
        if page is None or tab not in self._stale:
            return
        self._stale.discard(tab)
        if tab is self.highlighted and page.blocks:
            self.highlighted.show_blocks(page.blocks, page.corrected)
        elif tab is self.highlighted:
            note = page.segment_error or "plain-text document: all of it counts as signal"
            self.highlighted.blocks = []
            self.highlighted.setPlainText(f"[{note}]\n\n{page.main_text}")
        elif tab is self.main_text:
            empty = page.blocks and not page.main_text
            self.main_text.setPlaceholderText(NO_SIGNAL if empty else "")
            self.main_text.setPlainText(page.main_text)
        elif tab is self.raw_source:
            raw = page.raw
            if len(raw) > MAX_RAW_CHARS:
                cut = len(raw) - MAX_RAW_CHARS
                raw = raw[:MAX_RAW_CHARS] + f"\n\n[… {cut:,} more characters]"
            self.raw_source.setPlainText(raw)
        elif tab is self.why:
            self._explain(page.record.id)

    def _explain(self, doc_id: int) -> None:
        project, loaded = self.project, self._classifier
        if project is None:
            return
        self.why.setHtml("<i>Reading the classifier…</i>")

        def work(_task: Any) -> Any:
            from studio.classify.explain import explain
            from studio.classify.features import load_docs
            from studio.classify.versions import latest_version, load_classifier

            with project.store() as store:
                version = latest_version(store)
                if version is None:
                    return None
                if loaded is not None and loaded[0] == version:
                    classifier = loaded[1]
                else:
                    classifier = load_classifier(project, store, version)
                if store.document(doc_id) is None:  # deleted since the page was opened
                    raise LookupError(f"document {doc_id} is no longer in the project")
                doc = load_docs(store, [doc_id])[0]
            # no store: a reader writes nothing (the page's vectors are not cached)
            return (version, classifier), explain(classifier, doc)

        def done(result: Any) -> None:
            if result is None:
                self.why.setHtml(why_html(None))
                return
            self._classifier, why = result
            if self.page is not None and self.page.record.id == doc_id:
                self.why.setHtml(why_html(why))

        def failed(message: str, _details: str) -> None:
            if self.page is not None and self.page.record.id == doc_id:
                self.why.setHtml(f"<p style='color:#b42318'>{html.escape(message)}</p>")

        run_op(self, work, writes=False).on_success(done).on_failure(failed)

    def _on_relabel(self, locator: str, label: str, text: str) -> None:
        if self.page is not None:
            self.relabel_requested.emit(self.page.record.id, locator, label, text)


def why_html(why: Any) -> str:
    """An :class:`~studio.classify.explain.Explanation` as the curator reads it (None: no
    classifier yet)."""
    if why is None:
        return "<i>No classifier trained yet: train one in the Classifier tab.</i>"
    verdict = (
        "<b style='color:#1f7a3a'>kept</b>" if why.keep else "<b style='color:#b42318'>dropped</b>"
    )
    rows = [("intercept", why.intercept)] + [(b.name, b.total) for b in why.blocks]
    out = [
        f"<p><b>{why.measure.capitalize()} {why.output:.2f}</b> with {html.escape(why.version)}: "
        f"{verdict} (the cut is {why.cut:.2f}). The parts below add up to the {why.measure}.</p>",
        _signed_table(rows),
    ]
    for block in why.blocks:
        if block.parts:
            out.append(f"<p><b>{html.escape(block.name)}</b>: what moved it most</p>")
            out.append(_signed_table([(n.replace("_", " "), v) for n, v in block.parts]))
    return "".join(out)


def _signed_table(rows: list[tuple[str, float]]) -> str:
    cells = []
    for name, value in rows:
        colour = "#1f7a3a" if value >= 0 else "#b42318"
        cells.append(
            f"<tr><td align='right' style='color:{colour}'>{value:+.3f}</td>"
            f"<td>&nbsp;{html.escape(str(name))}</td></tr>"
        )
    return f"<table cellspacing='2'>{''.join(cells)}</table>"


def header_html(page: DocumentPage) -> str:
    r = page.record
    signal, total = page.signal_words()
    share = signal / total if total else 0.0
    where = ", ".join(f"{k} {v}" for k, v in r.locator.items())
    source = html.escape(r.source_path + (f" ({where})" if where else ""))
    title = html.escape(r.title or r.url or "(untitled)")
    url = f"<br><span style='color:#555'>{html.escape(r.url)}</span>" if r.url else ""
    fetched = f" · fetched {html.escape(r.fetch_date)}" if r.fetch_date else ""
    lang = f"{r.lang} ({r.lang_score:.0%})" if r.lang and r.lang_score is not None else "unknown"
    warnings = (
        "<br><span style='color:#9a6a00'>⚠ " + html.escape("; ".join(r.warnings)) + "</span>"
        if r.warnings
        else ""
    )
    # a text page has no blocks: all of it is signal, and "0 blocks" read as a contradiction
    blocks = (
        f"{plural(len(page.blocks), 'block')} ({len(page.corrected)} corrected) · "
        if page.blocks
        else ""
    )
    return (
        f"<b style='font-size:14px'>{title}</b>{url}<br>"
        f"<b style='color:#1f7a3a'>{share:.0%} signal</b> — {signal:,} of {total:,} words · "
        f"{blocks}language {lang}<br>"
        f"<span style='color:#555'>#{r.id} from {source} · {r.source_format or r.kind}"
        f"{fetched}</span>{warnings}"
    )
