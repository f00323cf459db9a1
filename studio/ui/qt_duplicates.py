"""The Duplicates tab: near-duplicate clusters (one document kept in each, a curator may keep
another) and benchmark decontamination (hits, the shared span side by side).

Both runs go to the background with progress and cancel; the view reads what they stored.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.decontam.benchmarks import shipped_names
from studio.decontam.corpus import contaminated_summary, stored_hits
from studio.decontam.index import MIN_N
from studio.dedup import corpus as dedup
from studio.dedup.index import MAX_HASHES, lsh_reach, suggested_lsh
from studio.project import Project
from studio.store import Store
from studio.text import plural
from studio.ui.qt_notice import warning_box
from studio.ui.qt_ops import Op, run_op

MAX_CLUSTERS = 5000  # listed, largest first; the rest are marked all the same
MAX_HITS = 5000
CONTEXT = 1500  # characters shown around a span (a page can be megabytes)
HIGHLIGHT = "background-color:#ffd86b; color:#000;"


def table(columns: list[str], name: str) -> QTableWidget:
    t = QTableWidget(0, len(columns), objectName=name)
    t.setHorizontalHeaderLabels(columns)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def fill(t: QTableWidget, rows: list[list[Any]], keys: list[Any]) -> None:
    """Rows of display values; each row's first cell carries its key (Qt.UserRole)."""
    t.setRowCount(0)
    t.setRowCount(len(rows))
    for r, (values, key) in enumerate(zip(rows, keys, strict=True)):
        for c, v in enumerate(values):
            item = QTableWidgetItem(v if isinstance(v, str) else f"{v}")
            if isinstance(v, int | float) and not isinstance(v, bool):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if c == 0:
                item.setData(Qt.ItemDataRole.UserRole, key)
            t.setItem(r, c, item)


def highlighted(text: str, start: int, end: int, context: int = CONTEXT) -> str:
    """HTML of the text around ``[start, end)``, that span marked and anchored as ``hit``."""
    lo, hi = max(0, start - context), min(len(text), end + context)
    before = ("…" if lo else "") + text[lo:start]
    after = text[end:hi] + ("…" if hi < len(text) else "")
    return (
        "<div style='white-space:pre-wrap; font-family:monospace'>"
        f"{html.escape(before)}<a name='hit'></a><span style='{HIGHLIGHT}'>"
        f"{html.escape(text[start:end])}</span>{html.escape(after)}</div>"
    )


