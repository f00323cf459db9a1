"""The Training tab: edit a recipe with its token counts, train a student in a child process
with live curves, overlay runs, sample from a checkpoint, compare recipes.

Training runs as ``studio train ... --json`` (``studio compare`` for a comparison) through
QProcess, started with :func:`studio.paths.self_command` so it works the same in the bundle. The
job's stdout is JSON lines; cancel sends SIGTERM to its process group and the job saves a
checkpoint before it exits. torch is never imported here except by the sample tab, on demand.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.project import Project
from studio.store import Store
from studio.training import checkpoint as ckpt
from studio.training.compare import list_comparisons, read_comparison, run_summary
from studio.training.recipe import (
    BUILTIN,
    CURRICULA,
    KINDS,
    Recipe,
    RecipeError,
    Source,
    check_recipe_name,
    load_recipe,
    recipe_from_dict,
    recipe_paths,
    save_recipe,
)
from studio.training.run import (
    Run,
    RunError,
    check_run_name,
    list_runs,
    runs_dir,
    well_formed,
)
from studio.ui.qt_notice import warning_box
from studio.ui.qt_ops import Op, run_op
from studio.ui.qt_plots import make_plot
from studio.ui.qt_process import JobProcess

SIZES = ["tiny", "10m", "30m", "124m"]
COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280", "#2c7a7b", "#975a16"]
SHOWN_PROMPT = 600  # characters of a prompt longer than the student reads: its end
SOURCE_COLUMNS = ["Name", "Kind", "Filter", "Share", "Token budget"]
COUNT_COLUMNS = ["Documents", "≈ Tokens", "Held out", "Of the mix", "Repeats"]
EVAL_COLUMNS = ["Name", "Kind", "Filter", "Held-out pages", "≈ Tokens"]
FILTER_KEYS = ("model", "threshold", "status", "cell", "exclude_cell", "path", "code")


# -- the child process ---------------------------------------------------------------------------


class TrainProcess(JobProcess):
    """One ``studio train`` or ``studio compare`` job; its JSON lines become :attr:`event`, and
    the log reads them in words. SIGTERM makes the job save a checkpoint and exit."""

    quiet_events = frozenset({"step"})

    def describe(self, event: dict[str, Any], line: str) -> str:
        return _describe(event)


# jobs outlive their view: a run keeps training when the curator opens another project, and
# every job still running when the studio quits is asked to save a checkpoint and stop
_JOBS: list[TrainProcess] = []


def _new_job() -> TrainProcess:
    app = QApplication.instance()
    if not _JOBS and app is not None:
        app.aboutToQuit.connect(_stop_all_jobs)
    job = TrainProcess()
    _JOBS.append(job)
    return job


def _stop_all_jobs() -> None:
    for job in _JOBS:
        job.stop_and_wait()


def _describe(event: dict[str, Any]) -> str:
    """A job's line in words; a line of a shape the studio does not know, as it was printed."""
    try:
        return _words(event)
    except (TypeError, ValueError, KeyError, AttributeError):
        return json.dumps(event, default=str)


def _words(event: dict[str, Any]) -> str:
    kind = event.get("event")
    run = f"[{event['run']}] " if event.get("run") else ""
    if kind == "eval":
        losses = ", ".join(f"{k} {v['loss']:.3f}" for k, v in (event.get("eval") or {}).items())
        return f"{run}step {event.get('step')}: eval {losses or '(no evaluation set)'}"
    if kind == "checkpoint":
        return f"{run}checkpoint at step {event.get('step')}"
    if kind == "start":
        return (
            f"{run}training {event.get('params', 0):,} parameters on {event.get('device')} "
            f"for {event.get('steps')} steps"
            + (f", resumed at step {event['resumed_from']}" if event.get("resumed_from") else "")
        )
    if kind == "prepared":
        return f"{run}data ready" + "".join(f"\n  note: {w}" for w in event.get("warnings", []))
    if kind == "end":
        return f"{run}{event.get('state')} at step {event.get('step')}" + (
            f": {event['error']}" if event.get("error") else ""
        )
    if kind == "compare":
        return f"comparison {event.get('name')}: {event.get('state')}"
    return f"{run}{event.get('message') or json.dumps(event)}"


# -- curves --------------------------------------------------------------------------------------


@dataclass
class Series:
    """What one run has printed so far, for the plots."""

    steps: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    rate: list[float] = field(default_factory=list)
    evals: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        """Add a step or evaluation to the curves; any other line, or one that is not
        well-formed (a damaged metrics file), leaves them as they are."""
        kind = event.get("event")
        if not well_formed(event):
            return
        if kind == "step":
            if self.steps and event["step"] <= self.steps[-1]:  # a resume printing steps again
                keep = sum(s < event["step"] for s in self.steps)
                del self.steps[keep:], self.loss[keep:], self.rate[keep:]
            self.steps.append(event["step"])
            self.loss.append(event["loss"])
            self.rate.append(event.get("tokens_per_s") or 0.0)
            self.last = event
        elif kind == "eval":
            for name, value in (event.get("eval") or {}).items():
                xs, ys = self.evals.setdefault(name, ([], []))
                if xs and event["step"] <= xs[-1]:
                    keep = sum(s < event["step"] for s in xs)
                    del xs[keep:], ys[keep:]
                xs.append(event["step"])
                ys.append(value["loss"])

    @classmethod
    def of_run(cls, run: Run) -> Series:
        series = cls()
        for event in run.metrics():
            series.add(event)
        return series


def _plot(title: str, x: str, y: str) -> Any:
    plot = make_plot(title, x, y)
    plot.setMinimumHeight(170)
    return plot


