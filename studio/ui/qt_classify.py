"""The classifier: train it on the project's labels, read its cross-validated metrics, score the
corpus, and choose a threshold while seeing how much it keeps.

Scoring runs on a thread of the studio, or as ``studio score --progress-json`` in a child
process (a local one, on worker processes, or on a Ray cluster): its JSON lines drive the
progress bar, Cancel stops it between batches (the scores written stay, Score resumes), and a
failure shows the job's log while the studio stays up.

pyqtgraph is imported when this view is first built (the tab is built on first use), so the
studio's start-up does not pay for it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.classify.score import KeepCurve, score_documents
from studio.classify.train import train_classifier
from studio.classify.versions import ClassifierFileError, read_meta
from studio.project import Project
from studio.store import Store
from studio.text import plural
from studio.ui.qt_notice import warning_box
from studio.ui.qt_ops import Op, run_op
from studio.ui.qt_plots import make_plot
from studio.ui.qt_process import JobProcess

CV_COLUMNS = [
    ("Features", "features"),
    ("Model", "model"),
    ("F1 at keep", "f1_keep"),
    ("Spearman", "spearman"),
    ("ROC-AUC", "roc_auc"),
    ("Keep accuracy", "keep_accuracy"),
]
CV_TIPS = {
    "f1_keep": "F1 of the keep decision (score at least the threshold), out of fold",
    "spearman": "Spearman rank correlation of the model's output with the labels",
    "roc_auc": "ROC-AUC of the keep decision: how well the output ranks kept pages first",
    "keep_accuracy": "Share of pages whose keep decision is right, out of fold (the same "
    "measure for every model; the stored accuracy is of rounded scores for ridge and forest "
    "and of the keep decision for logistic, so it is not shown here)",
}
SLIDER_STEPS = 500
# where scoring runs: a thread of the studio, or a `studio score` child process on an engine
ENGINES = [
    ("In this process", "thread", "A thread of the studio: quick for a small corpus."),
    (
        "Child process",
        "local",
        "`studio score` as a child process: the studio stays light while a large corpus is scored.",
    ),
    (
        "Worker processes",
        "processes",
        "A child process that scores Parquet shards on local worker processes.",
    ),
    ("Ray cluster", "ray", "A child process that scores Parquet shards as Ray tasks."),
]
WHERE = {"local": "a child process", "processes": "worker processes", "ray": "Ray tasks"}
# what a part of a version's meta.json that another tool (or a hand) wrote wrongly raises
SHOW_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def address_problem(address: str) -> str | None:
    """Why a Ray address cannot go to the child process (None: it can). No address holds a space
    or a control character, and the child's arguments end at a NUL: passed on, such a typo
    quietly sends the job to another Ray than the one the curator named."""
    for i, c in enumerate(address):
        if c.isspace() or not c.isprintable():
            what = "a space" if c == " " else f"the control character U+{ord(c):04X}"
            return (
                f"the Ray address {address!r} holds {what} at position {i + 1}; an address is "
                "ray://host:10001, host:6379 or auto, with no spaces or control characters"
            )
    return None


def _metric(metrics: dict[str, Any], key: str) -> Any:
    """A cross-validation figure of one row; a version saved before the keep decision's
    accuracy was stored has it only for its chosen row (from the confusion matrix)."""
    value = metrics.get(key)
    if value is None and key == "keep_accuracy" and "keep_confusion" in metrics:
        try:
            (tn, fp), (fn, tp) = metrics["keep_confusion"]
            return (tn + tp) / (tn + fp + fn + tp)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
    return value


def _labels_on_pages(meta: dict[str, Any]) -> str:
    """'96 labels on 80 pages' (a page two annotators scored counts twice in the labels)."""
    labels = int(meta["n_labels"])
    metrics = meta.get("metrics")
    pages = metrics.get("n") if isinstance(metrics, dict) else None
    if not isinstance(pages, int) or pages == labels:
        return plural(labels, "label")
    return f"{plural(labels, 'label')} on {plural(pages, 'page')}"


class ClassifierView(QWidget):
    """Train, inspect and apply the educational-value classifier."""

    trained = Signal(str)  # version id
    corpus_changed = Signal(str)  # a version scored the corpus: its list shows new scores

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.pg = pg
        self.project, self.store = project, store
        self.op: Op | None = None
        self.job = JobProcess(self)
        self.job.event.connect(self._on_job_event)
        self.job.ended.connect(self._on_job_ended)
        self._job_version: str | None = None
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.job.stop_and_wait)
        self.failed_box: QMessageBox | None = None
        self.curve: KeepCurve | None = None
        self.metas: dict[str, dict[str, Any]] = {}  # version -> its meta.json, as read
        self.damaged: dict[str, str] = {}  # version -> why its files cannot be used
        self._build()
        self.reload_versions()

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        pg = self.pg
        self.threshold = QDoubleSpinBox(minimum=1, maximum=5, singleStep=1, value=3, decimals=0)
        self.threshold.setToolTip("A page is kept when its rubric score is at least this")
        self.train_button = QPushButton("Train on the labels", objectName="trainClassifier")
        self.train_button.clicked.connect(self.train)
        self.versions = QComboBox(objectName="classifierVersions")
        self.versions.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.versions.currentIndexChanged.connect(lambda _: self.show_version())
        self.score_button = QPushButton("Score the corpus", objectName="scoreCorpus")
        self.score_button.clicked.connect(self.score)
        self.progress = QProgressBar(maximum=1000, minimumWidth=260, maximumWidth=360)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        top = QHBoxLayout()
        for w in (
            QLabel("Keep at score ≥"),
            self.threshold,
            self.train_button,
            QLabel("Version:"),
            self.versions,
            self.score_button,
            self.progress,
            self.cancel_button,
        ):
            top.addWidget(w)
        top.addStretch(1)
        embedding_row = self._build_embedding_row()
        engine_row = self._build_engine_row()
        self._busy(False)

        self.reason = QLabel(objectName="classifierReason", wordWrap=True)
        self.table = QTableWidget(0, len(CV_COLUMNS), objectName="cvTable")
        self.table.setHorizontalHeaderLabels([c for c, _ in CV_COLUMNS])
        for c, (_, key) in enumerate(CV_COLUMNS):
            if key in CV_TIPS:
                self.table.horizontalHeaderItem(c).setToolTip(CV_TIPS[key])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.confusion = QLabel(objectName="confusion")

        self.pr_plot = self._curve_plot(
            "Precision–recall (keep decision, out of fold)", "recall", "precision"
        )
        self.cal_plot = self._curve_plot("Calibration", "predicted", "observed")
        self.lc_plot = self._curve_plot(
            "Learning curve: would more labels help?", "labelled pages trained on", "F1 at keep"
        )
        self.hist_plot = self._curve_plot("Scores over the corpus", "score", "pages")
        self.threshold_line = pg.InfiniteLine(
            angle=90, movable=True, pen=pg.mkPen("#b42318", width=2)
        )
        self.threshold_line.sigPositionChanged.connect(self._on_line_moved)
        self.hist_plot.addItem(self.threshold_line)
        self.slider = QSlider(
            Qt.Orientation.Horizontal, maximum=SLIDER_STEPS, objectName="keepSlider"
        )
        self.slider.valueChanged.connect(self._on_slider)
        self.keep_label = QLabel(objectName="keepSummary", wordWrap=True)

        plots = QGridLayout()
        plots.addWidget(self.pr_plot, 0, 0)
        plots.addWidget(self.cal_plot, 0, 1)
        plots.addWidget(self.lc_plot, 1, 0)
        hist = QVBoxLayout()
        hist.addWidget(self.hist_plot, 1)
        hist.addWidget(self.slider)
        hist.addWidget(self.keep_label)
        holder = QWidget()
        holder.setLayout(hist)
        plots.addWidget(holder, 1, 1)
        # the curves as tall as the histogram: shared by stretch, not by size hints (which
        # squeezed the top row to its minimum under the histogram with its slider)
        for widget in (self.pr_plot, self.cal_plot, self.lc_plot, self.hist_plot, holder):
            widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        for row in (0, 1):
            plots.setRowStretch(row, 1)
        left = QVBoxLayout()
        left.addWidget(self.reason)
        left.addWidget(self.table, 1)
        left.addWidget(self.confusion)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(plots, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(embedding_row)
        layout.addLayout(engine_row)
        layout.addLayout(body, 1)

    def _build_embedding_row(self) -> QHBoxLayout:
        self.embedding_path: str | None = None  # None: the shipped all-MiniLM-L6-v2
        self.embed_check = QCheckBox("Also compare transformer embeddings", objectName="embedCheck")
        self.embed_check.setToolTip(
            "Embeds every labelled page, whole, with the transformer: slow on a CPU (minutes "
            "for a few hundred labels). Once they are embedded, training compares these "
            "features by itself."
        )
        self.embedding_label = QLabel(objectName="embeddingModel")
        self.embedding_button = QPushButton("Choose model folder…", objectName="chooseEmbedding")
        self.embedding_button.clicked.connect(self._choose_embedding)
        self.embedding_reset = QPushButton("Use the shipped model", objectName="resetEmbedding")
        self.embedding_reset.clicked.connect(lambda: self.set_embedding_folder(None))
        row = QHBoxLayout()
        for w in (
            self.embed_check,
            self.embedding_label,
            self.embedding_button,
            self.embedding_reset,
        ):
            row.addWidget(w)
        row.addStretch(1)
        self.set_embedding_folder(None)
        return row

    def _build_engine_row(self) -> QHBoxLayout:
        self.engine = QComboBox(objectName="scoreEngine")
        for i, (text, name, tip) in enumerate(ENGINES):
            self.engine.addItem(text, name)
            self.engine.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.engine.currentIndexChanged.connect(lambda _: self._engine_changed())
        self.address = QLineEdit(objectName="rayAddress", placeholderText="a local Ray")
        self.address.setToolTip("ray://host:10001, host:6379 or auto; empty: start a local Ray")
        self.workers = QSpinBox(minimum=1, maximum=512, value=2, objectName="scoreWorkers")
        self.shard_rows = QSpinBox(
            minimum=1, maximum=1_000_000, value=2000, singleStep=500, objectName="shardRows"
        )
        self.shard_rows.setToolTip("Documents per Parquet shard; finished shards are skipped")
        self.score_status = QLabel(objectName="scoreStatus", wordWrap=True)
        self._engine_labels = [QLabel("Address:"), QLabel("Workers:"), QLabel("Per shard:")]
        row = QHBoxLayout()
        row.addWidget(QLabel("Score in:"))
        row.addWidget(self.engine)
        for label, w in zip(
            self._engine_labels, (self.address, self.workers, self.shard_rows), strict=True
        ):
            row.addWidget(label)
            row.addWidget(w)
        row.addWidget(self.score_status, 1)
        self._engine_changed()
        return row

    def set_engine(self, name: str) -> None:
        self.engine.setCurrentIndex(self.engine.findData(name))

    def _engine_changed(self) -> None:
        name = self.engine.currentData()
        sharded = name in ("processes", "ray")
        for w in (self._engine_labels[0], self.address):
            w.setVisible(name == "ray")
        for w in (*self._engine_labels[1:], self.workers, self.shard_rows):
            w.setVisible(sharded)

    def _choose_embedding(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "A sentence-transformers or Hugging Face model folder"
        )
        if folder:
            self.set_embedding_folder(folder)

    def set_embedding_folder(self, folder: str | None) -> bool:
        """Use the model in ``folder`` (None: the shipped one) for the transformer features;
        a folder that is not a usable model is refused with the reason, and nothing changes."""
        from studio.embed import EmbeddingError, resolve_model

        try:
            ref = resolve_model(folder)
        except EmbeddingError as exc:
            if folder is None:  # the shipped model is missing: say so, offer the chooser
                self.embedding_label.setText(f"<i>{html.escape(str(exc))}</i>")
                self.embedding_path = None
                self.embedding_reset.setVisible(False)
                return False
            self._warn("Embedding model", str(exc))
            return False
        self.embedding_path = folder
        where = "shipped with the studio" if ref.shipped else "chosen folder"
        name = html.escape(ref.name)  # from the folder's config.json: any text at all
        self.embedding_label.setText(f"Model: <b>{name}</b> ({ref.dims} dims, {where})")
        self.embedding_label.setToolTip(str(ref.path))
        self.embedding_reset.setVisible(folder is not None)
        if folder is not None:
            self.embed_check.setChecked(True)
        return True

    def _warn(self, title: str, message: str, details: str = "") -> None:
        # messages quote paths and files: never HTML
        self.failed_box = warning_box(self, title, message, details)

    def _note(self, plot: Any, text: str) -> None:
        """An empty plot says why it is empty. Its fixed 0-1 view is left by the next drawing
        (each one sets its own range, or asks for the data's)."""
        note = self.pg.TextItem(text, color="#888", anchor=(0.5, 0.5))
        plot.addItem(note)
        note.setPos(0.5, 0.5)
        plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    @staticmethod
    def _curve_plot(title: str, x: str, y: str) -> Any:
        plot = make_plot(title, x, y, legend_columns=0)
        plot.setMinimumHeight(180)
        return plot

    def _busy(self, on: bool) -> None:
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.train_button.setEnabled(not on)
        self.score_button.setEnabled(not on and self._can_score())
        self.engine.setEnabled(not on)

    def _can_score(self) -> bool:
        version = self.versions.currentData()
        return version is not None and version not in self.damaged

    # -- versions and their metrics --------------------------------------------------------------

    def reload_versions(self, select: str | None = None) -> None:
        """List every version, damaged ones too (marked, with why as their tooltip): a curator
        sees all the project holds. ``select``, else the latest intact version, is chosen."""
        rows = self.store.classifier_versions()
        self._read_metas(rows)
        ids = [row["id"] for row in rows]
        intact = [v for v in ids if v not in self.damaged]
        current = select if select in ids else (intact or ids or [None])[-1]
        self.versions.blockSignals(True)
        self.versions.clear()
        for row in rows:
            self.versions.addItem(self._version_text(row), row["id"])
            why = self.damaged.get(row["id"])
            if why is not None:
                self.versions.setItemData(
                    self.versions.count() - 1, why, Qt.ItemDataRole.ToolTipRole
                )
        self.versions.setCurrentIndex(self.versions.findData(current) if current else -1)
        self.versions.blockSignals(False)
        self._busy(False)
        self.show_version()

    def _read_metas(self, rows: list[dict[str, Any]]) -> None:
        """Each version's meta.json, read once: the files are the curator's to edit or delete,
        so one that cannot be read marks its version damaged instead of blanking the tab."""
        self.metas, self.damaged = {}, {}
        for row in rows:
            try:
                self.metas[row["id"]] = read_meta(self.project.root / row["path"], row["id"])
            except ClassifierFileError as exc:
                self.damaged[row["id"]] = str(exc)

    def _version_text(self, row: dict[str, Any]) -> str:
        if row["id"] in self.damaged:
            return f"{row['id']}  (damaged: cannot be used)"
        m = row["metrics"] if isinstance(row["metrics"], dict) else {}
        f1 = m.get("f1_keep")
        if isinstance(f1, int | float) and f1:
            return f"{row['id']}  (F1 {f1:.2f}, {row['scored']:,} scored)"
        return str(row["id"])

    def show_version(self) -> None:
        version = self.versions.currentData()
        for plot in (self.pr_plot, self.cal_plot, self.lc_plot):
            plot.clear()
            if version is None:
                self._note(plot, "No classifier yet")
            elif version in self.damaged:
                self._note(plot, "This version's files are damaged.")
        self.confusion.setText("")
        self.table.setRowCount(0)
        self.score_button.setEnabled(self.train_button.isEnabled() and self._can_score())
        if version is None:
            self.reason.setText(
                "<b>No classifier yet.</b> Label pages in the Label tab (a few dozen on each side "
                "of the threshold), then train."
            )
            self._show_scores(None, {})
            return
        if version in self.damaged:
            others = len(self.metas) > 0
            self.reason.setText(
                f"<b>{html.escape(version)} cannot be used.</b> "
                f"{html.escape(self.damaged[version])}."
                + (" Choose another version to score with." if others else "")
            )
            self._show_scores(None, {}, "This version's files are damaged.")
            return
        self._show_meta(version, self.metas[version])

    def _show_meta(self, version: str, meta: dict[str, Any]) -> None:
        """The version's description, table, curves and scores from its meta.json. A part the
        file cannot give (edited by hand, written by another tool) is named under the reason and
        left empty; the rest shows, and the version still scores, as loading it needs none."""
        missing: list[str] = []
        metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
        chosen = (meta["feature_set"], meta["model_kind"])
        parts: list[tuple[str, Callable[[], None]]] = [
            ("its description", lambda: self.reason.setText(self._describe(version, meta))),
            ("its comparison table", lambda: self._fill_table(meta["cv_table"], chosen, metrics)),
            ("its curves", lambda: self._plot_metrics(metrics, meta.get("learning_curve") or [])),
            ("its scores", lambda: self._show_scores(version, meta)),
        ]
        for part, show in parts:
            try:
                show()
            except SHOW_ERRORS:
                missing.append(part)
        if not metrics:
            missing.append("its cross-validated metrics")
        if "its description" in missing:
            self.reason.setText(f"<b>{html.escape(version)}</b>")
        if "its comparison table" in missing:
            self.table.setRowCount(0)  # not the rows filled before the one it tripped on
        if missing:
            self.reason.setText(
                f"{self.reason.text()}<br><i>Its meta.json cannot give {', '.join(missing)}: the "
                "file was edited or is damaged. It still scores; train again for a full "
                "report.</i>"
            )

    def _describe(self, version: str, meta: dict[str, Any]) -> str:
        embedded = ", ".join(
            f"{part} features from {info.get('name')}"
            for part, info in (meta.get("embedding") or {}).items()
        )
        notes = "".join(f"<br><small>{html.escape(n)}</small>" for n in meta.get("notes", []))
        return (
            f"<b>{html.escape(version)}</b>: {html.escape(meta['reason'])}<br>"
            f"{_labels_on_pages(meta)}, {int(meta['folds'])}-fold cross-validation; every "
            f"figure is on pages the model did not see while it was fitted."
            f"{'<br>Embedding: ' + html.escape(embedded) if embedded else ''}{notes}"
        )

    def _fill_table(
        self, rows: list[dict[str, Any]], chosen: tuple[str, str], metrics: dict[str, Any]
    ) -> None:
        """The comparison, a row a combination; the chosen one's row in bold, completed from
        its full metrics (a version saved before a column was stored has it only there)."""
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            is_chosen = (row["features"], row["model"]) == chosen
            m = {**metrics, **row["metrics"]} if is_chosen else row["metrics"]
            values = [row["features"], row["model"]] + [
                _metric(m, key) for _, key in CV_COLUMNS[2:]
            ]
            for c, value in enumerate(values):
                text = f"{value:.3f}" if isinstance(value, float) else str(value or "–")
                item = QTableWidgetItem(text)
                if value is None:
                    item.setToolTip("not stored by the studio that trained this version")
                if is_chosen:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)

    def _plot_metrics(self, m: dict[str, Any], learning: list[dict[str, Any]]) -> None:
        pg = self.pg
        for plot in (self.pr_plot, self.cal_plot, self.lc_plot):
            plot.enableAutoRange()  # not the range an empty plot's note set
        pr = m.get("pr_curve") or {}
        if pr.get("recall"):
            self.pr_plot.plot(pr["recall"], pr["precision"], pen=pg.mkPen("#2b6cb0", width=2))
        cal = m.get("calibration") or {}
        if cal.get("predicted"):
            self.cal_plot.plot(
                cal["predicted"],
                cal["observed"],
                pen=pg.mkPen("#2b6cb0", width=2),
                symbol="o",
                symbolSize=6,
            )
            lo, hi = min(cal["predicted"]), max(cal["predicted"])
            self.cal_plot.plot([lo, hi], [lo, hi], pen=pg.mkPen("#aaa", style=Qt.PenStyle.DashLine))
        for plot in (self.pr_plot, self.lc_plot):
            plot.setYRange(0, 1.02)
        self.pr_plot.setXRange(0, 1.02)
        if learning:
            xs = [p["labels"] for p in learning]
            self.lc_plot.plot(
                xs,
                [p["f1_keep"] for p in learning],
                pen=pg.mkPen("#1f7a3a", width=2),
                symbol="o",
                symbolSize=6,
            )
        conf = m.get("keep_confusion")
        if conf:
            (tn, fp), (fn, tp) = conf
            self.confusion.setText(
                f"Keep decision, out of fold: {tp} kept rightly, {fp} kept wrongly, "
                f"{fn} dropped wrongly, {tn} dropped rightly"
            )

    # -- the score histogram and the threshold --------------------------------------------------

    def _show_scores(
        self, version: str | None, meta: dict[str, Any], empty: str = "No scores yet"
    ) -> None:
        self.hist_plot.clear()
        self.curve = KeepCurve.load(self.store, version) if version else None
        if self.curve is None or not len(self.curve.scores):
            self._note(self.hist_plot, empty)  # not a threshold over nothing
            self.keep_label.setText("Score the corpus to see how much each threshold keeps.")
            self.slider.setEnabled(False)
            return
        self.hist_plot.addItem(self.threshold_line)
        counts, edges = self.curve.histogram(40)
        width = (edges[1] - edges[0]) * 0.9
        bars = self.pg.BarGraphItem(
            x=(edges[:-1] + edges[1:]) / 2, height=counts, width=width, brush="#8fd19e", pen=None
        )
        self.hist_plot.addItem(bars)
        self._lo, self._hi = float(edges[0]), float(edges[-1])
        # the scores' own range: the empty plot's fixed 0-1 view (set before the first scoring)
        # would otherwise stay, and show a slice of the bars under a 0-1 axis
        self.hist_plot.setRange(
            xRange=(self._lo, self._hi), yRange=(0, max(float(counts.max()), 1.0)), padding=0.04
        )
        self.slider.setEnabled(True)
        start = meta.get("cut", meta["threshold"])
        self.set_threshold(float(np.clip(start, self._lo, self._hi)))

    def set_threshold(self, value: float) -> bool:
        """Move the threshold to ``value``. False, and nothing moves, when it is not a finite
        number: no slider position or share of pages kept answers to it."""
        if not math.isfinite(value):
            return False
        self.threshold_line.setValue(value)
        return True

    def _on_line_moved(self) -> None:
        if self.curve is None or not self.slider.isEnabled():
            return
        value = float(self.threshold_line.value())
        # a line dragged (or set) past the scores stops the slider at its end
        step = (value - self._lo) / (self._hi - self._lo or 1) * SLIDER_STEPS
        self.slider.blockSignals(True)
        self.slider.setValue(round(min(max(step, 0.0), SLIDER_STEPS)))
        self.slider.blockSignals(False)
        pages, words = self.curve.kept(value)
        total = len(self.curve.scores)
        share = pages / total if total else 0.0
        shown = f"{value:.2f}" if abs(value) < 1e6 else f"{value:.3g}"  # not 300 digits
        self.keep_label.setText(
            f"At classifier score ≥ {shown}: keeping <b>{share:.0%} of pages</b> "
            f"({pages:,} of {total:,}), <b>{plural(words, 'word')}</b> of main text"
        )

    def _on_slider(self, step: int) -> None:
        self.set_threshold(self._lo + (self._hi - self._lo) * step / SLIDER_STEPS)

    # -- long work ---------------------------------------------------------------------------------

    def train(self) -> None:
        project, threshold = self.project, float(self.threshold.value())
        # unchecked: the transformer sets still join when every labelled page is cached
        embed = True if self.embed_check.isChecked() else None
        embedding = self.embedding_path

        def work(task: Any) -> str:
            with project.store() as store:
                report = train_classifier(
                    project,
                    store,
                    threshold=threshold,
                    embed=embed,
                    embedding=embedding,
                    task=task,
                )
                return str(report.version["id"])

        self._start(work, self._on_trained)

    def score(self) -> None:
        """Score the corpus with the chosen version, where the engine selector says."""
        version = self.versions.currentData()
        if version in self.damaged:
            self._warn("Classifier", f"Cannot score with {version}: {self.damaged[version]}.")
            return
        engine = self.engine.currentData()
        if engine != "thread":
            self.score_in_child(engine)
            return
        project, version = self.project, self.versions.currentData()

        def work(task: Any) -> str:
            with project.store() as store:
                return score_documents(project, store, version, task=task).version

        self._start(work, self._on_scored)

    def score_in_child(self, engine: str) -> None:
        version = self.versions.currentData()
        address = self.address.text().strip() if engine == "ray" else ""
        problem = address_problem(address)
        if problem is not None:
            self.score_status.setText(f"Not scored: {html.escape(problem)}")
            self._warn("Classifier", f"Not scored: {problem}.")
            return
        args = ["score", str(self.project.root), "--engine", engine, "--progress-json"]
        if version:
            args += ["--model", version]
        if engine in ("processes", "ray"):
            args += ["--workers", str(self.workers.value())]
            args += ["--shard-rows", str(self.shard_rows.value())]
        if address:
            args += ["--address", address]
        self._job_version = version
        self._busy(True)
        self.progress.setValue(0)
        self.progress.setFormat("starting %p%")
        self.score_status.setText(f"Scoring with {version} on {WHERE[engine]}…")
        self.job.start(args)

    def cancel(self) -> None:
        if self.job.running():
            self.score_status.setText("Cancelling: the job stops after its current batch…")
            self.job.cancel()
        elif self.op is not None:
            self.op.cancel()

    def _on_job_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            self._on_progress(
                int(event.get("done", 0)), int(event.get("total", 0)), str(event.get("message"))
            )
        elif event.get("event") == "end" and event.get("version"):
            self._job_version = str(event["version"])
            keep = (event.get("keep") or {}).get("text", "")
            self.score_status.setText(
                f"Scored {event.get('scored', 0):,} pages with {event['version']} in "
                f"{WHERE.get(str(event.get('engine')), 'a child process')} "
                f"({event.get('skipped', 0):,} scored before); "
                f"{html.escape(keep)}"
            )

    def _on_job_ended(self, state: str, tail: str) -> None:
        version = self._job_version
        self._busy(False)
        if state == "done":
            self._on_scored(version or "")
            return
        self.reload_versions(select=version)
        if state == "cancelled":
            self.score_status.setText(
                "Cancelled: the scores written so far stay; Score the corpus again to go on."
            )
            if version:
                self.corpus_changed.emit(version)
            return
        message = self.job.error or (
            "the job stopped abruptly (crashed or killed)"
            if state == "crashed"
            else "the job ended with an error"
        )
        self.score_status.setText(f"Scoring failed: {html.escape(message)}")
        self._warn(
            "Classifier",
            f"Scoring failed: {message}\nThe studio is fine; the job's log is below.",
            tail,
        )

    def _start(self, work: Any, done: Any) -> None:
        self._busy(True)
        self.progress.setValue(0)
        self.op = run_op(self, work)
        self.op.on_progress(self._on_progress).on_success(done).on_failure(self._on_failed)

    def _on_progress(self, done: int, total: int, message: str) -> None:
        self.progress.setValue(int(1000 * done / total) if total else 0)
        # "embedding pages with ... 40%": the slow step says what it is doing
        self.progress.setFormat(f"{message[:40]} %p%" if message else "%p%")

    def _on_trained(self, version: str) -> None:
        self.reload_versions(select=version)
        self.trained.emit(version)

    def _on_scored(self, version: str) -> None:
        self.reload_versions(select=version)
        self.corpus_changed.emit(version)

    def _on_failed(self, message: str, details: str) -> None:
        self._busy(False)
        if message.startswith("Cancelled"):
            message = "Cancelled: nothing was stored (the pages embedded so far stay cached)."
        self._warn("Classifier", message, details)
