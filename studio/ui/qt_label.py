"""Labelling mode: the page, the rubric beside it, and a score from the keyboard.

Keys 0–5 score the page and show the next one at once (it is loaded ahead); → skips, ← goes
back, Ctrl+Z undoes. Each score is written on the writer thread the moment it is given, by a
:class:`~studio.labelling.LabelSession` that lives on that thread with its own connection.

Below the agreement, the project's teacher can score pages too (:mod:`studio.teacher_labels`):
the pages people labelled, to measure it against them, or pages nobody labelled. It runs on a
reader thread, as network calls do (a reply takes seconds; the curator's own scores must not wait
behind it), with its own connection; each of its scores is one short write.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from studio.documents import DocumentPage, default_annotator, load_page
from studio.labelling import (
    LabelSession,
    agreement,
    annotator_problem,
    queue_ids,
    rubric_text,
)
from studio.project import Project
from studio.store import DocumentQuery, Store
from studio.text import plural
from studio.ui.qt_document import DocumentView
from studio.ui.qt_ops import run_op

# fewer pages scored by both annotators than this: kappa swings by a page (one page gives 0)
FEW = 10
# why a queue came up with no page at all ("Queue finished · 0 scored" said nothing)
EMPTY_QUEUE = {
    "random": "every page already has your score",
    "search": "no page you have not scored matches the corpus view's search and filters",
    "uncertainty": "every page the classifier scored already has your score",
    "band": "no page's classifier score lies in this band",
    "disagreement": "the classifier agrees with every labelled page",
    "annotators": "no page has two annotators' scores far apart (it needs pages two "
    "annotators scored)",
}


class LabelView(QWidget):
    """One annotator labelling a queue of documents."""

    labelled = Signal(int, int)  # doc id, score: after the score is stored

    def __init__(self, project: Project, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project, self.store = project, store
        self.session: LabelSession | None = None
        self._starting = False  # a new queue is being made
        self._strategy = ""  # the queue the session was made from
        self._shown, self._pending = 0, 0  # the queue position on screen; writes not yet done
        self.search_query = DocumentQuery()
        self._pages: dict[int, DocumentPage] = {}
        self._build()

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        self.annotator = QLineEdit(default_annotator(), objectName="annotator")
        self.annotator.setMaximumWidth(160)
        self.queue = QComboBox(objectName="labelQueue")
        self.queue.addItem("Random unlabelled pages", "random")
        self.queue.addItem("Pages matching the corpus search and filters", "search")
        self.queue.addItem("Most uncertain for the classifier (active learning)", "uncertainty")
        self.queue.addItem("Classifier and labels disagree", "disagreement")
        self.queue.addItem("Classifier score in a band", "band")
        self.queue.addItem(
            "Annotators disagree (2+ points, or keep vs drop): adjudicate", "annotators"
        )
        self.band_lo = QDoubleSpinBox(minimum=-10, maximum=10, value=2.0, singleStep=0.5)
        self.band_hi = QDoubleSpinBox(minimum=-10, maximum=10, value=3.5, singleStep=0.5)
        for spin in (self.band_lo, self.band_hi):
            spin.setToolTip("Score band (latest classifier version)")
            spin.setVisible(False)
        self.queue.currentIndexChanged.connect(
            lambda _: [
                s.setVisible(self.queue.currentData() == "band")
                for s in (self.band_lo, self.band_hi)
            ]
        )
        self.start_button = QPushButton("Start labelling", objectName="startLabelling")
        self.start_button.clicked.connect(self.start)
        self.status = QLabel(objectName="labelStatus")
        top = QHBoxLayout()
        for w in (
            QLabel("Annotator:"),
            self.annotator,
            QLabel("Queue:"),
            self.queue,
            self.band_lo,
            self.band_hi,
            self.start_button,
        ):
            top.addWidget(w)
        top.addWidget(self.status, 1)

        self.document = DocumentView(objectName="labelDocument")
        self.rubric = QTextBrowser(objectName="rubric")
        self.rubric.setOpenLinks(False)
        self.rubric.setMarkdown(rubric_text(self.project.root))
        scores = QGridLayout()
        self.score_buttons = []
        for value in range(6):
            button = QPushButton(str(value), objectName=f"score{value}")
            button.setToolTip(f"Score {value} and go on (key {value})")
            button.clicked.connect(lambda _=False, v=value: self.give(v))
            scores.addWidget(button, 0, value)
            self.score_buttons.append(button)
        nav = QHBoxLayout()
        for text, slot in (("← Back", self.back), ("Skip →", self.skip), ("Undo", self.undo)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            nav.addWidget(button)
        self.agreement_label = QLabel(objectName="agreement", wordWrap=True)
        side = QVBoxLayout()
        side.addWidget(self.rubric, 1)
        side.addLayout(scores)
        side.addLayout(nav)
        side.addWidget(self.agreement_label)
        side.addLayout(self._build_teacher())
        panel = QWidget()
        panel.setLayout(side)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.document)
        splitter.addWidget(panel)
        splitter.setSizes([820, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        for value in range(6):
            self._shortcut(str(value), lambda v=value: self.give(v))
        self._shortcut("Right", self.skip)
        self._shortcut("Left", self.back)
        self._shortcut(QKeySequence.StandardKey.Undo, self.undo)
        self._set_enabled(False)
        self.status.setText("Choose a queue and start: each score is saved the moment you give it.")
        self.show_agreement()

    def _build_teacher(self) -> QVBoxLayout:
        self.teacher_pages = QComboBox(objectName="teacherPages")
        self.teacher_pages.addItem("pages people labelled", "labelled")
        self.teacher_pages.addItem("pages nobody labelled", "unlabelled")
        self.teacher_pages.setToolTip(
            "People's pages measure the teacher against them (see the agreement above); "
            "unlabelled pages extend the labels. A person's score always wins over a teacher's."
        )
        self.teacher_limit = QSpinBox(minimum=1, maximum=100_000, value=50, suffix=" pages")
        self.teacher_button = QPushButton("Teacher: score them", objectName="teacherScore")
        self.teacher_button.setToolTip(
            "The project's teacher (Teacher tab) reads each page with this rubric and scores it, "
            "as annotator teacher:NAME"
        )
        self.teacher_button.clicked.connect(self.teacher_score)
        self.teacher_cancel = QPushButton("Cancel", visible=False)
        self.teacher_cancel.clicked.connect(self.cancel_teacher)
        self.teacher_status = QLabel(objectName="teacherStatus", wordWrap=True)
        self.teacher_op: Any = None
        row = QHBoxLayout()
        for w in (self.teacher_pages, self.teacher_limit, self.teacher_button, self.teacher_cancel):
            row.addWidget(w)
        box = QVBoxLayout()
        box.addLayout(row)
        box.addWidget(self.teacher_status)
        return box

    def teacher_score(self) -> None:
        """Let the project's teacher score the chosen pages, in the background."""
        from studio.teacher_labels import label_with_teacher, pages_to_score, teacher_annotator

        project, which, limit = (
            self.project,
            self.teacher_pages.currentData(),
            self.teacher_limit.value(),
        )
        rubric = rubric_text(project.root)

        def work(task: Any) -> Any:
            from studio.teachers.config import load_config, open_teacher

            task.progress(0, 1, "opening the teacher")
            teacher = open_teacher(load_config(project.root))
            load = getattr(teacher, "load", None)  # a local model loads once, here
            if load is not None:
                load()
            with project.store() as store:
                pages = pages_to_score(store, teacher_annotator(teacher), which, limit)
                return label_with_teacher(store, teacher, pages, rubric, task=task)

        self.teacher_button.setEnabled(False)
        self.teacher_cancel.setVisible(True)
        self.teacher_status.setText("Opening the teacher…")
        self.teacher_op = run_op(self, work, writes=False)
        self.teacher_op.on_progress(self._on_teacher_progress)
        self.teacher_op.on_success(self._on_teacher_done).on_failure(self._on_teacher_failed)

    def cancel_teacher(self) -> None:
        if self.teacher_op is not None and self.teacher_op.running:
            self.teacher_op.cancel()
            self.teacher_status.setText("Stopping after this page… the scores given are kept.")

    def _on_teacher_progress(self, done: int, total: int, message: str) -> None:
        self.teacher_status.setText(f"{html.escape(message)}: {done} of {total}")

    def _teacher_finished(self) -> None:
        self.teacher_button.setEnabled(True)
        self.teacher_cancel.setVisible(False)
        self.show_agreement()

    def _on_teacher_done(self, report: Any) -> None:
        self._teacher_finished()
        if report.asked == 0:
            self.teacher_status.setText(f"No such pages left for {html.escape(report.annotator)}.")
            return
        spread = ", ".join(f"{k}: {v}" for k, v in sorted(report.by_score.items())) or "none"
        problems = "".join(f"<br>{html.escape(p)}" for p in report.problems[:3])
        self.teacher_status.setText(
            f"<b>{html.escape(report.annotator)}</b> scored {report.scored} of "
            f"{plural(report.asked, 'page')} ({report.failed} failed, {report.skipped} skipped) "
            f"in {report.seconds:.0f} s; "
            f"scores {spread}{problems}"
        )

    def _on_teacher_failed(self, message: str, _details: str) -> None:
        self._teacher_finished()
        if message.startswith("Cancelled"):
            message = "Stopped: the scores given so far are kept; start again to go on."
        self.teacher_status.setText(f"<span style='color:#b42318'>{html.escape(message)}</span>")

    def _shortcut(self, key: Any, slot: Any) -> None:
        shortcut = QShortcut(QKeySequence(key), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(slot)

    def _set_enabled(self, on: bool) -> None:
        for button in self.score_buttons:
            button.setEnabled(on)

    # -- the session (its database work runs on the writer thread) ------------------------------

    def start(self) -> None:
        annotator = self.annotator.text().strip() or default_annotator()
        problem = annotator_problem(annotator)
        if problem is not None:
            self._on_error(f"Cannot label as {annotator[:40]!r}: {problem}.", "")
            return
        strategy = self.queue.currentData()
        self._strategy = strategy
        query = self.search_query if strategy == "search" else DocumentQuery()
        band = (self.band_lo.value(), self.band_hi.value())
        project, old = self.project, self.session

        def open_session(_task: Any) -> LabelSession:
            # the running session stays usable until the new queue exists: a queue that cannot
            # be made (no classifier yet, an empty band) leaves the curator where they were
            store = project.store()
            try:
                ids = queue_ids(
                    store,
                    annotator,
                    query,
                    strategy="random" if strategy == "search" else strategy,
                    band=band if strategy == "band" else None,
                )
            except BaseException:
                store.close()
                raise
            if old is not None:
                old.store.close()
            return LabelSession(store, annotator, ids)

        self._starting = True  # keys wait: the old session's store closes when the new one opens
        run_op(self, open_session).on_success(self._on_started).on_failure(self._on_start_failed)

    def _on_start_failed(self, message: str, details: str) -> None:
        self._starting = False
        self._on_error(message, details)

    def _on_started(self, session: LabelSession) -> None:
        self._starting = False
        self.session = session
        self._shown, self._pending = session.position, 0
        self._pages.clear()
        self._set_enabled(True)
        self.setFocus()
        self._show_current()

    # The writes run on the writer thread, which an import, a training or a scoring run may
    # keep busy for a while: keys do not wait for them. ``_shown`` is the queue position of the
    # page on screen; each key acts on that page (its write carries the position) and shows
    # the next one at once. Once no write is pending, the screen follows the session again.

    def give(self, value: int) -> None:
        session, at = self.session, self._shown
        if session is None or self._starting or not 0 <= at < len(session.ids):
            return
        self._queue(lambda: session.score(value, at=at), lambda doc_id: self._scored(doc_id, value))
        self._shown = at + 1
        self._show(session.ids[at + 1] if at + 1 < len(session.ids) else None)

    def _scored(self, doc_id: int | None, value: int) -> None:
        if doc_id is not None:
            self.labelled.emit(doc_id, value)

    def skip(self) -> None:
        session, at = self.session, self._shown
        if session is not None and not self._starting:
            self._queue(lambda: session.skip(at=at))
            self._shown = min(at + 1, len(session.ids))
            self._show(session.ids[self._shown] if self._shown < len(session.ids) else None)

    def back(self) -> None:
        session, at = self.session, self._shown
        if session is not None and not self._starting:
            self._queue(lambda: session.back(at=at))
            self._shown = max(at - 1, 0)
            if session.ids:
                self._show(session.ids[self._shown])

    def undo(self) -> None:
        session = self.session
        if session is not None and not self._starting:
            self._queue(session.undo)  # the page it takes back is shown when it is done

    def _queue(self, write: Any, done: Any = None) -> None:
        self._pending += 1
        op = run_op(self, lambda _task: write())
        op.on_success(lambda result: self._write_done(done, result))
        op.on_failure(self._write_failed)

    def _write_done(self, done: Any, result: Any) -> None:
        self._pending -= 1
        if done is not None:
            done(result)
        self._follow_session()

    def _write_failed(self, message: str, details: str) -> None:
        self._pending -= 1
        self._follow_session()  # back to the page whose write failed, with the reason
        self._on_error(message, details)

    def _follow_session(self) -> None:
        if self._pending == 0 and self.session is not None:
            self._shown = self.session.position
            self._show_current()

    def close_session(self) -> None:
        if self.session is not None:
            store = self.session.store
            run_op(None, lambda _task: store.close())
            self.session = None

    # -- showing ---------------------------------------------------------------------------------

    def _page(self, doc_id: int) -> DocumentPage | None:
        if doc_id not in self._pages:
            try:
                self._pages[doc_id] = load_page(self.store, doc_id)
            except KeyError:
                return None
        return self._pages[doc_id]

    def _show(self, doc_id: int | None) -> None:
        page = self._page(doc_id) if doc_id is not None else None
        # the buttons follow the page: undo or back past the queue's end brings one back
        self._set_enabled(page is not None)
        if page is not None and page is self.document.page:
            return  # already on screen (shown at the keypress, before the write returned)
        if page is None:
            self.document.show_nothing()
            self.status.setText("<b>Queue finished.</b> Start again for more pages.")
            return
        self.document.show_page(page)

    def _show_current(self) -> None:
        session = self.session
        if session is None:
            return
        self._show(session.current)
        nxt = session.peek()
        if nxt is not None:
            self._page(nxt)  # load ahead, so the next keypress shows it at once
        for stale in [d for d in self._pages if d not in (session.current, nxt, session.peek(-1))]:
            del self._pages[stale]
        if not session.ids:
            why = EMPTY_QUEUE.get(self._strategy, "no page to label")
            self.status.setText(f"<b>This queue is empty:</b> {html.escape(why)}.")
        elif session.current is None:  # the end: say so, not "0 left in the queue"
            self.status.setText(
                f"<b>Queue finished</b> · {session.given} scored this session. Start again for "
                "more pages."
            )
        else:
            left = len(session.ids) - session.position
            mine = self.store.label_of(session.current, session.annotator)
            already = f" · your score for this page: <b>{mine}</b>" if mine is not None else ""
            self.status.setText(
                f"<b>{session.given}</b> scored this session · {left:,} left in the queue{already}"
            )
        self.show_agreement()

    def show_agreement(self) -> None:
        pairs = [p for p in agreement(self.store) if p.shared]
        if not pairs:
            self.agreement_label.setText("")
            return
        lines = []
        for p in pairs:
            kappa = "n/a" if p.kappa is None else f"{p.kappa:.2f}"
            keep = "n/a" if p.keep_kappa is None else f"{p.keep_kappa:.2f}"
            lines.append(
                f"{html.escape(p.a)} vs {html.escape(p.b)}: κ = {kappa} on "
                f"{plural(p.shared, 'page')}; keep decision κ = {keep}, split on "
                f"{plural(len(p.split), 'page')}; {plural(len(p.disagreements), 'page')} "
                "2+ points apart"
                + (" <i>(too few shared pages for κ to mean much)</i>" if p.shared < FEW else "")
            )
        self.agreement_label.setText(
            "<b>Agreement</b> (scores: quadratic-weighted Cohen's κ; keep at 3+: Cohen's κ)<br>"
            + "<br>".join(lines)
        )

    def _on_error(self, message: str, _details: str) -> None:
        # said where the curator is looking, without a modal box in the way of the keyboard
        self.status.setText(f"<span style='color:#b42318'>{html.escape(message)}</span>")