def _step_text(run: str, event: dict[str, Any]) -> str:
    """The status line of a running job's step (a well-formed step: its numbers are numbers)."""
    steps, rate, mfu = event.get("steps"), event.get("tokens_per_s"), event.get("mfu")
    return (
        f"<b>{html.escape(run)}</b>: step {event['step']:,}"
        + (f" of {steps:,}" if steps is not None else "")
        + f", loss {event['loss']:.3f}"
        + (f", {rate:,.0f} tokens/s" if rate is not None else "")
        + f", ETA {_eta(event.get('eta_s'))}"
        + (f", MFU {mfu:.0%}" if mfu is not None else "")
    )


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _status_text(name: str, status: dict[str, Any]) -> str:
    """A stored run's state in a line; a damaged run's says which file and what is wrong."""
    state = html.escape(str(status.get("state", "?")))
    if state.startswith("damaged"):
        return f"<b>{html.escape(name)}</b>: {state}"
    return (
        f"<b>{html.escape(name)}</b>: {state} at step "
        f"{html.escape(str(status.get('step', 0)))} of {html.escape(str(status.get('steps', '?')))}"
        + (f" — {html.escape(str(status['error']))}" if status.get("error") else "")
    )


def _item(text: str, editable: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if not editable:
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item


def _table(columns: list[str], name: str) -> QTableWidget:
    table = QTableWidget(0, len(columns), objectName=name)
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    return table


# -- the view ------------------------------------------------------------------------------------


class TrainingView(QWidget):
    """Recipes, runs, samples and comparisons of one project."""

    job_ended = Signal(str)  # done | cancelled | failed | crashed (tests wait on it)
    counted = Signal()  # the recipe's token counts were shown
    sampled = Signal(str)

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph as pg

        pg.setConfigOptions(antialias=True, background="w", foreground="#333")
        self.pg = pg
        self.project, self.store = project, store
        self.job = _new_job()
        self.job.event.connect(self._on_event)
        self.job.log.connect(self._on_log)
        self.job.ended.connect(self._on_ended)
        self.job_run: str | None = None  # the run the job is training now
        self.job_kind: str | None = None  # train | compare
        self.live: dict[str, Series] = {}
        self.count_op: Op | None = None
        self.failed_box: QMessageBox | None = None
        # a recipe whose file could not be read: neither saved over nor trained
        self.unreadable: tuple[str, str] | None = None  # (name, why)
        self.tabs = QTabWidget(objectName="trainingTabs")
        self.tabs.addTab(self._build_recipe_tab(), "Recipe")
        self.tabs.addTab(self._build_runs_tab(), "Runs")
        self.tabs.addTab(self._build_sample_tab(), "Sample")
        self.tabs.addTab(self._build_compare_tab(), "Compare")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self._count_timer = QTimer(self, singleShot=True, interval=300)
        self._count_timer.timeout.connect(self.count)
        self._redraw_timer = QTimer(self, singleShot=True, interval=250)
        self._redraw_timer.timeout.connect(self.redraw)
        self._stored: dict[str, tuple[tuple[float, int], Series]] = {}
        self.reload_recipes(select="curated")
        self.reload_runs()
        self.reload_comparisons()

    # -- recipe tab -------------------------------------------------------------------------------

    def _build_recipe_tab(self) -> QWidget:
        self.recipe_list = QListWidget(objectName="recipeList")
        self.recipe_list.currentItemChanged.connect(lambda *_: self.show_recipe())
        new_button = QPushButton("New from this…", objectName="newRecipe")
        new_button.clicked.connect(self.new_recipe)
        self.save_button = QPushButton("Save", objectName="saveRecipe")
        self.save_button.clicked.connect(self.save_recipe)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Recipes</b>"))
        left.addWidget(self.recipe_list, 1)
        row = QHBoxLayout()
        row.addWidget(new_button)
        row.addWidget(self.save_button)
        left.addLayout(row)

        self.description = QLineEdit(objectName="recipeDescription")
        self.heldout = QDoubleSpinBox(minimum=1, maximum=50, decimals=1, suffix=" %", value=10)
        self.curriculum = QComboBox(objectName="curriculum")
        self.curriculum.addItem("none: shuffled", None)
        for signal_name in CURRICULA:
            label = "reading grade, easier first" if signal_name == "grade" else "shorter first"
            self.curriculum.addItem(f"{signal_name}: {label}", signal_name)
        form = QFormLayout()
        form.addRow("Description", self.description)
        form.addRow("Held out", self.heldout)
        form.addRow("Curriculum", self.curriculum)

        self.sources = _table(SOURCE_COLUMNS + COUNT_COLUMNS, "recipeSources")
        self.evals = _table(EVAL_COLUMNS, "recipeEvals")
        for table in (self.sources, self.evals):
            table.itemChanged.connect(lambda *_: self._recipe_edited())
        add_source = QPushButton("Add source")
        add_source.clicked.connect(lambda: self._add_row(self.sources, Source("new", "web", 0.1)))
        drop_source = QPushButton("Remove source")
        drop_source.clicked.connect(lambda: self._drop_row(self.sources))
        add_eval = QPushButton("Add eval set")
        add_eval.clicked.connect(lambda: self._add_row(self.evals, Source("new set", "web")))
        drop_eval = QPushButton("Remove eval set")
        drop_eval.clicked.connect(lambda: self._drop_row(self.evals))
        self.count_note = QLabel(objectName="countNote", wordWrap=True)
        self.description.textEdited.connect(lambda *_: self._recipe_edited())
        self.heldout.valueChanged.connect(lambda *_: self._recipe_edited())
        self.curriculum.currentIndexChanged.connect(lambda *_: self._recipe_edited())

        self.run_name = QLineEdit(objectName="runName", placeholderText="run name")
        self.size_choice = QComboBox(objectName="runSize")
        self.size_choice.addItems(SIZES)
        self.steps = QSpinBox(minimum=1, maximum=10_000_000, value=200, objectName="runSteps")
        self.steps.valueChanged.connect(lambda *_: self._count_timer.start())
        self.size_choice.currentIndexChanged.connect(lambda *_: self._count_timer.start())
        self.device = QComboBox(objectName="runDevice")
        self.device.addItems(["auto", "cuda", "cpu"])
        self.train_button = QPushButton("Train", objectName="trainButton")
        self.train_button.clicked.connect(self.train)
        train_row = QHBoxLayout()
        for w in (
            QLabel("Run"),
            self.run_name,
            QLabel("Size"),
            self.size_choice,
            QLabel("Steps"),
            self.steps,
            QLabel("Device"),
            self.device,
            self.train_button,
        ):
            train_row.addWidget(w)

        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(QLabel("<b>Sources</b> (a share of the training tokens, or a budget)"))
        right.addWidget(self.sources, 3)
        buttons = QHBoxLayout()
        for b in (add_source, drop_source):
            buttons.addWidget(b)
        buttons.addStretch(1)
        right.addLayout(buttons)
        right.addWidget(QLabel("<b>Evaluation sets</b> (held-out pages only)"))
        right.addWidget(self.evals, 2)
        buttons = QHBoxLayout()
        for b in (add_eval, drop_eval):
            buttons.addWidget(b)
        buttons.addStretch(1)
        right.addLayout(buttons)
        right.addWidget(self.count_note)
        right.addLayout(train_row)
        tab = QWidget()
        layout = QHBoxLayout(tab)
        layout.addLayout(left, 1)
        layout.addLayout(right, 4)
        return tab

    def reload_recipes(self, select: str | None = None) -> None:
        current = select or (self.recipe_list.currentItem() or QListWidgetItem()).data(
            Qt.ItemDataRole.UserRole
        )
        self.recipe_list.blockSignals(True)
        self.recipe_list.clear()
        self._recipe_origin = {}
        for name, (origin, _path) in recipe_paths(self.project.root).items():
            item = QListWidgetItem(f"{name}  ({origin})")
            item.setData(Qt.ItemDataRole.UserRole, name)
            self.recipe_list.addItem(item)
            self._recipe_origin[name] = origin
            if name == current:
                self.recipe_list.setCurrentItem(item)
        if self.recipe_list.currentItem() is None:
            self.recipe_list.setCurrentRow(0)
        self.recipe_list.blockSignals(False)
        self.show_recipe()

    def current_recipe_name(self) -> str:
        item = self.recipe_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else BUILTIN

    def show_recipe(self) -> None:
        name = self.current_recipe_name()
        try:
            recipe = load_recipe(self.project.root, name)
        except RecipeError as exc:
            self._show_unreadable(name, str(exc))
            return
        self.unreadable = None
        self._filling = True
        self.description.setText(recipe.description)
        self.heldout.setValue(recipe.heldout * 100)
        self.curriculum.setCurrentIndex(max(0, self.curriculum.findData(recipe.curriculum)))
        for table, items in ((self.sources, recipe.sources), (self.evals, recipe.evals)):
            table.blockSignals(True)
            table.setRowCount(0)
            for source in items:
                self._add_row(table, source)
            table.blockSignals(False)
        self._filling = False
        self.save_button.setEnabled(self._recipe_origin.get(name) == "project")
        self.run_name.setText(self._next_run_name(name))
        self.count()

    def _show_unreadable(self, name: str, why: str) -> None:
        """An empty editor, Save and Train off: the previous recipe's rows left in the editor
        were saved over this file by Save, and by Train (which saves first)."""
        self.unreadable = (name, why)
        self._count_timer.stop()
        self._filling = True
        self.description.setText("")
        for table in (self.sources, self.evals):
            table.setRowCount(0)
        self._filling = False
        self.save_button.setEnabled(False)
        self.train_button.setEnabled(False)
        self.count_note.setText(
            f"<span style='color:#b42318'>{html.escape(why)}. Fix the file and pick the recipe "
            "again, or pick another: the studio does not write over a recipe it cannot read."
            "</span>"
        )

    def _refuse_unreadable(self) -> bool:
        """True, with a warning, when the selected recipe is one whose file could not be read."""
        if self.unreadable is None or self.unreadable[0] != self.current_recipe_name():
            return False
        self._warn("Recipe", f"{self.unreadable[1]}: fix the file first; nothing was written.")
        return True

    def _add_row(self, table: QTableWidget, source: Source) -> None:
        table.blockSignals(True)
        row = table.rowCount()
        table.insertRow(row)
        table.setItem(row, 0, _item(source.name, editable=True))
        kind = QComboBox()
        kind.addItems(list(KINDS))
        kind.setCurrentText(source.kind)
        kind.currentIndexChanged.connect(lambda *_: self._recipe_edited())
        table.setCellWidget(row, 1, kind)
        filters = ", ".join(
            f"{k}={getattr(source, k)}" for k in FILTER_KEYS if getattr(source, k) is not None
        )
        table.setItem(row, 2, _item(filters, editable=True))
        if table is self.sources:
            share = "" if source.share is None else f"{source.share:g}"
            budget = "" if source.tokens is None else str(source.tokens)
            table.setItem(row, 3, _item(share, editable=True))
            table.setItem(row, 4, _item(budget, editable=True))
            for col in range(5, 5 + len(COUNT_COLUMNS)):
                table.setItem(row, col, _item("…"))
        else:
            table.setItem(row, 3, _item("…"))
            table.setItem(row, 4, _item("…"))
        table.blockSignals(False)
        if not getattr(self, "_filling", False):
            self._recipe_edited()

    def _drop_row(self, table: QTableWidget) -> None:
        row = table.currentRow()
        if row >= 0:
            table.removeRow(row)
            self._recipe_edited()

    def _recipe_edited(self) -> None:
        if not getattr(self, "_filling", False):
            self._count_timer.start()

    def edited_recipe(self) -> Recipe:
        """The recipe as the editor shows it; a :class:`RecipeError` says what is wrong."""
        data: dict[str, Any] = {
            "description": self.description.text(),
            "heldout": round(self.heldout.value() / 100, 4),
            "split_seed": 0,
            "sources": [
                self._row_dict(self.sources, r, True) for r in range(self.sources.rowCount())
            ],
            "eval": [self._row_dict(self.evals, r, False) for r in range(self.evals.rowCount())],
        }
        if self.curriculum.currentData():
            data["curriculum"] = self.curriculum.currentData()
        try:
            base = load_recipe(self.project.root, self.current_recipe_name())
            data["split_seed"] = base.split_seed
        except RecipeError:
            pass
        return recipe_from_dict(data, self.current_recipe_name())

    def _row_dict(self, table: QTableWidget, row: int, with_amount: bool) -> dict[str, Any]:
        cell = table.item(row, 0)
        out: dict[str, Any] = {"name": cell.text() if cell else ""}
        out["kind"] = table.cellWidget(row, 1).currentText()
        filters = table.item(row, 2).text() if table.item(row, 2) else ""
        for part in filter(None, (p.strip() for p in filters.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in FILTER_KEYS:
                raise RecipeError(f"filter {part!r}: write key=value with a key of {FILTER_KEYS}")
            out[key.strip()] = _parse_value(key.strip(), value.strip())
        if with_amount:
            for col, key in ((3, "share"), (4, "tokens")):
                text = table.item(row, col).text().strip() if table.item(row, col) else ""
                if text:
                    out[key] = _amount(key, text, out["name"])
        return out

    def run_tokens(self) -> int:
        from studio.training.loop import TrainConfig

        config = TrainConfig.for_size(self.size_choice.currentText())
        return self.steps.value() * config.tokens_per_step

    def count(self) -> None:
        """Count the edited recipe's documents and tokens in the background."""
        try:
            recipe = self.edited_recipe()
        except RecipeError as exc:
            self.count_note.setText(f"<span style='color:#b42318'>{html.escape(str(exc))}</span>")
            self.train_button.setEnabled(False)
            return
        root, tokens = self.project.root, self.run_tokens()
        tokenizer = self._latest_tokenizer()

        def work(_task: Any) -> dict[str, Any]:
            from studio.training.counts import recipe_counts

            project = Project(root)
            with project.store(readonly=True) as store:
                return recipe_counts(root, store, recipe, run_tokens=tokens, tokenizer=tokenizer)

        self.count_op = run_op(self, work, writes=False)
        self.count_op.on_success(self._show_counts).on_failure(self._count_failed)

    def _latest_tokenizer(self) -> Path | None:
        for run in reversed(list_runs(self.project)):
            if run.path("tokenizer.json").is_file():
                return run.path("tokenizer.json")
        return None

    def _show_counts(self, result: dict[str, Any]) -> None:
        rows = result["counts"]
        sources = [r for r in rows if r["role"] == "source"]
        evals = [r for r in rows if r["role"] == "eval"]
        if len(sources) != self.sources.rowCount() or len(evals) != self.evals.rowCount():
            return  # the table changed since: a newer count is on its way
        self.sources.blockSignals(True)
        for i, r in enumerate(sources):
            share = r.get("mix_share")
            values = [
                f"{r['documents']:,}",
                f"{r['tokens']:,}",
                f"{r['heldout_documents']:,}",
                "-" if share is None else f"{share:.0%}",
                "-" if r.get("repeats") is None else f"{r['repeats']:.2f}×",
            ]
            for j, text in enumerate(values):
                item = _item(text)
                if r["note"]:
                    item.setToolTip(r["note"])
                self.sources.setItem(i, 5 + j, item)
        self.sources.blockSignals(False)
        self.evals.blockSignals(True)
        for i, r in enumerate(evals):
            self.evals.setItem(i, 3, _item(f"{r['heldout_documents']:,}"))
            self.evals.setItem(i, 4, _item(f"{r['heldout_tokens']:,}"))
        self.evals.blockSignals(False)
        how = (
            f"tokens estimated at {result['chars_per_token']:g} characters each"
            if result["estimated"]
            else f"tokens counted with the latest run's tokenizer ({result['chars_per_token']:g} "
            "characters each)"
        )
        notes = "".join(f"<br>• {html.escape(w)}" for w in result["warnings"])
        self.count_note.setText(
            f"A run of {self.run_tokens():,} tokens ({self.steps.value():,} steps); {how}.{notes}"
        )
        self.train_button.setEnabled(not self.job.running() and self.unreadable is None)
        self.counted.emit()

    def _count_failed(self, message: str, _details: str) -> None:
        self.count_note.setText(f"<span style='color:#b42318'>{html.escape(message)}</span>")
        self.train_button.setEnabled(False)
        self.counted.emit()

    def new_recipe(self) -> None:
        name, ok = QInputDialog.getText(self, "New recipe", "Name of the new recipe:")
        if ok and name.strip():
            self.create_recipe(name.strip())

    def create_recipe(self, name: str) -> bool:
        """Save the edited recipe as a new project recipe ``name``; a name that cannot be a
        recipe (or is taken) is refused with the reason, and nothing is written."""
        try:
            check_recipe_name(name)
            recipe = self.edited_recipe()
            recipe.name = name
            if name in recipe_paths(self.project.root):
                raise RecipeError(f"a recipe {name} exists already")
            save_recipe(self.project.root, recipe)
        except RecipeError as exc:
            self._warn("Recipe", str(exc))
            return False
        self.reload_recipes(select=name)
        return True

    def save_recipe(self) -> bool:
        if self._refuse_unreadable():
            return False
        try:
            save_recipe(self.project.root, self.edited_recipe())
        except RecipeError as exc:
            self._warn("Recipe", str(exc))
            return False
        self.reload_recipes(select=self.current_recipe_name())
        return True

    def _warn(self, title: str, message: str) -> None:
        self.failed_box = warning_box(self, title, message)

    def _next_run_name(self, recipe: str) -> str:
        """``RECIPE-N``, the first free one; a recipe name may hold spaces and letters a run
        name may not, so they become '-'."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", recipe).strip("-.")[:70] or "run"
        existing = {p.name for p in runs_dir(self.project).glob("*")}
        n = 1
        while f"{stem}-{n}" in existing:
            n += 1
        return f"{stem}-{n}"

    # -- starting and watching jobs ---------------------------------------------------------------

    def train(self) -> None:
        """Train the selected recipe (saved first when it is the project's own)."""
        name = self.current_recipe_name()
        if self._refuse_unreadable():
            return
        if self._recipe_origin.get(name) == "project" and not self.save_recipe():
            return  # the editor's recipe cannot be saved: the warning says why
        run = self.run_name.text().strip() or self._next_run_name(name)
        if not self._name_ok(run, "Training"):
            return  # the job would train under another name, or fail: the warning says why
        args = [
            "train",
            str(self.project.root),
            "--recipe",
            name,
            "--run",
            run,
            "--size",
            self.size_choice.currentText(),
            "--steps",
            str(self.steps.value()),
            "--device",
            self.device.currentText(),
            "--json",
        ]
        self.start_job(args, run, "train")

    def _name_ok(self, name: str, title: str, what: str = "run") -> bool:
        """Whether ``name`` can be a run (or comparison) folder; a warning says why not. The
        child's arguments would cut a NUL short, so this is checked before it starts."""
        try:
            check_run_name(name, what)
        except RunError as exc:
            self._warn(title, str(exc))
            return False
        return True

    def start_job(self, args: list[str], run: str | None, kind: str) -> bool:
        if self.job.running():
            QMessageBox.information(self, "Training", "A job is running: wait for it or cancel it.")
            return False
        self.job_run, self.job_kind = run, kind
        if run is not None:
            self.live[run] = (
                Series()
                if "--resume" not in args
                else Series.of_run(Run(runs_dir(self.project) / run))
            )
        self.log_view.clear()
        self.job.start(args)
        self._set_busy(True)
        if kind == "train":
            self.tabs.setCurrentIndex(1)
        QTimer.singleShot(1500, self.reload_runs)
        return True

    def _set_busy(self, busy: bool) -> None:
        self.train_button.setEnabled(not busy and self.unreadable is None)
        self.compare_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self._update_resume()

    def cancel(self) -> None:
        self.job.cancel()
        self.job_status.setText("Cancelling: the job saves a checkpoint, then stops…")

    def _on_event(self, event: dict[str, Any]) -> None:
        if not well_formed(event):
            return  # not a line of ours (the log shows it as it was printed)
        run = event.get("run") or self.job_run
        if event.get("event") in ("start", "prepare") and event.get("run"):
            self.job_run = event["run"]
            self.live.setdefault(self.job_run, Series())
        if run is None:
            return
        series = self.live.setdefault(run, Series())
        series.add(event)
        kind = event.get("event")
        if kind == "step":
            self.job_status.setText(_step_text(run, event))
        shown = kind in ("step", "eval") and run in self._shown_runs()
        if shown and not self._redraw_timer.isActive():  # at most a few redraws a second
            self._redraw_timer.start()
        if kind in ("start", "end", "checkpoint"):
            self.reload_runs()
        if kind == "compare":
            self.reload_comparisons(select=event.get("name"))

    def _on_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    def _on_ended(self, state: str, tail: str) -> None:
        self._set_busy(False)
        run = self.job_run or ""
        self.job_status.setText(f"<b>{html.escape(run)}</b>: {state}")
        self.reload_runs()
        self.reload_comparisons()
        self._refresh_sample_runs()
        if state in ("failed", "crashed"):
            what = "failed" if state == "failed" else "stopped abruptly (crashed or killed)"
            why = f": {self.job.error}" if self.job.error else ""
            box = QMessageBox(parent=self)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("Training")
            box.setTextFormat(Qt.TextFormat.PlainText)  # a run's name and error, shown as typed
            box.setText(
                f"The training job of run '{run}' {what}{why}. The studio is fine; its log is "
                f"below.{self._how_to_continue(run)}"
            )
            box.setDetailedText(tail)
            box.show()
            self.failed_box = box
        self.job_ended.emit(state)

    def _how_to_continue(self, run: str) -> str:
        """The failure box's last sentence: Resume only when there is a checkpoint to resume
        from (the run folder may be gone, or the job failed before its first one)."""
        if self.job_kind == "compare":
            return " Comparing again under the same name continues where it stopped."
        if run and ckpt.latest_checkpoint(runs_dir(self.project) / run) is not None:
            return " Resume continues from its last checkpoint."
        return ""

    # -- runs tab ---------------------------------------------------------------------------------

    def _build_runs_tab(self) -> QWidget:
        self.runs_table = _table(
            ["Overlay", "Run", "Recipe", "State", "Step", "Loss", "Eval"], "runs"
        )
        self.runs_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents
        )
        self.runs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runs_table.itemSelectionChanged.connect(self._on_run_selected)
        self.runs_table.itemChanged.connect(lambda *_: self.redraw())
        self.cancel_button = QPushButton("Cancel", objectName="cancelTraining")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume", objectName="resumeTraining")
        self.resume_button.clicked.connect(self.resume)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload_runs)
        self.job_status = QLabel("No job running.", objectName="jobStatus", wordWrap=True)
        self.loss_plot = _plot(
            "Loss (solid: training, dashed: evaluation sets)", "step", "loss (nats/token)"
        )
        self.rate_plot = _plot("Throughput", "step", "tokens/s")
        self.rate_plot.setLimits(yMin=0)  # no negative rates on the axis around a lone point
        self.log_view = QPlainTextEdit(objectName="trainLog", readOnly=True)
        self.log_view.setMaximumBlockCount(2000)
        buttons = QHBoxLayout()
        for b in (self.cancel_button, self.resume_button, refresh):
            buttons.addWidget(b)
        buttons.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.runs_table, 1)
        left.addLayout(buttons)
        left.addWidget(self.job_status)
        left.addWidget(QLabel("Log"))
        left.addWidget(self.log_view, 1)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.rate_plot)
        plots.setSizes([500, 250])
        holder = QWidget()
        holder.setLayout(left)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(holder)
        split.addWidget(plots)
        split.setSizes([560, 760])
        tab = QWidget()
        QVBoxLayout(tab).addWidget(split)
        self.cancel_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        return tab

    def reload_runs(self) -> None:
        checked = self._checked_runs()
        selected = self.selected_run()
        self.runs_table.blockSignals(True)
        self.runs_table.setRowCount(0)
        for run in list_runs(self.project):
            summary = run_summary(run)
            row = self.runs_table.rowCount()
            self.runs_table.insertRow(row)
            box = QTableWidgetItem()
            box.setFlags(
                Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
            )
            box.setCheckState(
                Qt.CheckState.Checked if run.name in checked else Qt.CheckState.Unchecked
            )
            self.runs_table.setItem(row, 0, box)
            state = summary["state"] or "not started (no status.json)"
            if run.name == self.job_run and self.job.running():
                state = "running"
            steps = run.read("run.json", {}).get("steps")
            evals = ", ".join(f"{k} {v['loss']:.3f}" for k, v in summary["eval"].items())
            loss = summary["train_loss"]
            self._fill_row(
                row,
                [
                    run.name,
                    "—" if summary["recipe"] is None else str(summary["recipe"]),
                    state,
                    f"{summary['step'] or 0}" + ("" if steps is None else f"/{steps}"),
                    "-" if loss is None else f"{loss:.3f}",
                    evals,
                ],
            )
        self.runs_table.blockSignals(False)
        if selected is not None:
            self.select_run(selected)
        elif self.job_run is not None:
            self.select_run(self.job_run)
        self._update_resume()
        self.redraw()

    def _fill_row(self, row: int, texts: list[str]) -> None:
        """Columns Run to Eval of a row; each cell's tooltip holds its whole text (a damaged
        run's state names the file and what is wrong with it)."""
        for col, text in enumerate(texts, start=1):
            item = _item(text)
            item.setToolTip(text)
            self.runs_table.setItem(row, col, item)

    def selected_run(self) -> str | None:
        rows = (
            self.runs_table.selectionModel().selectedRows()
            if self.runs_table.selectionModel()
            else []
        )
        if not rows:
            return None
        item = self.runs_table.item(rows[0].row(), 1)
        return item.text() if item else None

    def select_run(self, name: str) -> None:
        for row in range(self.runs_table.rowCount()):
            if self.runs_table.item(row, 1).text() == name:
                self.runs_table.blockSignals(True)
                self.runs_table.selectRow(row)
                self.runs_table.blockSignals(False)
                return

    def set_overlay(self, name: str, on: bool) -> None:
        for row in range(self.runs_table.rowCount()):
            if self.runs_table.item(row, 1).text() == name:
                state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
                self.runs_table.item(row, 0).setCheckState(state)

    def _checked_runs(self) -> list[str]:
        out = []
        for row in range(self.runs_table.rowCount()):
            if self.runs_table.item(row, 0).checkState() == Qt.CheckState.Checked:
                out.append(self.runs_table.item(row, 1).text())
        return out

    def _shown_runs(self) -> list[str]:
        shown = self._checked_runs()
        for extra in (self.selected_run(), self.job_run if self.job.running() else None):
            if extra and extra not in shown:
                shown.append(extra)
        return shown

    def _on_run_selected(self) -> None:
        name = self.selected_run()
        self._update_resume()
        if name is None:
            return
        if name != self.job_run or not self.job.running():
            run = Run(runs_dir(self.project) / name)
            self.job_status.setText(_status_text(name, run.status()))
            if not self.job.running():
                self.log_view.setPlainText(
                    "\n".join(_describe(e) for e in run.metrics() if e.get("event") != "step")
                )
        self.redraw()

    def _series(self, name: str) -> Series:
        """The live series of the run being trained; a stored run's, read again only when its
        metrics file changed."""
        if name in self.live and name == self.job_run and self.job.running():
            return self.live[name]
        run = Run(runs_dir(self.project) / name)
        try:
            stat = run.path("metrics.jsonl").stat()
            key = (stat.st_mtime, stat.st_size)
        except OSError:
            return Series()
        cached = self._stored.get(name)
        if cached is None or cached[0] != key:
            cached = (key, Series.of_run(run))
            self._stored[name] = cached
        return cached[1]

    def redraw(self) -> None:
        pg = self.pg
        self.loss_plot.clear()
        self.rate_plot.clear()
        for i, name in enumerate(self._shown_runs()):
            series = self._series(name)
            color = COLORS[i % len(COLORS)]
            if series.steps:
                # a run of one step is one point: a line alone draws nothing
                dot = {"symbol": "o", "symbolSize": 6, "symbolBrush": color}
                marks = dot if len(series.steps) < 2 else {}
                self.loss_plot.plot(
                    series.steps,
                    series.loss,
                    pen=pg.mkPen(color, width=1.5),
                    name=f"{name} train",
                    **marks,
                )
                self.rate_plot.plot(
                    series.steps, series.rate, pen=pg.mkPen(color, width=1.5), name=name, **marks
                )
            for j, (set_name, (xs, ys)) in enumerate(sorted(series.evals.items())):
                style = [Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine][j % 3]
                self.loss_plot.plot(
                    xs,
                    ys,
                    pen=pg.mkPen(color, width=2, style=style),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=color,
                    name=f"{name} {set_name}",
                )

    def _update_resume(self) -> None:
        name = self.selected_run()
        can = False
        if name and not self.job.running():
            state = Run(runs_dir(self.project) / name).status().get("state")
            can = state in ("cancelled", "crashed", "failed")
        self.resume_button.setEnabled(can)

    def resume(self) -> None:
        name = self.selected_run()
        if name:
            args = ["train", str(self.project.root), "--run", name, "--resume", "--json"]
            self.start_job(args, name, "train")

    # -- sample tab -------------------------------------------------------------------------------

    def _build_sample_tab(self) -> QWidget:
        self.sample_run = QComboBox(objectName="sampleRun")
        self.sample_run.currentIndexChanged.connect(lambda *_: self._refresh_checkpoints())
        self.sample_step = QComboBox(objectName="sampleStep")
        self.prompt = QLineEdit("The water cycle is", objectName="samplePrompt")
        self.sample_tokens = QSpinBox(minimum=1, maximum=2000, value=120)
        self.temperature = QDoubleSpinBox(minimum=0, maximum=3, singleStep=0.1, value=0.8)
        self.sample_button = QPushButton("Generate", objectName="generateSample")
        self.sample_button.clicked.connect(self.generate)
        self.sample_out = QTextBrowser(objectName="sampleText")
        form = QFormLayout()
        form.addRow("Run", self.sample_run)
        form.addRow("Checkpoint", self.sample_step)
        form.addRow("Prompt", self.prompt)
        form.addRow("Tokens", self.sample_tokens)
        form.addRow("Temperature", self.temperature)
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addLayout(form)
        layout.addWidget(self.sample_button)
        layout.addWidget(self.sample_out, 1)
        self._refresh_sample_runs()
        return tab

    def _refresh_sample_runs(self) -> None:
        current = self.sample_run.currentText()
        self.sample_run.blockSignals(True)
        self.sample_run.clear()
        for run in list_runs(self.project):
            if ckpt.latest_checkpoint(run.root) is not None:
                self.sample_run.addItem(run.name)
        if current:
            self.sample_run.setCurrentText(current)
        self.sample_run.blockSignals(False)
        self._refresh_checkpoints()

    def _refresh_checkpoints(self) -> None:
        self.sample_step.clear()
        name = self.sample_run.currentText()
        if name:
            for path in reversed(ckpt.list_checkpoints(runs_dir(self.project) / name)):
                self.sample_step.addItem(f"step {int(path.name[5:]):,}", int(path.name[5:]))
        self.sample_button.setEnabled(self.sample_step.count() > 0)

    def generate(self) -> None:
        name, step = self.sample_run.currentText(), self.sample_step.currentData()
        prompt, tokens, temp = (
            self.prompt.text(),
            self.sample_tokens.value(),
            self.temperature.value(),
        )
        root = self.project.root

        def work(_task: Any) -> tuple[str, str]:
            from studio.training.sample import generate, load_student, unread_prompt_tokens

            student = load_student(Run(root / "runs" / name), step)
            unread = unread_prompt_tokens(student, prompt)
            note = (
                f"The student reads the last {student.context:,} tokens: the first {unread:,} "
                "tokens of this prompt were not seen, and are not shown."
                if unread
                else ""
            )
            return generate(student, prompt, max_tokens=tokens, temperature=temp), note

        self.sample_button.setEnabled(False)
        self.sample_out.setPlainText("Loading the checkpoint and writing…")
        op = run_op(self, work, writes=False)
        op.on_success(lambda result: self._show_sample(prompt, *result))
        op.on_failure(self._sample_failed)

    def _show_sample(self, prompt: str, text: str, note: str = "") -> None:
        self.sample_button.setEnabled(True)
        body = html.escape(text).replace("\n", "<br>")
        said = f"<p><i>{html.escape(note)}</i></p>" if note else ""
        if note and len(prompt) > SHOWN_PROMPT:  # the part read, not pages of bold above it
            prompt = "…" + prompt[-SHOWN_PROMPT:]
        self.sample_out.setHtml(f"{said}<p><b>{html.escape(prompt)}</b>{body}</p>")
        self.sampled.emit(text)

    def _sample_failed(self, message: str, _details: str) -> None:
        self.sample_button.setEnabled(True)
        self.sample_out.setPlainText(f"Could not sample: {message}")
        self.sampled.emit("")

    # -- compare tab ------------------------------------------------------------------------------

    def _build_compare_tab(self) -> QWidget:
        self.compare_recipes = QListWidget(objectName="compareRecipes")
        self.compare_size = QComboBox()
        self.compare_size.addItems(SIZES)
        self.compare_steps = QSpinBox(
            minimum=1, maximum=10_000_000, value=300, objectName="compareSteps"
        )
        self.compare_seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.compare_name = QLineEdit(
            objectName="compareName", placeholderText="name (default: recipes joined)"
        )
        self.compare_button = QPushButton("Compare", objectName="compareButton")
        self.compare_button.clicked.connect(self.compare)
        self.comparisons = QComboBox(objectName="comparisons")
        self.comparisons.currentIndexChanged.connect(lambda *_: self.show_comparison())
        self.compare_table = _table(["Recipe", "Train loss"], "compareTable")
        self.compare_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.compare_plot = _plot(
            "Final evaluation loss per set (lower is better)",
            "evaluation set",
            "loss (nats/token)",
        )
        self.compare_curves = _plot("Evaluation loss during training", "step", "loss (nats/token)")
        form = QFormLayout()
        form.addRow("Recipes", self.compare_recipes)
        form.addRow("Size", self.compare_size)
        form.addRow("Steps", self.compare_steps)
        form.addRow("Seed", self.compare_seed)
        form.addRow("Name", self.compare_name)
        form.addRow(self.compare_button)
        form.addRow("Comparisons", self.comparisons)
        left = QWidget()
        left.setLayout(form)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.compare_table)
        right.addWidget(self.compare_plot)
        right.addWidget(self.compare_curves)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([380, 900])
        tab = QWidget()
        QVBoxLayout(tab).addWidget(split)
        for name in recipe_paths(self.project.root):
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if name in ("curated", "raw") else Qt.CheckState.Unchecked
            )
            self.compare_recipes.addItem(item)
        return tab

    def checked_recipes(self) -> list[str]:
        items = (self.compare_recipes.item(i) for i in range(self.compare_recipes.count()))
        return [i.text() for i in items if i.checkState() == Qt.CheckState.Checked]

    def compare(self) -> None:
        recipes = self.checked_recipes()
        if len(recipes) < 2:
            QMessageBox.information(self, "Compare", "Tick two recipes or more.")
            return
        name = self.compare_name.text().strip() or "-vs-".join(recipes)
        if not self._name_ok(name, "Compare", "comparison"):
            return
        args = [
            "compare",
            str(self.project.root),
            "--recipes",
            ",".join(recipes),
            "--name",
            name,
            "--size",
            self.compare_size.currentText(),
            "--steps",
            str(self.compare_steps.value()),
            "--seed",
            str(self.compare_seed.value()),
            "--json",
        ]
        self._pending_comparison = name
        self.start_job(args, None, "compare")

    def reload_comparisons(self, select: str | None = None) -> None:
        current = select or self.comparisons.currentData()
        self.comparisons.blockSignals(True)
        self.comparisons.clear()
        for c in list_comparisons(self.project):
            self.comparisons.addItem(f"{c['name']} ({c.get('state')})", c["name"])
        if current is not None and self.comparisons.findData(current) >= 0:
            self.comparisons.setCurrentIndex(self.comparisons.findData(current))
        else:
            self.comparisons.setCurrentIndex(self.comparisons.count() - 1)
        self.comparisons.blockSignals(False)
        self.show_comparison()

    def show_comparison(self) -> None:
        pg = self.pg
        name = self.comparisons.currentData()
        report = read_comparison(runs_dir(self.project) / name) if name else None
        self.compare_plot.clear()
        self.compare_curves.clear()
        if not report:
            self.compare_table.setRowCount(0)
            return
        runs = report.get("runs", [])
        sets = sorted({s for r in runs for s in r.get("eval", {})})
        self.compare_table.setColumnCount(2 + len(sets))
        self.compare_table.setHorizontalHeaderLabels(
            ["Recipe", "Train loss (nats/token)", *(f"{s}: nats/token (bits/byte)" for s in sets)]
        )
        self.compare_table.setRowCount(len(runs))
        width = 0.8 / max(1, len(runs))
        for i, r in enumerate(runs):
            color = COLORS[i % len(COLORS)]
            self.compare_table.setItem(i, 0, _item(f"{r['recipe']} ({r['state']})"))
            loss = r.get("train_loss")
            self.compare_table.setItem(i, 1, _item("-" if loss is None else f"{loss:.3f}"))
            heights = []
            for j, s in enumerate(sets):
                e = r.get("eval", {}).get(s)
                text = f"{e['loss']:.3f} ({e['bpb']:.3f})" if e and e.get("bpb") else "-"
                self.compare_table.setItem(i, 2 + j, _item(text))
                heights.append(e["loss"] if e else 0.0)
            xs = [j + (i - (len(runs) - 1) / 2) * width for j in range(len(sets))]
            self.compare_plot.addItem(
                pg.BarGraphItem(
                    x=xs, height=heights, width=width * 0.9, brush=color, name=r["recipe"]
                )
            )
            for k, s in enumerate(sets):
                pts = [(step, ev[s]["loss"]) for step, ev in r.get("curve", []) if s in ev]
                if pts:
                    style = [Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine][
                        k % 3
                    ]
                    self.compare_curves.plot(
                        [p[0] for p in pts],
                        [p[1] for p in pts],
                        pen=pg.mkPen(color, width=2, style=style),
                        symbol="o",
                        symbolSize=5,
                        symbolBrush=color,
                        name=f"{r['recipe']} {s}",
                    )
        axis = self.compare_plot.getAxis("bottom")
        axis.setTicks([[(j, s) for j, s in enumerate(sets)]])
        if any(r.get("eval") for r in runs):
            # bars from zero: a cut axis (it began just under the lowest bar) drew a 5 %
            # difference as a threefold one; the table beside gives the exact figures
            top = max(e["loss"] for r in runs for e in r.get("eval", {}).values())
            self.compare_plot.setYRange(0, top * 1.05, padding=0)


def _amount(key: str, text: str, source: str) -> float | int:
    """A share or token budget as typed in the sources table: a finite number (``1e400`` and
    ``inf`` parse as floats but are no amount; the recipe's own check bounds the rest)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise RecipeError(f"{key} of {source!r}: {text[:40]!r} is no number") from exc
    if not math.isfinite(value):
        raise RecipeError(
            f"{key} of {source!r}: {text[:40]!r} is not a finite number; type an amount "
            "such as 0.5 (share) or 2000000 (tokens)"
        )
    if key != "share" and not value.is_integer():  # int() made 0.5 a budget of 0 tokens
        raise RecipeError(f"{key} of {source!r}: {text[:40]!r} is not a whole number of tokens")
    return value if key == "share" else int(value)


def _parse_value(key: str, value: str) -> Any:
    if key == "threshold":
        try:
            return float(value)
        except ValueError as exc:
            raise RecipeError(f"threshold: {value!r} is no number") from exc
    if key == "code":
        if value.lower() not in ("true", "false"):
            raise RecipeError("code is true or false")
        return value.lower() == "true"
    return value
