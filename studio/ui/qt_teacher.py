"""The Teacher tab: the generation plan and its coverage, the taxonomy, the teachers, batches that
stream their tokens live, and the review of each page (versions side by side, a diff, the
critique and the checks; edit, accept, reject).

A batch runs on a reader thread (teacher calls are long) and hands every write to the studio's
single writer thread one step at a time, so the writer is never held for a whole batch and other
tabs keep saving while pages are written.
"""

from __future__ import annotations

import getpass
import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.generate import record
from studio.generate.diff import diff_html, diff_stats, wrap_long_lines, wrap_stream
from studio.generate.loop import BatchConfig, BatchReport, Event, TeacherChoice
from studio.generate.plan import GROUPS, PlanChoice, coverage, coverage_summary
from studio.generate.taxonomy import dimensions, subtopics
from studio.project import Project
from studio.store import Store
from studio.ui.qt_notice import warning_box
from studio.ui.qt_ops import Op, run_op, submit_write

MAX_STREAM_LINES = 4000  # the live view keeps the tail of long replies
MAX_SHOWN_CHARS = 200_000  # of one version in an editor; the record keeps all of it
MAX_EDIT_LINE = 20_000  # characters of one line the page editor takes
# why a page was rejected beside its status: it was last, past the table's edge
PAGE_COLUMNS = ["#", "Batch", "Round", "Status", "Reasons", "Cell", "Teacher"]
COVERAGE_COLUMNS = ["Group", "Cells", "Covered", "Accepted", "Rejected", "Failed", "Queued"]
STATUS_COLOURS = {
    "accepted": "#1f7a3a",
    "rejected": "#b42318",
    "failed": "#8a5a00",
    "running": "#2b6cb0",
    "pending": "#666666",
}
_Index = QModelIndex | QPersistentModelIndex


def _curator() -> str:
    return f"curator:{getpass.getuser()}"


def write_on_writer(project: Project) -> Any:
    """``write(fn)`` for the loop: ``fn(store)`` runs on the studio's writer thread, on its own
    short-lived connection, and the loop waits for it (one step's commit, not the batch)."""

    def write(fn: Any) -> Any:
        def job() -> Any:
            with project.store() as store:
                return fn(store)

        return submit_write(job).result()

    return write


class _Events(QObject):
    """Carries the loop's events from its thread to the UI thread (queued signal)."""

    event = Signal(object)


