"""The corpus view: a virtualized table over the project's documents, with filters and search.

The model asks SQLite for one page of rows at a time as the table scrolls, so a million
documents cost no more than a hundred.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.store import DocumentQuery, Store
from studio.store.queries import MAX_SEARCH_TERMS, fts_terms
from studio.text import plural
from studio.ui.qt_ops import run_op

PAGE = 256
MAX_PAGES = 64

# (header, row key, sort key)
COLUMNS: list[tuple[str, str, str | None]] = [
    ("#", "id", "id"),
    ("Title", "title", "title"),
    ("Words", "n_words", "words"),
    ("Signal", "signal_share", "signal"),
    ("Score", "score", "score"),
    ("Label", "label", "label"),
    ("Lang", "lang", "lang"),
    ("Type", "kind", "kind"),
    ("Source", "source", "source"),
]

_Index = QModelIndex | QPersistentModelIndex


class CorpusModel(QAbstractTableModel):
    """Rows of ``documents`` for a :class:`DocumentQuery`, fetched a page at a time.

    A new query shows its first page at once; when there may be more, the exact number of
    matches is counted on a reader thread (a search matching most of a million documents takes
    a few hundred milliseconds to count) and the rows grow to it when it arrives.
    """

    counted = Signal()  # the exact number of rows is known

    def __init__(self, store: Store, parent: Any = None) -> None:
        super().__init__(parent)
        self.store = store
        self.query = DocumentQuery()
        self.exact = True
        self._count = 0
        self._generation = 0
        self._newest = 0  # the newest document when the query was set
        self._pages: OrderedDict[int, list[Any]] = OrderedDict()

    # -- what the view asks ----------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: _Index, role: int = 0) -> Any:
        if not index.isValid():
            return None
        row = self.row(index.row())
        if row is None:
            return None
        key = COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(key, row)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "title":
                return row["url"] or row["title"]
            if key == "source":
                return row["source"]
        if role == Qt.ItemDataRole.TextAlignmentRole and key in (
            "id",
            "n_words",
            "signal_share",
            "score",
            "label",
        ):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and key == "signal_share":
            share = row["signal_share"] or 0.0
            return QColor("#1f7a3a") if share >= 0.5 else QColor("#9a6a00")
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        sort_key = COLUMNS[column][2]
        if sort_key is None:
            return
        self.set_query(
            self.query.with_(sort=sort_key, descending=order == Qt.SortOrder.DescendingOrder)
        )

    # -- what the corpus view tells it -------------------------------------------------------

    def set_query(self, query: DocumentQuery) -> None:
        self.beginResetModel()
        self.query = query
        self._newest = self.store.last_document_id()
        self._pages.clear()
        self._generation += 1
        first = self.store.list_documents(query, 0, PAGE)
        self._pages[0] = first
        self._count = len(first)
        self.exact = len(first) < PAGE
        self.endResetModel()
        if self.exact:
            self.counted.emit()
        else:
            self._count_in_background(query, self._generation)

    def _count_in_background(self, query: DocumentQuery, generation: int) -> None:
        path = self.store.path

        def count(_task: Any) -> int:
            with Store(path, readonly=True) as reader:
                return reader.count_documents(query)

        run_op(self, count, writes=False).on_success(lambda n: self._on_counted(generation, n))

    def _on_counted(self, generation: int, n: int) -> None:
        if generation != self._generation:
            return  # the curator has asked something else since
        if n > self._count:
            self.beginInsertRows(QModelIndex(), self._count, n - 1)
            self._count = n
            self.endInsertRows()
        self.exact = True
        self.counted.emit()

    def refresh(self) -> None:
        self.set_query(self.query)

    def row(self, n: int) -> Any:
        page = n // PAGE
        rows = self._pages.get(page)
        if rows is None:
            query = self.query
            if self.store.last_document_id() > self._newest:
                # another process imported since the view asked: the offsets count up to the
                # newest document then, or the rows would shift under the curator's scroll (the
                # bound costs the query its index order, so only when it is needed)
                query = query.with_(max_id=self._newest)
            rows = self.store.list_documents(query, page * PAGE, PAGE)
            self._pages[page] = rows
            if len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page)
        i = n - page * PAGE
        return rows[i] if i < len(rows) else None

    def doc_id(self, n: int) -> int | None:
        row = self.row(n)
        return int(row["id"]) if row is not None else None


def _display(key: str, row: Any) -> str:
    value = row[key]
    if key == "signal_share":
        return f"{(value or 0) * 100:.0f}%"
    if key == "n_words":
        return f"{value:,}"
    if key == "title":
        return value or row["url"] or "(untitled)"
    if key == "source":
        return os.path.basename(value or "")
    if key in ("score", "label"):
        return "" if value is None else f"{value:.2f}" if key == "score" else f"{value:.1f}"
    return "" if value is None else str(value)


class CorpusView(QWidget):
    """Filters and search over the corpus table, with how much of the corpus is signal."""

    document_selected = Signal(int)
    stats_ready = Signal()  # totals and filter choices are up to date

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.model = CorpusModel(store, self)
        self._build()
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self._apply_filters)
        self._totals: dict[str, Any] | None = None
        self._closed = False  # shut_down: the project's database is closing
        self.model.counted.connect(self._update_summary)
        self.refresh()

    def _build(self) -> None:
        self.summary = QLabel(objectName="corpusSummary")
        self.signal_bar = QProgressBar(objectName="signalBar", textVisible=True, maximum=1000)
        self.signal_bar.setFixedHeight(16)
        self.signal_bar.setMinimumWidth(150)
        self.search = QLineEdit(placeholderText='Search the main text (words, "phrases", prefix*)')
        self.search.setMaxLength(2000)  # a search, not a page: the terms past 32 are unused
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _: self._search_timer.start())
        self.source = QComboBox(toolTip="Only documents from this file")
        self.kind = QComboBox(toolTip="Only HTML pages or only plain-text documents")
        self.kind.addItem("All types", None)
        self.kind.addItem("HTML pages", "html")
        self.kind.addItem("Plain text", "text")
        self.lang = QComboBox(toolTip="Only documents in this language")
        self.min_words = QSpinBox(maximum=10_000_000, singleStep=50, prefix="≥ ", suffix=" words")
        self.min_words.setToolTip("Only documents with at least this many words")
        for combo in (self.source, self.kind, self.lang):
            combo.currentIndexChanged.connect(self._apply_filters)
        self.min_words.valueChanged.connect(lambda _: self._search_timer.start())
        self.min_score = QDoubleSpinBox(
            minimum=-1,
            maximum=10,
            singleStep=0.5,
            value=-1,
            prefix="score ≥ ",
            specialValueText="any score",
        )
        self.min_score.setToolTip(
            "Only documents the newest classifier that has scored the corpus scored at least this"
        )
        self.min_score.setEnabled(False)  # until a classifier has scored the corpus
        self.min_score.valueChanged.connect(lambda _: self._search_timer.start())
        self.labelled_only = QCheckBox("labelled")
        self.labelled_only.setToolTip("Only documents a curator has labelled")
        self.labelled_only.toggled.connect(lambda _: self._apply_filters())

        self.table = QTableView(objectName="corpusTable")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col, width in ((0, 56), (2, 64), (3, 52), (4, 48), (5, 44), (6, 40), (7, 44), (8, 110)):
            self.table.setColumnWidth(col, width)
        self.table.selectionModel().currentRowChanged.connect(self._on_row_changed)

        filters = QHBoxLayout()
        for w in (self.source, self.kind, self.lang):
            filters.addWidget(w, 1)
        ranges = QHBoxLayout()
        for w in (self.min_words, self.min_score, self.labelled_only):
            ranges.addWidget(w)
        head = QHBoxLayout()
        head.addWidget(self.summary, 1)
        head.addWidget(self.signal_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(head)
        layout.addWidget(self.search)
        layout.addLayout(filters)
        layout.addLayout(ranges)
        layout.addWidget(self.table, 1)

    # -- reacting ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload after an import: rows at once; totals and filter choices from a reader thread
        (on a million documents they take a few hundred milliseconds)."""
        self.model.refresh()
        if self._totals is not None and self.model.rowCount() > self._totals["documents"]:
            # totals from before the import: "No documents yet" over a full list, until the
            # reader thread counts them
            self._totals = None
            self._update_summary()
        self._reload_stats()

    def _reload_stats(self) -> None:
        path = self.store.path

        def stats(_task: Any) -> dict[str, Any]:
            with Store(path, readonly=True) as reader:
                return {
                    # the newest version with scores: a newer one that has not scored the
                    # corpus yet would leave the Score column blank and the filter empty
                    "version": reader.latest_scored_version(),
                    "totals": reader.totals(),
                    "sources": [(r["path"], r["id"], r["n"]) for r in reader.sources()],
                    "languages": [(code, code, n) for code, n in reader.languages()],
                }

        run_op(self, stats, writes=False).on_success(self._on_stats)

    def _on_stats(self, stats: dict[str, Any]) -> None:
        if self._closed:  # counted by a reader thread while the project closed
            return
        self._totals = stats["totals"]
        if stats["version"] != self.model.query.score_version:
            self.model.set_query(self.model.query.with_(score_version=stats["version"]))
            self.min_score.setEnabled(stats["version"] is not None)
        self._fill_filters(stats["sources"], stats["languages"])
        self._update_summary()
        self.stats_ready.emit()

    def _fill_filters(self, sources: list[tuple], languages: list[tuple]) -> None:
        for combo, items, everything in (
            (self.source, sources, "All sources"),
            (self.lang, languages, "All languages"),
        ):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(everything, None)
            for label, value, n in items:
                combo.addItem(f"{os.path.basename(str(label))} ({n:,})", value)
                combo.setItemData(combo.count() - 1, str(label), Qt.ItemDataRole.ToolTipRole)
            i = combo.findData(current)
            combo.setCurrentIndex(max(i, 0))
            combo.blockSignals(False)

    def shut_down(self) -> None:
        """The project is closing: no pending filter change or count may reach its closed
        database."""
        self._closed = True
        self._search_timer.stop()
        self._search_timer.timeout.disconnect(self._apply_filters)

    def _apply_filters(self) -> None:
        q = self.model.query.with_(
            search=self.search.text().strip(),
            source_id=self.source.currentData(),
            kind=self.kind.currentData(),
            lang=self.lang.currentData(),
            min_words=self.min_words.value() or None,
            min_score=None if self.min_score.value() < 0 else self.min_score.value(),
            labelled_only=self.labelled_only.isChecked(),
        )
        self.model.set_query(q)
        self._update_summary()

    def _update_summary(self) -> None:
        s = self._totals
        if s is None:
            self.summary.setText("<i>Counting the corpus…</i>")
            return
        shown = f"{self.model.rowCount():,}" + ("" if self.model.exact else "+")
        filtered = f"{shown} shown of " if self.model.rowCount() != s["documents"] else ""
        terms = len(fts_terms(self.model.query.search))
        cut = (
            f" · <span style='color:#9a6a00'>only the first {MAX_SEARCH_TERMS} of the "
            f"{terms} search terms are used</span>"
            if terms > MAX_SEARCH_TERMS
            else ""
        )
        self.summary.setText(
            f"<b>{filtered}{plural(s['documents'], 'document')}</b> · "
            f"{plural(s['words'], 'word')} · "
            f"<span style='color:#1f7a3a'>{s['signal_share']:.0%} signal</span>, "
            f"<span style='color:#888'>{1 - s['signal_share']:.0%} boilerplate</span>{cut}"
            if s["documents"]
            else "<b>No documents yet.</b> Drop files or folders here, or use File → Import."
        )
        self.signal_bar.setValue(int(s["signal_share"] * 1000))
        self.signal_bar.setFormat(f"{s['signal_share']:.0%} signal")
        self.signal_bar.setToolTip(
            f"{s['signal_words']:,} of the {s['words']:,} imported words are signal; "
            f"the rest is boilerplate (navigation, footers, cookie banners, ...)"
        )
        self.signal_bar.setVisible(s["documents"] > 0)

    def _on_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        doc_id = self.model.doc_id(current.row()) if current.isValid() else None
        if doc_id is not None:
            self.document_selected.emit(doc_id)

    def select_row(self, n: int) -> None:
        self.table.selectRow(n)

    def refresh_rows(self) -> None:
        """Re-read the visible rows and totals without resetting the view (after a correction)."""
        self.model._pages.clear()
        last = self.model.rowCount() - 1
        if last >= 0:
            self.model.dataChanged.emit(
                self.model.index(0, 0), self.model.index(last, len(COLUMNS) - 1)
            )
        self._reload_stats()
