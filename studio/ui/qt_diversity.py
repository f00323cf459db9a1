"""The Diversity tab: measure document sets against the real pages, see collapse as it happens.

The curator picks how to group the documents (generation round, batch, plan cell, teacher,
source, score band, kind, or the corpus view's current filter) and presses Measure; the work runs
in the background (:func:`studio.diversity.project.analyze`). Plots: each measure against the
sets with the real pages' band, a 2-D map of the embeddings (click a point to read the page),
nearest-neighbour similarity histograms, perplexity percentile bands and topic coverage bars. The
alarms panel says which kind of collapse a set shows and lists the documents behind it.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.diversity.analysis import Options, Report
from studio.diversity.metrics import METRICS
from studio.diversity.sets import GROUPINGS, MAX_SETS
from studio.project import Project
from studio.store import DocumentQuery, Store
from studio.text import plural
from studio.ui.qt_notice import warning_box
from studio.ui.qt_ops import Op, run_op
from studio.ui.qt_plots import make_plot

GROUP_LABELS = {
    "round": "generation round",
    "batch": "generation batch",
    "cell": "plan cell",
    "teacher": "teacher",
    "source": "source file",
    "band": "classifier score band",
    "kind": "document kind",
    "query": "current corpus filter",
}
PALETTE = ["#2b6cb0", "#c05621", "#2f855a", "#9b2c2c", "#6b46c1", "#b7791f", "#2c7a7b", "#97266d"]
REAL_COLOUR = (150, 150, 150, 90)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


class DiversityView(QWidget):
    """Diversity measures, plots and alarms over the sets of one grouping."""

    measured = Signal(object)  # the Report
    document_opened = Signal(int)

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.pg = pg
        self.project, self.store = project, store
        self.op: Op | None = None
        self.report: Report | None = None
        self.failed_box: QMessageBox | None = None
        self.query: DocumentQuery | None = None
        self._build()
        self.summary.setText(
            "Choose how to group the documents and press <b>Measure</b>: every set is compared "
            "with random blocks of the real (non-synthetic) pages of the same size."
        )

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.grouping = QComboBox(objectName="diversityGrouping")
        for key in GROUPINGS:
            self.grouping.addItem(GROUP_LABELS[key], key)
        self.measure_button = QPushButton("Measure", objectName="measureDiversity")
        self.measure_button.clicked.connect(self.measure)
        self.progress = QProgressBar(maximum=1000, maximumWidth=360)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.op.cancel() if self.op else None)
        top = QHBoxLayout()
        for w in (QLabel("Compare sets by"), self.grouping, self.measure_button):
            top.addWidget(w)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_button)
        top.addStretch(1)
        self._busy(False)
        self.summary = QLabel(objectName="diversitySummary", wordWrap=True)

        self.plots = QTabWidget(objectName="diversityPlots")
        self.metric_choice = QComboBox(objectName="diversityMetric")
        for m in METRICS.values():
            self.metric_choice.addItem(f"{m.label} ({m.family})", m.name)
        self.metric_choice.setCurrentIndex(self.metric_choice.findData("vendi"))
        self.metric_choice.currentIndexChanged.connect(lambda _: self._plot_metric())
        self.metric_plot = make_plot("", "set", "")
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.addWidget(self.metric_choice)
        box.addWidget(self.metric_plot, 1)
        self.plots.addTab(holder, "Measures")
        self.map_plot = make_plot("2-D map of the embeddings (click a point)", "", "")
        self.plots.addTab(self.map_plot, "Map")
        self.nn_plot = make_plot("Nearest-neighbour similarity", "cosine similarity", "share")
        self.plots.addTab(self.nn_plot, "Neighbours")
        self.ppl_plot = make_plot("Perplexity under the reference model", "set", "perplexity")
        self.plots.addTab(self.ppl_plot, "Perplexity")
        self.cov_plot = make_plot("Topic coverage", "topic", "share of documents")
        self.plots.addTab(self.cov_plot, "Coverage")

        self.alarms = QListWidget(objectName="diversityAlarms")
        self.alarms.setWordWrap(True)
        self.alarms.currentRowChanged.connect(self._on_alarm)
        self.documents = QListWidget(objectName="diversityDocuments")
        self.documents.currentItemChanged.connect(self._on_document)
        self.reader = QTextBrowser(objectName="diversityReader")
        self.reader.setOpenLinks(False)
        side = QSplitter(Qt.Orientation.Vertical)
        for w, title in ((self.alarms, "Alarms"), (self.documents, "Documents"), (self.reader, "")):
            panel = QWidget()
            lay = QVBoxLayout(panel)
            lay.setContentsMargins(0, 0, 0, 0)
            if title:
                lay.addWidget(QLabel(f"<b>{title}</b>"))
            lay.addWidget(w)
            side.addWidget(panel)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.plots)
        body.addWidget(side)
        body.setSizes([900, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(body, 1)

    def _busy(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.measure_button.setEnabled(not on)

    # -- measuring ------------------------------------------------------------------------------

    def measure(self) -> None:
        from studio.diversity.project import analyze

        project, by = self.project, self.grouping.currentData()
        query = self.query or self._corpus_query()

        def work(task: Any) -> Report:
            with project.store() as store:
                return analyze(project, store, by, query=query, task=task)

        self._busy(True)
        self.progress.setValue(0)
        self.op = run_op(self, work)
        self.op.on_progress(self._on_progress).on_success(self.show_report).on_failure(
            self._on_failed
        )

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setFormat(f"{message} %p%" if message else "%p%")
        self.progress.setValue(int(1000 * done / total) if total else 0)

    def _corpus_query(self) -> DocumentQuery | None:
        """The corpus view's filter as it stands, when this view lives in the main window."""
        corpus = getattr(self.window(), "corpus", None)
        return getattr(getattr(corpus, "model", None), "query", None)

    def _on_failed(self, message: str, details: str) -> None:
        self._busy(False)
        if message.startswith("Cancelled"):  # the curator's own choice: no dialog
            self.summary.setText(
                "Cancelled: the measures shown are unchanged (pages embedded so far stay cached)."
            )
            return
        self.summary.setText(f"<b>Measuring failed</b>: {html.escape(message)}. {self._previous()}")
        self.failed_box = warning_box(self, "Diversity", message, details)

    def _previous(self) -> str:
        """What the plots and alarms still show after a failed measure: not this measure's."""
        if self.report is None:
            return "Nothing has been measured yet."
        by = GROUP_LABELS.get(self.report.by, self.report.by)
        return f"The plots and alarms below are still the previous measure's (by {by})."

    # -- showing --------------------------------------------------------------------------------

    def show_report(self, report: Report) -> None:
        self._busy(False)
        self.report = report
        measured = [s for s in report.sets if s.metrics]
        self.summary.setText(
            f"<b>{plural(len(report.sets), 'set')}</b>{self._largest(report)} "
            f"({len(measured)} measured) against {plural(len(report.real.doc_ids), 'real page')}, "
            f"in blocks of {report.block} documents and windows of {report.window:,} words. "
            f"{self._verdict(report, measured)}"
        )
        self.alarms.clear()
        for alarm in report.alarms:
            item = QListWidgetItem(f"{alarm.set} — {alarm.message}")
            item.setForeground(self.pg.mkColor("#b42318"))
            self.alarms.addItem(item)
        if not report.alarms:
            self.alarms.addItem("No alarm." if measured else "Nothing measured: no alarm to raise.")
        self._plot_metric()
        self._plot_map()
        self._plot_neighbours()
        self._plot_perplexity()
        self._plot_coverage()
        self.measured.emit(report)

    def _largest(self, report: Report) -> str:
        """By source, only the largest sources are sets: said, with how many there are."""
        if report.by != "source" or len(report.sets) < MAX_SETS:
            return ""
        sources = self.store.conn.execute(
            "SELECT count(DISTINCT source_id) FROM documents"
        ).fetchone()[0]
        return f" (the largest {MAX_SETS} of {sources:,} sources)" if sources > MAX_SETS else ""

    def _verdict(self, report: Report, measured: list[Any]) -> str:
        """The alarms, or why there are none. "No alarm" is said only of sets that were measured:
        with nothing measured it would read as a clean bill of health for pages never looked at."""
        kinds = sorted({a.kind for a in report.alarms})
        if kinds:
            return f"<span style='color:#b42318'><b>Alarms: {', '.join(kinds)}</b></span>"
        if not report.sets:
            return "<b>Nothing was measured</b>: this grouping gives no set of documents."
        small = [s for s in report.sets if not s.metrics]
        if not small:
            return "No alarm: every set stays within reach of the real pages."
        sizes = "; ".join(
            f"{html.escape(s.name)}: {plural(len(s.doc_ids), 'document')}" for s in small[:6]
        )
        sizes += "; …" if len(small) > 6 else ""
        too_small = f"a set needs at least {Options().min_docs} documents to be measured"
        if not measured:
            return (
                f"<b>Nothing was measured</b>, so no alarm could be raised: {too_small} "
                f"({sizes}). Widen the corpus filter, or group the documents another way."
            )
        return (
            "No alarm: every measured set stays within reach of the real pages. Not measured, "
            f"as {too_small}: {sizes}."
        )

    def _xs(self) -> tuple[list[float], list[str]]:
        assert self.report is not None
        sets = self.report.sets
        if all(s.x is not None for s in sets):
            return [float(s.x) for s in sets], [s.name for s in sets]  # type: ignore[arg-type]
        return [float(i + 1) for i in range(len(sets))], [s.name for s in sets]

    def _label_axis(self, plot: Any, xs: list[float], names: list[str]) -> None:
        plot.getAxis("bottom").setTicks([[(x, _tick(n)) for x, n in zip(xs, names, strict=True)]])

    def _plot_metric(self) -> None:
        plot, pg = self.metric_plot, self.pg
        plot.clear()
        if self.report is None:
            return
        name = self.metric_choice.currentData()
        metric = METRICS[name]
        plot.setTitle(f"{metric.label}: {metric.help}")
        xs, names = self._xs()
        band = self.report.band.get(name)
        if band is not None and xs:
            region = pg.LinearRegionItem(
                values=(band["p5"], band["p95"]),
                orientation="horizontal",
                movable=False,
                brush=pg.mkBrush(120, 120, 120, 50),
            )
            plot.addItem(region)
            plot.plot(
                [min(xs) - 0.3, max(xs) + 0.3],
                [band["p50"]] * 2,
                pen=pg.mkPen("#777", style=Qt.PenStyle.DashLine),
                name="real pages (median, 5–95 % band)",
            )
        ys = [s.metrics.get(name, np.nan) for s in self.report.sets]
        if np.isfinite(ys).any():  # sets too small to measure have no point to plot
            plot.plot(
                xs, ys, pen=pg.mkPen("#2b6cb0", width=2), symbol="o", symbolSize=8, name="sets"
            )
        # a cross where this measure is evidence of an alarm, not on every set with some alarm
        flagged = {
            a.set for a in self.report.alarms if any(e["metric"] == name for e in a.evidence)
        }
        bad = [
            (x, y) for x, y, s in zip(xs, ys, self.report.sets, strict=True) if s.name in flagged
        ]
        if bad:
            plot.plot(
                [b[0] for b in bad],
                [b[1] for b in bad],
                pen=None,
                symbol="x",
                symbolSize=14,
                symbolPen=pg.mkPen("#b42318", width=2),
                name="alarm on this measure",
            )
        self._label_axis(plot, xs, names)

    def _plot_map(self) -> None:
        plot, pg, report = self.map_plot, self.pg, self.report
        plot.clear()
        assert report is not None and report.coords is not None
        plot.setTitle(f"2-D map of the embeddings ({report.projection.upper()}; click a point)")
        docs = report.docs
        real_rows = report.real.rows
        assert real_rows is not None
        spots = [
            pg.ScatterPlotItem(
                x=report.coords[real_rows, 0],
                y=report.coords[real_rows, 1],
                data=docs.ids[real_rows],
                size=6,
                pen=None,
                brush=pg.mkBrush(*REAL_COLOUR),
                name="real pages",
            )
        ]
        for i, s in enumerate(report.sets[:24]):
            assert s.rows is not None
            spots.append(
                pg.ScatterPlotItem(
                    x=report.coords[s.rows, 0],
                    y=report.coords[s.rows, 1],
                    data=docs.ids[s.rows],
                    size=7,
                    pen=None,
                    brush=pg.mkBrush(colour(i)),
                    name=s.name,
                )
            )
        for item in spots:
            item.sigClicked.connect(self._on_points)
            plot.addItem(item)

    def _plot_neighbours(self) -> None:
        plot, pg, report = self.nn_plot, self.pg, self.report
        plot.clear()
        assert report is not None and report.docs.nn_similarity is not None
        edges = np.linspace(0, 1, 41)
        groups = [("real pages", report.real.rows, "#888")]
        groups += [(s.name, s.rows, colour(i)) for i, s in enumerate(report.sets[:8])]
        for name, rows, col in groups:
            values = report.docs.nn_similarity[rows]
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            counts, _ = np.histogram(values, bins=edges)
            plot.plot(
                edges,
                counts / max(len(values), 1),
                stepMode="center",
                pen=pg.mkPen(col, width=2),
                name=name,
            )

    def _plot_perplexity(self) -> None:
        plot, pg, report = self.ppl_plot, self.pg, self.report
        plot.clear()
        assert report is not None
        xs, names = self._xs()
        real = report.real.perplexity
        if real and xs:
            plot.addItem(
                pg.LinearRegionItem(
                    values=(real["p10"], real["p90"]),
                    orientation="horizontal",
                    movable=False,
                    brush=pg.mkBrush(120, 120, 120, 40),
                )
            )
            plot.plot(
                [min(xs) - 0.3, max(xs) + 0.3],
                [real["p50"]] * 2,
                pen=pg.mkPen("#777", style=Qt.PenStyle.DashLine),
                name="real pages (median, 10–90 % band)",
            )
        named = False  # the first set drawn names its marks in the legend
        for x, s in zip(xs, report.sets, strict=True):
            p = s.perplexity
            if not p:
                continue
            marks = ("10–90 %", "25–75 %", "median") if not named else (None, None, None)
            named = True
            plot.plot([x, x], [p["p10"], p["p90"]], pen=pg.mkPen("#9ab", width=6), name=marks[0])
            plot.plot(
                [x, x], [p["p25"], p["p75"]], pen=pg.mkPen("#2b6cb0", width=12), name=marks[1]
            )
            plot.plot(
                [x], [p["p50"]], pen=None, symbol="o", symbolBrush="#fff", symbolSize=7,
                name=marks[2],
            )  # fmt: skip
        self._label_axis(plot, xs, names)

    def _plot_coverage(self) -> None:
        plot, pg, report = self.cov_plot, self.pg, self.report
        plot.clear()
        assert report is not None
        if report.by == "cell":  # plan coverage: accepted pages per cell of the plan
            plot.setTitle("Plan coverage: accepted pages per cell")
            plot.setLabel("bottom", "plan cell")
            plot.setLabel("left", "accepted pages")
            xs = np.arange(len(report.sets))
            counts = [len(s.doc_ids) for s in report.sets]
            plot.addItem(pg.BarGraphItem(x=xs, height=counts, width=0.7, brush="#2b6cb0"))
            plot.getAxis("bottom").setTicks(
                [[(i, _tick(s.name, 24, end=True)) for i, s in enumerate(report.sets)]]
            )
            return
        plot.setTitle("Topic coverage: share of documents in each of the real pages' topics")
        plot.setLabel("bottom", "topic")
        plot.setLabel("left", "share of documents")
        k = len(report.topics)
        shown = [("real pages", report.real.topic_shares, "#999")]
        shown += [(s.name, s.topic_shares, colour(i)) for i, s in enumerate(report.sets[:6])]
        width = 0.8 / len(shown)
        for j, (name, shares, col) in enumerate(shown):
            if not shares:
                continue
            x = np.arange(k) + j * width - 0.4 + width / 2
            plot.addItem(pg.BarGraphItem(x=x, height=shares, width=width, brush=col, name=name))
        plot.getAxis("bottom").setTicks(
            [[(i, (report.topics[i] or f"topic {i + 1}").split(",")[0]) for i in range(k)]]
        )

    # -- documents ------------------------------------------------------------------------------

    def _on_points(self, _item: Any, points: Any, *_: Any) -> None:
        # the list now shows the map's points: no alarm stays marked as if they were its pages
        # (and a click on that alarm, still current, did nothing)
        self.alarms.setCurrentRow(-1)
        self.show_documents([int(p.data()) for p in points][:50])

    def _on_alarm(self, row: int) -> None:
        if self.report is None or not (0 <= row < len(self.report.alarms)):
            return
        alarm = self.report.alarms[row]
        self.show_documents(alarm.documents, alarm.real_documents)

    def show_documents(self, doc_ids: list[int], real_ids: list[int] | None = None) -> None:
        self.documents.clear()
        for label, ids in (("", doc_ids), ("real page lost: ", real_ids or [])):
            for doc_id in ids:
                record = self.store.document(doc_id)
                title = (record.title if record else None) or "(untitled)"
                item = QListWidgetItem(f"{label}#{doc_id}  {title}")
                item.setData(Qt.ItemDataRole.UserRole, doc_id)
                self.documents.addItem(item)
        if self.documents.count():
            self.documents.setCurrentRow(0)

    def _on_document(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        if item is None:
            return
        doc_id = int(item.data(Qt.ItemDataRole.UserRole))
        self.reader.setPlainText(self.store.main_text(doc_id))
        self.document_opened.emit(doc_id)


def _tick(name: str, width: int = 18, *, end: bool = False) -> str:
    """A set's name under its tick: whole, or cut with an ellipsis where it was cut (a plan
    cell's name keeps its end, the subtopic, where its start is shared by its neighbours)."""
    if len(name) <= width:
        return name
    return "…" + name[-(width - 1) :] if end else name[: width - 1] + "…"