class RowsModel(QAbstractTableModel):
    """A read-only table over a list of row tuples; colours per row from ``colour(row)``."""

    def __init__(self, headers: list[str], parent: Any = None) -> None:
        super().__init__(parent)
        self.headers = headers
        self.rows: list[tuple[Any, ...]] = []
        self.colour: Any = None
        self.background: Any = None

    def set_rows(self, rows: list[tuple[Any, ...]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = self.rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = row[index.column()]
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.ForegroundRole and self.colour is not None:
            colour = self.colour(row, index.column())
            return QColor(colour) if colour else None
        if role == Qt.ItemDataRole.BackgroundRole and self.background is not None:
            colour = self.background(row, index.column())
            return QColor(colour) if colour else None
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None


def _table(model: RowsModel, name: str) -> QTableView:
    view = QTableView(objectName=name)
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(22)
    view.horizontalHeader().setStretchLastSection(True)
    view.setWordWrap(False)
    return view


def _checklist(names: list[str], name: str) -> QListWidget:
    widget = QListWidget(objectName=name)
    for n in names:
        item = QListWidgetItem(n)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        widget.addItem(item)
    return widget


def _checked(widget: QListWidget) -> list[str]:
    """The checked names; an empty list when all are checked (the plan's "every one")."""
    items = [widget.item(i) for i in range(widget.count())]
    checked = [i.text() for i in items if i.checkState() == Qt.CheckState.Checked]
    return [] if len(checked) == len(items) else checked


class TeacherView(QWidget):
    """Plan, run and review synthetic pages."""

    corpus_changed = Signal(str)  # accepted pages are documents now
    batch_finished = Signal(object)  # BatchReport
    page_changed = Signal(int)  # a curator's edit, acceptance or rejection was saved
    taxonomy_changed = Signal()
    coverage_shown = Signal()  # the coverage table and summary are up to date

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.store = project, store
        self.op: Op | None = None
        self.side_op: Op | None = None
        # the plan's teachers: the project's own (its settings file; None while that cannot be
        # read) and the ones added in this tab, which a reload of the settings never drops
        self.saved_teacher: TeacherChoice | None = None
        self.added_teachers: list[TeacherChoice] = []
        self.page: record.Page | None = None
        self.versions: list[record.Version] = []
        self.message_box: QMessageBox | None = None
        self._stream_buffer: list[str] = []
        self._stream_page: int | None = None
        self._stream_column = 0
        self._accepted_in_batch = 0
        self.events = _Events(self)
        self.events.event.connect(self._on_event)
        self._flush = QTimer(self, interval=50)
        self._flush.timeout.connect(self._flush_stream)
        self._shut_down = False
        self._build()
        self.reload_teachers()
        self.refresh()
        app = QApplication.instance()
        if app is not None:  # quitting stops the batch between tokens: it resumes next time
            app.aboutToQuit.connect(self.cancel)

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_run_bar())
        split = QSplitter(Qt.Orientation.Horizontal, objectName="teacherSplit")
        split.addWidget(self._build_plan())
        split.addWidget(self._build_pages())
        split.addWidget(self._build_review())
        split.setSizes([440, 460, 600])
        layout.addWidget(split, 1)

    def _build_run_bar(self) -> QHBoxLayout:
        self.teacher_list = QListWidget(objectName="teacherList", maximumHeight=58)
        self.teacher_list.setToolTip("The plan's teachers: pages go round them")
        self.settings_button = QPushButton("Settings…", objectName="teacherSettings")
        self.settings_button.clicked.connect(self.open_settings)
        self.add_teacher_button = QPushButton("Add…", objectName="addTeacher")
        self.add_teacher_button.clicked.connect(self.ask_teacher)
        self.remove_teacher_button = QPushButton("Remove", objectName="removeTeacher")
        self.remove_teacher_button.clicked.connect(self.remove_teacher)
        teacher_buttons = QVBoxLayout()
        for b in (self.settings_button, self.add_teacher_button, self.remove_teacher_button):
            b.setMaximumHeight(20)
            teacher_buttons.addWidget(b)
        self.pages_spin = QSpinBox(minimum=1, maximum=10_000, value=10, objectName="pagesSpin")
        self.rounds_spin = QSpinBox(minimum=1, maximum=100, value=1, objectName="roundsSpin")
        self.best_spin = QSpinBox(minimum=1, maximum=16, value=1, objectName="bestOfSpin")
        self.tokens_spin = QSpinBox(minimum=16, maximum=32_768, value=1024, singleStep=128)
        self.tokens_spin.setObjectName("maxTokensSpin")
        self.seed_pages = QCheckBox("Seed from kept web pages", objectName="seedPages")
        form = QGridLayout()
        for col, (label, widget) in enumerate(
            (
                ("Pages", self.pages_spin),
                ("Rounds", self.rounds_spin),
                ("Best of", self.best_spin),
                ("Max tokens", self.tokens_spin),
            )
        ):
            form.addWidget(QLabel(label), 0, col)
            form.addWidget(widget, 1, col)
        form.addWidget(self.seed_pages, 1, 4)
        self.run_button = QPushButton("Generate", objectName="generateButton")
        self.run_button.clicked.connect(self.generate)
        self.resume_button = QPushButton("Resume", objectName="resumeButton")
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button = QPushButton("Cancel", objectName="cancelGenerate")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(maximum=1000, maximumWidth=200, objectName="batchProgress")
        self.status = QLabel(objectName="batchStatus", wordWrap=True)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Teachers:"))
        bar.addWidget(self.teacher_list, 2)
        bar.addLayout(teacher_buttons)
        bar.addSpacing(12)
        bar.addLayout(form)
        for w in (self.run_button, self.resume_button, self.cancel_button, self.progress):
            bar.addWidget(w)
        bar.addWidget(self.status, 3)
        self._busy(False)
        return bar

    def _build_plan(self) -> QWidget:
        tabs = QTabWidget(objectName="planTabs")
        # coverage
        self.group_by = QComboBox(objectName="coverageGroup")
        self.group_by.addItems(list(GROUPS[1:]) + ["cell"])
        self.group_by.currentTextChanged.connect(lambda _: self.refresh_coverage())
        self.coverage_summary = QLabel(objectName="coverageSummary", wordWrap=True)
        self._coverage_asked = 0  # requests made; only the last one's answer is shown
        self.coverage_model = RowsModel(COVERAGE_COLUMNS, self)
        self.coverage_model.background = self._coverage_colour
        self.coverage_table = _table(self.coverage_model, "coverageTable")
        header = self.coverage_table.horizontalHeader()
        header.setStretchLastSection(True)
        # the group's name read whole ("Mathema…" told nothing); the counts scroll if need be
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        cov = QWidget()
        cov_layout = QVBoxLayout(cov)
        row = QHBoxLayout()
        row.addWidget(QLabel("Group by"))
        row.addWidget(self.group_by, 1)
        cov_layout.addLayout(row)
        cov_layout.addWidget(self.coverage_summary)
        cov_layout.addWidget(self.coverage_table, 1)
        tabs.addTab(cov, "Coverage")
        tabs.addTab(self._build_topics(), "Topics")
        tabs.addTab(self._build_dimensions(), "Choose")
        return tabs

    def _build_topics(self) -> QWidget:
        self.tree = QTreeWidget(objectName="taxonomyTree")
        self.tree.setHeaderLabels(["Subject / topic / subtopic", "Status"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setStretchLastSection(False)
        buttons = [
            ("Add…", "addSubtopic", self.add_subtopic),
            ("Rename…", "renameSubtopic", self.rename_subtopic),
            ("Remove", "removeSubtopic", self.remove_subtopic),
            ("Import…", "importTaxonomy", self.import_taxonomy),
            ("Propose…", "proposeSubtopics", self.propose),
            ("Accept", "acceptProposal", lambda: self.review_proposals("active")),
            ("Reject", "rejectProposal", lambda: self.review_proposals("rejected")),
        ]
        grid = QGridLayout()
        self.topic_buttons: dict[str, QPushButton] = {}
        for i, (text, name, slot) in enumerate(buttons):
            b = QPushButton(text, objectName=name)
            b.clicked.connect(slot)
            self.topic_buttons[name] = b
            grid.addWidget(b, i // 4, i % 4)
        holder = QWidget()
        v = QVBoxLayout(holder)
        v.addWidget(self.tree, 1)
        v.addLayout(grid)
        return holder

    def _build_dimensions(self) -> QWidget:
        dims = dimensions(self.store)
        names = sorted({s.subject for s in subtopics(self.store)})
        self.subject_list = _checklist(names, "subjectChoice")
        self.audience_list = _checklist([d.name for d in dims.audiences], "audienceChoice")
        self.style_list = _checklist([d.name for d in dims.styles], "styleChoice")
        self.difficulty_list = _checklist([d.name for d in dims.difficulties], "difficultyChoice")
        holder = QWidget()
        form = QFormLayout(holder)
        form.addRow(QLabel("The next batch draws only from the checked ones.", wordWrap=True))
        for label, widget in (
            ("Subjects", self.subject_list),
            ("Audiences", self.audience_list),
            ("Styles", self.style_list),
            ("Difficulties", self.difficulty_list),
        ):
            form.addRow(label, widget)
        return holder

    def _build_pages(self) -> QWidget:
        self.page_filter = QComboBox(objectName="pageFilter")
        self.page_filter.addItems(["all", *record.PAGE_STATUSES])
        self.page_filter.currentTextChanged.connect(lambda _: self.refresh_pages())
        self.pages_model = RowsModel(PAGE_COLUMNS, self)
        self.pages_model.colour = lambda row, col: STATUS_COLOURS.get(row[3]) if col == 3 else None
        self.pages_table = _table(self.pages_model, "pagesTable")
        for col, width in enumerate((40, 44, 48, 66, 240, 220)):
            self.pages_table.setColumnWidth(col, width)
        self.pages_table.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self._on_page_selected(cur.row())
        )
        self.stream_title = QLabel("Live: nothing is being written", objectName="streamTitle")
        self.stream = QPlainTextEdit(objectName="liveStream", readOnly=True)
        self.stream.setMaximumBlockCount(MAX_STREAM_LINES)
        self.stream.setFont(QFont("DejaVu Sans Mono", 9))
        top = QWidget()
        tv = QVBoxLayout(top)
        tv.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Pages"))
        row.addWidget(self.page_filter)
        row.addStretch(1)
        tv.addLayout(row)
        tv.addWidget(self.pages_table, 1)
        bottom = QWidget()
        bv = QVBoxLayout(bottom)
        bv.setContentsMargins(0, 0, 0, 0)
        bv.addWidget(self.stream_title)
        bv.addWidget(self.stream, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setSizes([420, 300])
        return split

    def _build_review(self) -> QWidget:
        self.page_header = QLabel(objectName="pageHeader", wordWrap=True)
        self.page_header.setTextFormat(Qt.TextFormat.RichText)
        self.left_version = QComboBox(objectName="leftVersion")
        self.right_version = QComboBox(objectName="rightVersion")
        for combo in (self.left_version, self.right_version):
            combo.currentIndexChanged.connect(lambda _: self._show_versions())
        self.left_text = QPlainTextEdit(objectName="leftText", readOnly=True)
        self.right_text = QPlainTextEdit(objectName="rightText", readOnly=True)
        sides = QSplitter(Qt.Orientation.Horizontal)
        for combo, text in (
            (self.left_version, self.left_text),
            (self.right_version, self.right_text),
        ):
            box = QWidget()
            v = QVBoxLayout(box)
            v.setContentsMargins(0, 0, 0, 0)
            v.addWidget(combo)
            v.addWidget(text, 1)
            sides.addWidget(box)
        self.diff_view = QTextBrowser(objectName="diffView", openLinks=False)
        self.diff_view.setOpenExternalLinks(False)
        self.critique_view = QTextBrowser(objectName="critiqueView", openLinks=False)
        self.critique_view.setOpenExternalLinks(False)
        self.review_tabs = QTabWidget(objectName="reviewTabs")
        self.review_tabs.addTab(sides, "Side by side")
        self.review_tabs.addTab(self.diff_view, "Diff")
        self.review_tabs.addTab(self.critique_view, "Critique and checks")
        self.edit_button = QPushButton("Edit", objectName="editPage", checkable=True)
        self.edit_button.toggled.connect(self._on_edit_toggled)
        self.save_button = QPushButton("Save edit", objectName="saveEdit")
        self.save_button.clicked.connect(self.save_edit)
        self.accept_button = QPushButton("Accept", objectName="acceptPage")
        self.accept_button.clicked.connect(lambda: self.decide("accepted"))
        self.reject_button = QPushButton("Reject", objectName="rejectPage")
        self.reject_button.clicked.connect(lambda: self.decide("rejected"))
        buttons = QHBoxLayout()
        for b in (self.edit_button, self.save_button, self.accept_button, self.reject_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        holder = QWidget()
        v = QVBoxLayout(holder)
        v.addWidget(self.page_header)
        v.addWidget(self.review_tabs, 1)
        v.addLayout(buttons)
        self._show_page(None)
        return holder

    # -- refreshing ------------------------------------------------------------------------------

    def refresh(self) -> None:
        self.refresh_coverage()
        self.refresh_tree()
        self.refresh_pages()
        self._update_resume()

    def refresh_coverage(self) -> None:
        """Count the plan's coverage on a reader thread: at the plan's 20,000 subtopics it is a
        million cells, five seconds the window froze for at every change. An answer to an
        earlier request than the last is dropped."""
        by, path = self.group_by.currentText(), self.store.path
        self._coverage_asked += 1
        asked = self._coverage_asked

        def work(_task: Any) -> tuple[list[Any], dict[str, Any]]:
            with Store(path, readonly=True) as reader:
                return coverage(reader, by), coverage_summary(reader)

        op = run_op(self, work, writes=False)
        op.on_success(lambda result: self._show_coverage(asked, *result))
        op.on_failure(lambda message, _details: self._coverage_failed(asked, message))

    def _show_coverage(self, asked: int, rows: list[Any], summary: dict[str, Any]) -> None:
        if asked != self._coverage_asked:
            return
        self.coverage_summary.setText(
            f"<b>{summary['covered']:,}</b> of {summary['cells']:,} cells hold an accepted page "
            f"({summary['accepted']:,} accepted pages; at most {summary['max_per_cell']} in a "
            "cell). The next batch draws the least covered cells first."
        )
        self.coverage_model.set_rows(
            [
                (
                    r.group,
                    r.cells,
                    r.covered,
                    r.counts["accepted"],
                    r.counts["rejected"],
                    r.counts["failed"],
                    r.counts["pending"] + r.counts["running"],
                )
                for r in rows
            ]  # fmt: skip
        )
        self.coverage_shown.emit()

    def _coverage_failed(self, asked: int, message: str) -> None:
        if asked != self._coverage_asked:
            return
        self.coverage_summary.setText(
            f"<span style='color:#b42318'>Coverage not counted: {html.escape(message)}</span>"
        )
        self.coverage_shown.emit()

    def _coverage_colour(self, row: tuple[Any, ...], col: int) -> str | None:
        if col != 2 or not row[1]:
            return None
        share = row[2] / row[1]
        if share <= 0:
            return "#fdf1f0"
        green = int(235 - 90 * min(1.0, share))
        return f"#{green - 40:02x}{min(255, green + 20):02x}{green - 30:02x}"

    def refresh_tree(self) -> None:
        expanded = {
            self.tree.topLevelItem(i).text(0)
            for i in range(self.tree.topLevelItemCount())
            if self.tree.topLevelItem(i).isExpanded()
        }
        self.tree.clear()
        nodes: dict[tuple[str, ...], QTreeWidgetItem] = {}
        for s in subtopics(self.store, None):
            if s.status == "rejected":
                continue
            subject = nodes.get((s.subject,))
            if subject is None:
                subject = nodes[(s.subject,)] = QTreeWidgetItem(self.tree, [s.subject, ""])
            topic = nodes.get((s.subject, s.topic))
            if topic is None:
                topic = nodes[(s.subject, s.topic)] = QTreeWidgetItem(subject, [s.topic, ""])
            leaf = QTreeWidgetItem(topic, [s.subtopic, s.status])
            leaf.setData(0, Qt.ItemDataRole.UserRole, s.id)
            if s.status == "proposed":
                font = leaf.font(0)
                font.setItalic(True)
                leaf.setFont(0, font)
                leaf.setForeground(1, QColor("#2b6cb0"))
                leaf.setToolTip(0, f"proposed by {s.origin}: accept or reject it")
                topic.setExpanded(True)
                subject.setExpanded(True)
        for key, node in nodes.items():
            if len(key) == 1 and key[0] in expanded:
                node.setExpanded(True)

    def refresh_pages(self) -> None:
        status = self.page_filter.currentText()
        rows = record.pages(self.store, status=None if status == "all" else status, limit=5000)
        self.pages_model.set_rows(
            [
                (p.id, p.batch_id, p.round, p.status, "; ".join(p.reasons), p.cell, p.teacher)
                for p in rows
            ]
        )
        if self.page is not None:
            ids = [r[0] for r in self.pages_model.rows]
            if self.page.id in ids:
                self.pages_table.selectRow(ids.index(self.page.id))

    def _update_resume(self) -> None:
        """Offer to resume the unfinished batch; one whose saved settings cannot be read is
        named, with why, but not offered: resuming it would run on settings made up."""
        pending = record.unfinished_batch(self.store)
        running = self.op is not None and self.op.running
        why = ""
        if pending is not None and not pending.resumable:
            why = f"Batch {pending.id} cannot be resumed: {pending.damage}"
        self.resume_button.setEnabled(pending is not None and not why and not running)
        self.resume_button.setText(f"Resume batch {pending.id}" if pending else "Resume")
        self.resume_button.setToolTip(why)
        if why and not running:
            self.status.setText(f"{why}; start a new batch.")

    # -- teachers --------------------------------------------------------------------------------

    def reload_teachers(self) -> None:
        from studio.teachers.base import TeacherError
        from studio.teachers.config import load_config

        try:
            self.saved_teacher = TeacherChoice.of(load_config(self.project.root))
        except TeacherError as exc:
            self.status.setText(f"Teacher settings: {exc}")
            self.saved_teacher = None
        self._show_teachers()

    @property
    def teachers(self) -> list[TeacherChoice]:
        """The plan's teachers, the project's own first."""
        saved = [self.saved_teacher] if self.saved_teacher is not None else []
        return saved + self.added_teachers

    def _show_teachers(self) -> None:
        self.teacher_list.clear()
        if self.saved_teacher is not None:
            self.teacher_list.addItem(f"{self.saved_teacher.label}  (project settings)")
        for t in self.added_teachers:
            self.teacher_list.addItem(t.label)
        self.remove_teacher_button.setEnabled(bool(self.added_teachers))

    def open_settings(self) -> None:
        """The project's teacher settings: saving them changes the plan's first teacher."""
        from studio.ui.qt_teacher_settings import TeacherSettingsDialog

        dialog = TeacherSettingsDialog(self.project, self)
        dialog.saved.connect(lambda _config: self.reload_teachers())
        dialog.open()
        self.settings_dialog = dialog

    def ask_teacher(self) -> None:
        spec, ok = QInputDialog.getText(
            self, "Add a teacher", "local:PATH.gguf, or openai:URL MODEL (e.g. "
            "openai:http://127.0.0.1:8080/v1 qwen2.5-7b)"
        )  # fmt: skip
        if ok and spec.strip():
            self.add_teacher(spec.strip())

    def add_teacher(self, spec: str) -> bool:
        """Add a teacher by spec (``openai:URL MODEL``); False (and why) when it is wrong."""
        from studio.teachers.base import TeacherError
        from studio.teachers.config import parse_spec

        url, _, model = spec.strip().partition(" ")
        if len(model.split()) > 1:  # "openai:http://a b/v1 m": a space inside the URL, likely
            self._warn(
                "Teacher",
                f"{spec.strip()[:200]!r} is not a teacher: write local:PATH.gguf, or openai:URL "
                "MODEL with no space inside the URL or the model's name",
            )
            return False
        try:
            choice = TeacherChoice.of(parse_spec(url, model=model.strip() or None))
        except TeacherError as exc:
            self._warn("Teacher", str(exc))
            return False
        if choice.label not in [t.label for t in self.teachers]:
            self.added_teachers.append(choice)
        self._show_teachers()
        return True

    def remove_teacher(self) -> None:
        # the project's own teacher stays (change it in Settings): only added ones go
        row = self.teacher_list.currentRow() - (self.saved_teacher is not None)
        if 0 <= row < len(self.added_teachers):
            del self.added_teachers[row]
            self._show_teachers()

    # -- batches ---------------------------------------------------------------------------------

    def batch_config(self) -> BatchConfig:
        return BatchConfig(
            pages=self.pages_spin.value(),
            rounds=self.rounds_spin.value(),
            best_of=self.best_spin.value(),
            max_tokens=self.tokens_spin.value(),
            seed_pages=self.seed_pages.isChecked(),
            teachers=list(self.teachers),
            choice=PlanChoice(
                _checked(self.subject_list),
                _checked(self.audience_list),
                _checked(self.style_list),
                _checked(self.difficulty_list),
            ),
        )

    def generate(self) -> Op | None:
        from studio.generate.loop import new_batch

        if self.op is not None and self.op.running:
            return None
        project, config = self.project, self.batch_config()

        def create(_task: Any) -> int:
            with project.store() as store:
                return new_batch(store, config)

        self._busy(True)
        self.status.setText("Planning the batch…")
        op = run_op(self, create)
        op.on_success(self.run_batch).on_failure(self._on_failed)
        self.op = op
        return op

    def resume(self) -> Op | None:
        pending = record.unfinished_batch(self.store)
        if pending is None or (self.op is not None and self.op.running):
            return None
        if not pending.resumable:
            self._warn("Generation", f"Batch {pending.id} cannot be resumed: {pending.damage}.")
            return None
        return self.run_batch(pending.id)

    def run_batch(self, batch_id: int) -> Op:
        from studio.generate.loop import run_batch

        project, emit = self.project, self.events.event.emit
        write = write_on_writer(project)

        def work(task: Any) -> BatchReport:
            with project.store() as store:
                return run_batch(project, store, batch_id, task=task, on_event=emit, write=write)

        self._busy(True)
        self._accepted_in_batch = 0
        self._stream_page = None  # the live view follows the first page that starts
        self.status.setText(f"Batch {batch_id}: starting…")
        self.progress.setValue(0)
        # a reader thread: teacher calls are long, and each write goes to the writer by itself
        op = run_op(self, work, writes=False)
        op.on_progress(self._on_progress).on_success(self._on_batch_done)
        op.on_failure(self._on_failed)
        self.op = op
        self._flush.start()
        return op

    def cancel(self) -> None:
        if self.op is not None and self.op.running:
            self.op.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling: the page in hand resumes later from its last step…")

    def shut_down(self) -> None:
        """The studio is closing: the batch stops between tokens (it resumes next time), and
        nothing more of it reaches this view, whose project database is about to close."""
        if self._shut_down:
            return
        self._shut_down = True
        self.events.event.disconnect(self._on_event)
        self._flush.stop()
        op = self.op
        if op is not None and op.running:
            op.cancel()
            op.progressed.disconnect(self._on_progress)
            op.succeeded.disconnect(self._on_batch_done)
            op.failed.disconnect(self._on_failed)

    def _busy(self, on: bool) -> None:
        self.run_button.setEnabled(not on)
        self.cancel_button.setVisible(on)
        self.cancel_button.setEnabled(on)
        self.progress.setVisible(on)
        if on:
            self.resume_button.setEnabled(False)

    def _on_progress(self, done: int, total: int, msg: str) -> None:
        self.progress.setValue(int(1000 * done / total) if total else 0)
        self.status.setText(msg)

    def _on_event(self, e: Event) -> None:
        # pages of a remote teacher run side by side: the live view follows one page to its
        # end, then the next page that starts a step
        following = e.page_id == self._stream_page
        if e.kind == "step" and (following or self._stream_page is None):
            self._flush_stream()
            if not following:
                self.stream.clear()
                self._stream_page = e.page_id
            self.stream.appendPlainText(f"\n── page {e.page_id}: {e.step} ──\n")
            self._stream_column = 0
            self.stream_title.setText(f"Live: page {e.page_id}, {e.step}")
        elif e.kind == "token" and following:
            self._stream_buffer.append(e.text)
        elif e.kind == "restart" and following:
            self._stream_buffer.clear()
            self.stream.appendPlainText(f"\n[the teacher starts over: {e.text}]\n")
        elif e.kind == "page":
            if following:
                self._flush_stream()
                self.stream.appendPlainText(f"\n── page {e.page_id} {e.step}: {e.text} ──")
                self._stream_page = None
            if e.step == "accepted":
                self._accepted_in_batch += 1
                self.corpus_changed.emit("generated")
            self.refresh_pages()
            self.refresh_coverage()

    def _flush_stream(self) -> None:
        if not self._stream_buffer:
            return
        text, self._stream_column = wrap_stream("".join(self._stream_buffer), self._stream_column)
        self._stream_buffer.clear()
        cursor = self.stream.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)
        self.stream.setTextCursor(cursor)
        self.stream.ensureCursorVisible()

    def _on_batch_done(self, report: BatchReport) -> None:
        self._flush_stream()
        self._flush.stop()
        self._busy(False)
        self.status.setText(report.text)
        self.stream_title.setText(f"Live: {report.text}")
        self.refresh()
        self.batch_finished.emit(report)

    def _on_failed(self, message: str, details: str) -> None:
        self._flush.stop()
        self._busy(False)
        self.status.setText(f"Stopped: {message}")
        self.refresh()
        self._warn("Generation", message, details)

    def _warn(self, title: str, message: str, details: str = "") -> None:
        self.message_box = warning_box(self, title, message, details)

    # -- the taxonomy ----------------------------------------------------------------------------

    def _selected_tree(self) -> tuple[list[str], int | None]:
        """The path of the selected node ([subject, topic, subtopic] prefix) and its id."""
        item = self.tree.currentItem()
        path: list[str] = []
        node = item
        while node is not None:
            path.insert(0, node.text(0))
            node = node.parent()
        sid = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return path, sid

    def _write(self, fn: Any, done: Any = None, failed: Any = None, title: str = "Plan") -> Op:
        project = self.project

        def work(_task: Any) -> Any:
            with project.store() as store:
                return fn(store)

        def on_failure(msg: str, details: str) -> None:
            if failed is not None:
                failed()
            self._warn(title, msg, details)

        op = run_op(self, work)
        op.on_success(done or (lambda _r: self._after_taxonomy_change()))
        op.on_failure(on_failure)
        self.side_op = op
        return op

    def _after_taxonomy_change(self) -> None:
        self.refresh_tree()
        self.refresh_coverage()
        self.taxonomy_changed.emit()

    def add_subtopic(self) -> None:
        from studio.generate.taxonomy import add_subtopic

        path, _ = self._selected_tree()
        default = " / ".join((path + ["", "", ""])[:2]) + " / "
        text, ok = QInputDialog.getText(
            self, "Add a subtopic", "Subject / Topic / Subtopic", text=default
        )
        # " / " parts, as a taxonomy file's lines: "TCP/IP / Basics / Sockets" is three names
        parts = [p.strip() for p in text.split(" / ")]
        if ok and len(parts) == 3:
            self._write(lambda s: add_subtopic(s, *parts))
        elif ok:
            self._warn(
                "Plan",
                'Write it as "Subject / Topic / Subtopic": the names apart by " / ", a slash '
                "with a space on each side (a name may hold a slash: TCP/IP).",
            )

    def rename_subtopic(self) -> None:
        from studio.generate.taxonomy import rename_subtopic

        path, sid = self._selected_tree()
        if sid is None:
            return
        name, ok = QInputDialog.getText(self, "Rename", "Subtopic", text=path[-1])
        if ok and name.strip():
            self._write(lambda s: rename_subtopic(s, sid, name))

    def remove_subtopic(self) -> None:
        from studio.generate.taxonomy import remove_subtopics

        _, sid = self._selected_tree()
        if sid is not None:
            self._write(lambda s: remove_subtopics(s, [sid]))

    def import_taxonomy(self, path: Path | None = None) -> Op | None:
        from studio.generate.taxonomy import import_taxonomy

        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self, "Import a taxonomy", "", "Taxonomy (*.json *.txt *.md);;All files (*)"
            )
            if not chosen:
                return None
            path = Path(chosen)
        return self._write(lambda s: import_taxonomy(s, path), self._on_imported)

    def _on_imported(self, result: Any) -> None:
        self._after_taxonomy_change()
        self.status.setText(
            f"Imported {result.added} subtopic(s) ({result.already} already planned)"
        )

    def propose(self, n: int = 5) -> Op | None:
        """Ask the first teacher for subtopics of the selected topic (held for review)."""
        from studio.generate.propose import ask_subtopics, hold_proposals

        path, _ = self._selected_tree()
        if len(path) < 2 or not self.teachers:
            self._warn("Propose", "Select a topic (or one of its subtopics) first.")
            return None
        subject, topic = path[0], path[1]
        project, choice = self.project, self.teachers[0]

        def ask(task: Any) -> tuple[list[str], str]:
            teacher = choice.open()
            with project.store(readonly=True) as store:
                return ask_subtopics(store, teacher, subject, topic, n=n, task=task), teacher.name

        def hold(result: tuple[list[str], str]) -> None:
            names, origin = result
            self._write(
                lambda s: hold_proposals(s, subject, topic, names, origin),
                lambda added: self._on_proposed(added),
            )

        self.status.setText(f"Asking {choice.label} for subtopics of {subject} / {topic}…")
        op = run_op(self, ask, writes=False)
        op.on_success(hold).on_failure(lambda msg, d: self._warn("Propose", msg, d))
        self.side_op = op
        return op

    def _on_proposed(self, added: list[Any]) -> None:
        self._after_taxonomy_change()
        self.status.setText(f"{len(added)} subtopic(s) proposed: accept or reject them")

    def review_proposals(self, status: str) -> None:
        from studio.generate.taxonomy import set_status

        item = self.tree.currentItem()
        if item is None:
            return
        ids = self._proposed_under(item)
        if ids:
            self._write(lambda s: set_status(s, ids, status))

    def _proposed_under(self, item: QTreeWidgetItem) -> list[int]:
        sid = item.data(0, Qt.ItemDataRole.UserRole)
        if sid is not None:
            return [sid] if item.text(1) == "proposed" else []
        out: list[int] = []
        for i in range(item.childCount()):
            out += self._proposed_under(item.child(i))
        return out

    # -- one page --------------------------------------------------------------------------------

    def _on_page_selected(self, row: int) -> None:
        if 0 <= row < len(self.pages_model.rows):
            self.show_page(self.pages_model.rows[row][0])

    def show_page(self, page_id: int) -> None:
        try:
            page = record.page(self.store, page_id)
        except record.RecordError:
            self._show_page(None)
            return
        self.page = page
        self.versions = record.versions(self.store, page_id)
        self._show_page(page)

    def _show_page(self, page: record.Page | None) -> None:
        self.edit_button.setChecked(False)
        for b in (self.edit_button, self.accept_button, self.reject_button):
            b.setEnabled(page is not None and page.status not in ("pending", "running"))
        self.save_button.setEnabled(False)
        for combo in (self.left_version, self.right_version):
            combo.blockSignals(True)
            combo.clear()
        if page is None:
            self.page_header.setText("Select a page to read its versions.")
            for w in (self.left_text, self.right_text):
                w.setPlainText("")
            self.diff_view.setHtml("")
            self.critique_view.setHtml("")
            for combo in (self.left_version, self.right_version):
                combo.blockSignals(False)
            return
        colour = STATUS_COLOURS.get(page.status, "#333")
        reasons = "".join(f"<li>{html.escape(r[:400])}</li>" for r in page.reasons[:12])
        seed = f" · seeded from document {page.seed_doc_id}" if page.seed_doc_id else ""
        doc = f" · document {page.doc_id}" if page.doc_id else ""
        self.page_header.setText(
            f"<b>Page {page.id}</b> <span style='color:{colour}'><b>{page.status}</b></span>"
            f" · batch {page.batch_id}, round {page.round} · {html.escape(page.teacher)}{seed}"
            f"{doc}<br>{html.escape(page.cell)}<ul style='margin:2px'>{reasons}</ul>"
        )
        texts = [v for v in self.versions if v.kind in ("draft", "rewrite", "edit") and v.text]
        for v in texts:
            label = f"{v.label} ({len((v.text or '').split()):,} words)"
            self.left_version.addItem(label, v.id)
            self.right_version.addItem(label, v.id)
        right = len(texts) - 1
        rewrite = next((v for v in texts if v.kind == "rewrite"), None)
        left_id = rewrite.parent_id if rewrite else (texts[0].id if texts else None)
        left = next((i for i, v in enumerate(texts) if v.id == left_id), 0)
        self.left_version.setCurrentIndex(left)
        self.right_version.setCurrentIndex(right)
        for combo in (self.left_version, self.right_version):
            combo.blockSignals(False)
        self._show_versions()
        self.critique_view.setHtml(self._critique_html())

    def _version_text(self, combo: QComboBox) -> str:
        vid = combo.currentData()
        v = next((v for v in self.versions if v.id == vid), None)
        return (v.text or "") if v else ""

    def _show_versions(self) -> None:
        left, right = self._version_text(self.left_version), self._version_text(self.right_version)
        stats = diff_stats(left, right)
        # shown clipped and with very long lines broken: Qt lays out one huge line in seconds
        left, right = (wrap_long_lines(t[:MAX_SHOWN_CHARS]) for t in (left, right))
        self.left_text.setPlainText(left)
        if not self.edit_button.isChecked():
            self.right_text.setPlainText(right)
        self.review_tabs.setTabText(1, f"Diff (+{stats['added']:,} −{stats['removed']:,} words)")
        self.diff_view.setHtml(diff_html(left, right))

    def _critique_html(self) -> str:
        out = []
        for v in self.versions:
            if v.kind == "critique":
                out.append(f"<h4>{html.escape(v.label)} ({html.escape(v.teacher or '')})</h4>")
                if v.error:
                    out.append(f"<p style='color:#b42318'>{html.escape(v.error)}</p>")
                    continue
                data = v.data or {}
                scores = " · ".join(
                    f"{html.escape(k)} <b>{s:g}</b>" for k, s in data.get("scores", {}).items()
                )
                out.append(f"<p>{scores} — mean <b>{data.get('mean', 0):.2f}</b></p>")
                if data.get("repairs") or data.get("retries"):
                    fixes = ", ".join(data.get("repairs", []) + data.get("retries", []))
                    out.append(f"<p style='color:#666'>read after: {html.escape(fixes)}</p>")
                out.append(
                    "<ul>"
                    + "".join(f"<li>{html.escape(p)}</li>" for p in data.get("problems", []))
                    + "</ul>"
                )
            elif v.kind == "checks":
                out.append("<h4>Checks of the rewrite</h4><table cellspacing='4'>")
                for c in v.data or []:
                    mark = {True: "✔", False: "✘", None: "–"}[c["passed"]]
                    colour = {True: "#1f7a3a", False: "#b42318", None: "#666"}[c["passed"]]
                    out.append(
                        f"<tr><td style='color:{colour}'>{mark}</td><td>{html.escape(c['name'])}"
                        f"</td><td>{html.escape(c['detail'])}</td></tr>"
                    )
                out.append("</table>")
            elif v.kind in ("draft", "rewrite") and v.seconds:
                out.append(
                    f"<p style='color:#666'>{html.escape(v.label)}: {v.completion_tokens or 0} "
                    f"tokens in {v.seconds:.1f} s by {html.escape(v.teacher or '')}</p>"
                )
        return "".join(out) or "<p>No critique yet.</p>"

    def _on_edit_toggled(self, on: bool) -> None:
        text = ""
        if on and self.page is not None:
            text = self.page.text or self._version_text(self.right_version)
            longest = max((len(line) for line in text.split("\n")), default=0)
            if longest > MAX_EDIT_LINE:  # Qt lays such a line out for seconds, on this thread
                self.edit_button.setChecked(False)
                self._warn(
                    "Page",
                    f"Page {self.page.id} has a line of {longest:,} characters: editing it here "
                    "would hold the window for seconds. Edit it as a file with "
                    f"`studio pages edit PROJECT {self.page.id} FILE`.",
                )
                return
        self.right_text.setReadOnly(not on)
        self.save_button.setEnabled(on)
        if on and self.page is not None:
            self.right_text.setPlainText(text)
            self.right_text.setFocus()
            self.review_tabs.setCurrentIndex(0)

    def save_edit(self) -> Op | None:
        if self.page is None:
            return None
        page_id, text, by = self.page.id, self.right_text.toPlainText(), _curator()
        seen = (self.page.status, self.page.text)  # refused if another program changed it
        return self._page_op(lambda s: record.edit(s, page_id, text, by=by, seen=seen), page_id)

    def decide(self, status: str) -> Op | None:
        if self.page is None:
            return None
        page_id, by, seen = self.page.id, _curator(), (self.page.status, self.page.text)
        if status == "accepted":
            return self._page_op(
                lambda s: record.accept(s, page_id, [f"accepted by {by}"], by=by, seen=seen),
                page_id,
            )
        return self._page_op(
            lambda s: record.reject(s, page_id, [f"rejected by {by}"], by=by, seen=seen),
            page_id,
        )

    def _page_op(self, fn: Any, page_id: int) -> Op:
        def done(_result: Any) -> None:
            self.refresh_pages()
            self.refresh_coverage()
            self.show_page(page_id)
            self.corpus_changed.emit("reviewed")
            self.page_changed.emit(page_id)

        def failed() -> None:  # show the page as it is now (another program may have changed it)
            self.refresh_pages()
            self.show_page(page_id)

        return self._write(fn, done, failed, title="Page")