class DuplicatesView(QWidget):
    """Near-duplicate clusters and benchmark hits of one project."""

    deduplicated = Signal(object)  # DedupReport
    kept_changed = Signal(int)  # the document a curator chose to keep
    decontaminated = Signal(object)  # DecontamReport
    failed = Signal(str)

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.store = project, store
        self.op: Op | None = None
        self.message_box: QMessageBox | None = None
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_clusters())
        splitter.addWidget(self._build_decontam())
        splitter.setSizes([500, 500])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._busy(False)
        self.reload()

    # -- building ------------------------------------------------------------------------------

    def _build_clusters(self) -> QGroupBox:
        box = QGroupBox("Near-duplicates (MinHash LSH over word n-grams)")
        self.threshold = QDoubleSpinBox(minimum=0.3, maximum=1.0, singleStep=0.05, value=0.7)
        self.threshold.setToolTip("Estimated Jaccard similarity at which pages are near-duplicates")
        self.bands = QSpinBox(minimum=1, maximum=512, value=14)
        self.rows = QSpinBox(minimum=1, maximum=64, value=8)
        self.ngram = QSpinBox(minimum=1, maximum=64, value=5)
        self.dedup_button = QPushButton("Find near-duplicates", objectName="findDuplicates")
        self.dedup_button.clicked.connect(self.find_duplicates)
        self.dedup_progress = QProgressBar(maximum=1000, maximumWidth=300)
        self.dedup_cancel = QPushButton("Cancel", objectName="cancelDuplicates")
        self.dedup_cancel.clicked.connect(self.cancel)
        top = QHBoxLayout()
        for w in (QLabel("Similarity ≥"), self.threshold, QLabel("Bands"), self.bands,
                  QLabel("× rows"), self.rows, QLabel("Words a shingle"), self.ngram,
                  self.dedup_button, self.dedup_progress, self.dedup_cancel):  # fmt: skip
            top.addWidget(w)
        top.addStretch(1)
        self.lsh_note = QLabel(objectName="lshNote", wordWrap=True)
        for spin in (self.threshold, self.bands, self.rows):
            spin.valueChanged.connect(self._check_lsh)
        self.dedup_summary = QLabel(objectName="dedupSummary", wordWrap=True)
        self.clusters = table(
            ["Cluster", "Size", "Similarity ≥", "Kept", "Kept by", "Kept document"],
            "clusterTable",
        )
        self.clusters.itemSelectionChanged.connect(self._on_cluster)
        self.members = table(
            ["Document", "", "Similarity", "Words", "Title", "Reason"], "memberTable"
        )
        self.members.itemSelectionChanged.connect(self._on_member)
        self.keep_button = QPushButton("Keep this one instead", objectName="keepDocument")
        self.keep_button.setEnabled(False)
        self.keep_button.clicked.connect(self.keep_selected)
        self.member_text = QTextBrowser(objectName="memberText", openLinks=False)
        right = QVBoxLayout()
        right.addWidget(self.members, 2)
        right.addWidget(self.keep_button)
        right.addWidget(self.member_text, 1)
        holder = QWidget()
        holder.setLayout(right)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.clusters)
        split.addWidget(holder)
        split.setSizes([450, 750])
        layout = QVBoxLayout(box)
        layout.addLayout(top)
        layout.addWidget(self.lsh_note)
        layout.addWidget(self.dedup_summary)
        layout.addWidget(split, 1)
        self._check_lsh()
        return box

    def _build_decontam(self) -> QGroupBox:
        box = QGroupBox("Benchmark decontamination (shared word n-grams)")
        self.benchmarks = QListWidget(objectName="benchmarkList", maximumWidth=260)
        for name in shipped_names():
            self._add_benchmark(name, name)
        self.add_file_button = QPushButton("Add a benchmark file…", objectName="addBenchmark")
        self.add_file_button.clicked.connect(self._choose_file)
        self.n = QSpinBox(minimum=MIN_N, maximum=200, value=13)
        self.n.setToolTip(f"Words per n-gram; at least {MIN_N}: shorter ones match ordinary prose")
        self.decontam_button = QPushButton("Check the corpus", objectName="runDecontam")
        self.decontam_button.clicked.connect(self.check_benchmarks)
        self.decontam_progress = QProgressBar(maximum=1000, maximumWidth=300)
        self.decontam_cancel = QPushButton("Cancel", objectName="cancelDecontam")
        self.decontam_cancel.clicked.connect(self.cancel)
        left = QVBoxLayout()
        left.addWidget(QLabel("Benchmarks"))
        left.addWidget(self.benchmarks, 1)
        left.addWidget(self.add_file_button)
        row = QHBoxLayout()
        row.addWidget(QLabel("Words an n-gram"))
        row.addWidget(self.n)
        left.addLayout(row)
        left.addWidget(self.decontam_button)
        left.addWidget(self.decontam_progress)
        left.addWidget(self.decontam_cancel)
        self.decontam_summary = QLabel(objectName="decontamSummary", wordWrap=True)
        self.hits = table(["Document", "Benchmark", "Item", "Shared text", "Title"], "hitTable")
        self.hits.itemSelectionChanged.connect(self._on_hit)
        self.doc_view = QTextBrowser(objectName="hitDocument", openLinks=False)
        self.item_view = QTextBrowser(objectName="hitItem", openLinks=False)
        self.doc_label, self.item_label = QLabel("Document"), QLabel("Benchmark item")
        sides = QHBoxLayout()
        for label, view in ((self.doc_label, self.doc_view), (self.item_label, self.item_view)):
            col = QVBoxLayout()
            col.addWidget(label)
            col.addWidget(view, 1)
            sides.addLayout(col)
        right = QVBoxLayout()
        right.addWidget(self.decontam_summary)
        right.addWidget(self.hits, 1)
        right.addLayout(sides, 1)
        layout = QHBoxLayout(box)
        layout.addLayout(left)
        layout.addLayout(right, 1)
        return box

    def _add_benchmark(self, label: str, key: str) -> None:
        item = QListWidgetItem(label)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(key)
        self.benchmarks.addItem(item)

    def add_benchmark_file(self, path: str) -> None:
        self._add_benchmark(Path(path).name, path)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "A benchmark file", "", "Benchmarks (*.jsonl *.json *.gz *.csv *.txt)"
        )
        if path:
            self.add_benchmark_file(path)

    def chosen_benchmarks(self) -> list[str]:
        return [
            self.benchmarks.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.benchmarks.count())
            if self.benchmarks.item(i).checkState() == Qt.CheckState.Checked
        ]

    # -- showing what is stored ----------------------------------------------------------------

    def reload(self) -> None:
        self._show_clusters()
        self._show_hits()

    def _show_clusters(self, select: int | None = None) -> None:
        found = dedup.clusters(self.store, limit=MAX_CLUSTERS)
        s = dedup.summary(self.store)
        if s["last_run"] is None:
            self.dedup_summary.setText("Not run yet on this project.")
        else:
            more = f" (the {MAX_CLUSTERS:,} largest listed)" if s["clusters"] > len(found) else ""
            self.dedup_summary.setText(
                f"{plural(s['clusters'], 'cluster')}{more}, {plural(s['removed'], 'document')} "
                f"marked as near-duplicates and left out of exports. Kept in each: "
                f"{dedup.RULE}."
            )
        rows = [
            [c["id"], c["size"], f"{c['similarity']:.2f}", c["kept_doc_id"], c["kept_by"],
             c["title"] or c["url"] or ""]
            for c in found
        ]  # fmt: skip
        fill(self.clusters, rows, [c["id"] for c in found])
        self.members.setRowCount(0)
        self.member_text.clear()
        self.keep_button.setEnabled(False)
        if select is not None:
            for r in range(self.clusters.rowCount()):
                if self.clusters.item(r, 0).data(Qt.ItemDataRole.UserRole) == select:
                    self.clusters.selectRow(r)

    def _on_cluster(self) -> None:
        cid = self._selected(self.clusters)
        if cid is None:
            return
        members = dedup.cluster_members(self.store, cid)
        rows = [
            [m["doc_id"], "✓ kept" if m["kept"] else "", f"{m['similarity']:.2f}",
             m["signal_words"], m["title"] or m["url"] or "", m["reason"] or ""]
            for m in members
        ]  # fmt: skip
        fill(self.members, rows, [m["doc_id"] for m in members])
        if members:
            self.members.selectRow(0)

    def _on_member(self) -> None:
        doc_id = self._selected(self.members)
        row = self.members.currentRow()
        kept = row >= 0 and self.members.item(row, 1).text() != ""
        self.keep_button.setEnabled(doc_id is not None and not kept and not self._running())
        if doc_id is not None:
            text = self.store.main_text(doc_id)
            self.member_text.setPlainText(text[: CONTEXT * 4])

    def _show_hits(self, select: int | None = None) -> None:
        hits = stored_hits(self.store, limit=MAX_HITS)
        summary = contaminated_summary(self.store)
        if not summary:
            ran = self.store.conn.execute("SELECT count(*) FROM decontam_runs").fetchone()[0]
            self.decontam_summary.setText(
                "No document shares an n-gram with the benchmarks checked."
                if ran
                else "Not checked yet: choose benchmarks and check the corpus."
            )
        else:
            per = ", ".join(f"{b}: {n:,}" for b, n in summary.items())
            self.decontam_summary.setText(f"Contaminated documents, left out of exports: {per}.")
        rows = [
            [h["doc_id"], h["benchmark"], h["item_id"], " ".join(h["ngram"].split())[:120],
             h["title"] or ""]
            for h in hits
        ]  # fmt: skip
        self._hit_rows = hits
        fill(self.hits, rows, list(range(len(hits))))
        self.doc_view.clear()
        self.item_view.clear()
        if hits:
            self.hits.selectRow(0 if select is None else select)

    def _on_hit(self) -> None:
        k = self._selected(self.hits)
        if k is None:
            return
        h = self._hit_rows[k]
        text = self.store.main_text(h["doc_id"])
        title = f": {h['title']}" if h["title"] else ""
        self.doc_label.setText(f"Document {h['doc_id']}{title}")
        self.item_label.setText(f"{h['benchmark']} item {h['item_id']}")
        self.doc_view.setHtml(highlighted(text, h["doc_start"], h["doc_end"]))
        self.item_view.setHtml(highlighted(h["item_text"], h["item_start"], h["item_end"]))
        self.doc_view.scrollToAnchor("hit")
        self.item_view.scrollToAnchor("hit")

    @staticmethod
    def _selected(t: QTableWidget) -> Any:
        row = t.currentRow()
        if row < 0 or t.item(row, 0) is None:
            return None
        return t.item(row, 0).data(Qt.ItemDataRole.UserRole)

    def _check_lsh(self) -> None:
        """Say what the bands and rows do before the curator runs them: how many hashes a page
        costs, and the similarity at which a pair becomes a candidate half the time
        ((1/b)^(1/r)); settings the index refuses, or that would miss most pairs at the
        threshold, are said here rather than after a click."""
        b, r, t = self.bands.value(), self.rows.value(), float(self.threshold.value())
        if b * r > MAX_HASHES:
            self.lsh_note.setText(
                f"<span style='color:#b42318'>{b} bands × {r} rows = {b * r:,} hashes a page: "
                f"at most {MAX_HASHES:,}. Lower the bands or the rows.</span>"
            )
            self.dedup_button.setEnabled(False)
            self.dedup_button.setToolTip("Too many hashes a page: see the note below")
            return
        knee, found = lsh_reach(b, r, t)  # found: chance a pair right at the threshold is compared
        text = (
            f"{b * r:,} hashes a page; pairs about {knee:.2f} similar are compared half the "
            f"time, pairs at {t:.2f} {found:.0%} of the time."
        )
        if found < 0.5:
            sb, sr = suggested_lsh(t)
            text = f"<span style='color:#9a6a00'>{text} Many near-duplicates at the threshold "
            text += f"would be missed: add bands or remove rows (for {t:.2f}: {sb} × {sr}).</span>"
        self.lsh_note.setText(text)
        self.dedup_button.setEnabled(not self._running())
        self.dedup_button.setToolTip("")

    # -- actions -------------------------------------------------------------------------------

    def find_duplicates(self) -> None:
        project = self.project
        params = {
            "threshold": round(float(self.threshold.value()), 4),
            "bands": self.bands.value(),
            "rows": self.rows.value(),
            "ngram": self.ngram.value(),
        }

        def work(task: Any) -> Any:
            with project.store() as store:
                return dedup.dedup_corpus(store, task=task, **params)

        self._start(work, self._on_deduplicated, self.dedup_progress)

    def keep_selected(self) -> None:
        doc_id = self._selected(self.members)
        if doc_id is None:
            return
        project = self.project

        def work(task: Any) -> int:
            with project.store() as store:
                dedup.keep_document(store, doc_id)
            return int(doc_id)

        self._start(work, self._on_kept, self.dedup_progress)

    def check_benchmarks(self) -> None:
        chosen, n, project = self.chosen_benchmarks(), self.n.value(), self.project
        if not chosen:
            self._tell("Decontamination", "Choose at least one benchmark.")
            return

        def work(task: Any) -> Any:
            from studio.decontam import BenchmarkIndex
            from studio.decontam.corpus import decontaminate

            index = BenchmarkIndex.load(chosen, n=n)
            with project.store() as store:
                return decontaminate(store, index, task=task)

        self._start(work, self._on_decontaminated, self.decontam_progress)

    def cancel(self) -> None:
        if self.op is not None:
            self.op.cancel()

    def _running(self) -> bool:
        return self.op is not None and self.op.running

    def _start(self, work: Any, done: Any, bar: QProgressBar) -> None:
        self._busy(True, bar)
        bar.setValue(0)
        self.op = run_op(self, work)
        self.op.on_progress(lambda d, t, m: self._on_progress(bar, d, t, m))
        self.op.on_success(done).on_failure(self._on_failed)

    def _busy(self, on: bool, bar: QProgressBar | None = None) -> None:
        for b, cancel in (
            (self.dedup_progress, self.dedup_cancel),
            (self.decontam_progress, self.decontam_cancel),
        ):
            b.setVisible(on and b is bar)
            cancel.setVisible(on and b is bar)
        for button in (self.dedup_button, self.decontam_button, self.add_file_button):
            button.setEnabled(not on)
        if on:
            self.keep_button.setEnabled(False)
        else:
            self._check_lsh()  # settings the index refuses keep the button off

    @staticmethod
    def _on_progress(bar: QProgressBar, done: int, total: int, message: str) -> None:
        bar.setValue(int(1000 * done / total) if total else 0)
        bar.setFormat(f"{message[:40]} %p%" if message else "%p%")

    def _on_deduplicated(self, report: Any) -> None:
        self._busy(False)
        self._show_clusters()
        if report.notes:  # e.g. keepers chosen on part of the corpus's scores
            notes = "".join(
                f"<br><span style='color:#9a6a00'>{html.escape(n)}</span>" for n in report.notes
            )
            self.dedup_summary.setText(html.escape(self.dedup_summary.text()) + notes)
        self.deduplicated.emit(report)

    def _on_kept(self, doc_id: int) -> None:
        self._busy(False)
        cid = self.store.conn.execute(
            "SELECT cluster_id FROM dedup_marks WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        self._show_clusters(select=cid[0] if cid else None)
        self.kept_changed.emit(doc_id)

    def _on_decontaminated(self, report: Any) -> None:
        self._busy(False)
        self._show_hits()
        if report.skipped:  # a curator's file with lines that are no item: say which, and why
            self._tell(
                "Decontamination",
                "Some benchmark lines were not checked:\n" + "\n".join(report.skipped_text),
            )
        self.decontaminated.emit(report)

    def _on_failed(self, message: str, details: str) -> None:
        self._busy(False)
        if message.startswith("Cancelled"):
            message = "Cancelled: the earlier results are unchanged."
            details = ""
        self._tell("Duplicates", message, details)
        self.failed.emit(message)

    def _tell(self, title: str, message: str, details: str = "") -> None:
        self.message_box = warning_box(self, title, message, details)
