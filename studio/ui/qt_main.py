"""The main window: the corpus on the left, the open document on the right, drops anywhere."""

from __future__ import annotations

import html
import importlib
import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio import __version__, paths
from studio.documents import load_page, relabel_block
from studio.ingest.pipeline import ImportReport, import_paths
from studio.project import (
    Project,
    ProjectError,
    data_dir,
    recent_projects,
    remember_project,
)
from studio.text import plural
from studio.ui.app import LOG_NAME
from studio.ui.qt_corpus import CorpusView
from studio.ui.qt_document import DocumentView
from studio.ui.qt_import import ImportReportDialog
from studio.ui.qt_label import LabelView
from studio.ui.qt_ops import Op, open_project_waiting, run_op

# the modes built on first use: tab name -> (module, view class taking (project, store))
LAZY_TABS: dict[str, tuple[str, str]] = {
    "Classifier": ("studio.ui.qt_classify", "ClassifierView"),
    "Diversity": ("studio.ui.qt_diversity", "DiversityView"),
    "Teacher": ("studio.ui.qt_teacher", "TeacherView"),
    "Duplicates": ("studio.ui.qt_duplicates", "DuplicatesView"),
    "Training": ("studio.ui.qt_train", "TrainingView"),
}

log = logging.getLogger("studio.ui")


class MainWindow(QMainWindow):
    import_finished = Signal(object)  # ImportReport; for tests and the self-test
    import_failed = Signal(str)  # what the curator was told; for the self-test

    def __init__(self, project: Project, *, remember: bool = True) -> None:
        """``remember``: list the projects it opens under File → Open Recent (not for the
        self-test's scratch project)."""
        super().__init__()
        self.remember = remember
        self.setObjectName("mainWindow")
        style = paths.resource("style.qss")
        if style.exists():
            self.setStyleSheet(style.read_text("utf-8"))
        self.setAcceptDrops(True)
        self.resize(1400, 860)
        self.project: Project | None = None
        self.store = None
        self.import_op: Op | None = None
        self.report_dialog: ImportReportDialog | None = None
        self.label_view: LabelView | None = None
        self._build_status_bar()
        self._build_menus()
        self.open_project(project)

    # -- building ------------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel()
        self.progress = QProgressBar(maximumWidth=260, maximum=1000, objectName="importProgress")
        self.cancel_button = QPushButton("Cancel import", objectName="cancelImport")
        self.cancel_button.clicked.connect(self.cancel_import)
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(
            file_menu, "&New Project…", self.choose_new_project, QKeySequence.StandardKey.New
        )
        self._action(
            file_menu, "&Open Project…", self.choose_project, QKeySequence.StandardKey.Open
        )
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        self._action(file_menu, "&Import Files…", self.choose_import_files, "Ctrl+I")
        self._action(file_menu, "Import &Folder…", self.choose_import_folder, "Ctrl+Shift+I")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "&Refresh", self.refresh, "F5")
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About Textbook Studio", self.about)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:  # type: ignore[no-untyped-def]
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in recent_projects():
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_project_at(p))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def _on_mode_changed(self, index: int) -> None:
        name = self.tabs.tabText(index)
        if name in LAZY_TABS and name not in self.views:
            self._build_lazy_tab(index, name)
        if self.tabs.widget(index) is self.label_view:
            # "pages matching the corpus search" means the search as it stands now
            self.label_view.search_query = self.corpus.model.query
            self.label_view.setFocus()

    def _build_lazy_tab(self, index: int, name: str) -> None:
        module_name, class_name = LAZY_TABS[name]
        assert self.project is not None and self.store is not None
        try:
            view_class = getattr(importlib.import_module(module_name), class_name)
            view = view_class(self.project, self.store)
        except Exception as exc:  # a fault of the studio's, or a project file it trips on
            log.exception("the %s view could not be built", name)
            self._show_unbuilt(index, name, exc)
            return
        self.views[name] = view
        # a view that changes what the corpus list shows says so with a `corpus_changed` signal
        changed = getattr(view, "corpus_changed", None)
        if changed is not None:
            changed.connect(lambda *_: self.corpus.refresh())
        placeholder = self.tabs.widget(index)
        self.tabs.blockSignals(True)
        self.tabs.removeTab(index)
        self.tabs.insertTab(index, view, name)
        self.tabs.setCurrentIndex(index)
        self.tabs.blockSignals(False)
        placeholder.deleteLater()

    def _show_unbuilt(self, index: int, name: str, exc: Exception) -> None:
        """Say in the tab itself why its view could not be built (it stayed blank, with the
        reason only on stderr), and offer to try again once the cause is fixed."""
        placeholder = self.tabs.widget(index)
        layout = placeholder.layout() or QVBoxLayout(placeholder)
        while layout.count():
            item = layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        note = QLabel(
            f"<b>The {html.escape(name)} view could not be opened.</b><br>"
            f"{html.escape(type(exc).__name__)}: {html.escape(str(exc)[:500])}<br><br>"
            "Nothing in the project was changed. If a file of the project is damaged, "
            "restore or remove it and try again; the log has the details.",
            objectName="unbuiltNote",
            wordWrap=True,
        )
        note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        retry = QPushButton("Try again", objectName="unbuiltRetry")
        retry.clicked.connect(lambda: self._build_lazy_tab(self.tabs.indexOf(placeholder), name))
        layout.addWidget(note)
        layout.addWidget(retry, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)

    def view(self, name: str) -> QWidget:
        """The view of mode ``name``, built if it was not yet (tests and the self-test use this)."""
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index) == name:
                self.tabs.setCurrentIndex(index)
                return self.views.get(name) or self.tabs.widget(index)
        raise KeyError(name)

    # -- projects ------------------------------------------------------------------------------

    def open_project(self, project: Project) -> None:
        if self.import_op is not None and self.import_op.running:
            QMessageBox.information(self, "Import running", "Wait for the import to finish.")
            return
        # the new project's widgets are made before anything of the open one is let go: a
        # project that cannot be shown leaves the window on the one it was showing
        store = project.store()
        try:
            label_view = LabelView(project, store)
            document = DocumentView(project=project)
            corpus = CorpusView(store)
        except BaseException:
            store.close()
            raise
        if self.store is not None:
            self.corpus.shut_down()
            self.store.close()
        if self.label_view is not None:
            self.label_view.close_session()
        self.project, self.store = project, store
        self.corpus, self.document, self.label_view = corpus, document, label_view
        try:
            if self.remember:
                remember_project(project.root)
        except OSError as exc:  # the list of recent projects is a convenience, not the project
            log.warning("cannot update the recent projects list: %s", exc)
        self.corpus.document_selected.connect(self.open_document)
        self.document.relabel_requested.connect(self.relabel)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.corpus)
        splitter.addWidget(self.document)
        splitter.setSizes([640, 760])
        self.label_view.document.relabel_requested.connect(self.relabel)
        self.tabs = QTabWidget(objectName="modes")
        self.tabs.addTab(splitter, "Corpus")
        self.tabs.addTab(self.label_view, "Label")
        # the other modes are built on first use: they bring pyqtgraph (and more) with them
        self.views: dict[str, QWidget] = {}
        for name in LAZY_TABS:
            self.tabs.addTab(QWidget(), name)
        self.tabs.currentChanged.connect(self._on_mode_changed)
        old = self.centralWidget()
        self.setCentralWidget(self.tabs)
        if old is not None:
            old.deleteLater()
        self.setWindowTitle(f"Textbook Studio — {project.name}")
        self.status_label.setText(f"Project {project.root}")
        self._fill_recent()

    def open_project_at(self, path: Path, *, create: bool = False) -> None:
        try:
            self.open_project(open_project_waiting(path, create=create, parent=self))
        except ProjectError as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))
        except Exception as exc:  # a fault of the studio's: said, logged, the window kept
            log.exception("opening %s failed", path)
            QMessageBox.warning(
                self,
                "Cannot open project",
                f"{path} could not be opened ({type(exc).__name__}: {exc}); "
                "the project that was open stays open.",
            )

    def choose_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a project folder")
        if path:
            self.open_project_at(Path(path))

    def choose_new_project(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Choose or create an empty folder for the project"
        )
        if path:
            self.open_project_at(Path(path), create=True)

    # -- importing -----------------------------------------------------------------------------

    def choose_import_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import files")
        if paths:
            self.import_paths([Path(p) for p in paths])

    def choose_import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder")
        if path:
            self.import_paths([Path(path)])

    def import_paths(self, paths: list[Path]) -> Op | None:
        """Import in the background, with progress and cancel in the status bar."""
        if self.import_op is not None and self.import_op.running:
            self.status_label.setText("An import is already running; drop again when it is done.")
            return None
        assert self.project is not None
        project = self.project

        def work(task):  # type: ignore[no-untyped-def]
            with project.store() as store:
                return import_paths(store, paths, task=task)

        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)
        self.status_label.setText(f"Importing {len(paths)} item(s)…")
        op = run_op(self, work)
        op.on_progress(self._on_import_progress).on_success(self._on_import_done)
        op.on_failure(self._on_import_failed)
        self.import_op = op
        return op

    def cancel_import(self) -> None:
        if self.import_op is not None:
            self.import_op.cancel()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("Cancelling: the current file is rolled back…")

    def _on_import_progress(self, done: int, total: int, msg: str) -> None:
        self.progress.setValue(int(1000 * done / total) if total else 0)
        self.status_label.setText(f"Importing {msg}")

    def _on_import_done(self, report: ImportReport) -> None:
        self._end_import()
        failed = len(report.failed_files)
        self.status_label.setText(
            f"Imported {plural(report.imported, 'document')}, "
            f"skipped {plural(report.duplicates, 'duplicate')}"
            + (f", {plural(failed, 'file')} failed" if failed else "")
            + (" (cancelled)" if report.cancelled else "")
        )
        self.corpus.refresh()
        self.report_dialog = ImportReportDialog(report, self)
        self.report_dialog.show()
        self.import_finished.emit(report)

    def _on_import_failed(self, message: str, details: str) -> None:
        self._end_import()
        self.corpus.refresh()
        box = QMessageBox(QMessageBox.Icon.Critical, "Import failed", message, parent=self)
        box.setDetailedText(details)
        box.show()
        self.import_failed.emit(message)

    def _end_import(self) -> None:
        self.progress.hide()
        self.cancel_button.hide()

    # -- drag and drop ---------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        paths = [Path(u.toLocalFile()) for u in urls if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            op = self.import_paths(paths)
            remote = len(urls) - len(paths)
            if op is not None and remote:  # web addresses are not fetched: the studio is offline
                self.status_label.setText(
                    f"Importing {len(paths)} item(s)… ({remote} web address(es) left out: the "
                    "studio imports files, it never fetches pages)"
                )

    def refresh(self) -> None:
        """Read the project again: what another program (a `studio import` in a terminal, a
        second studio) stored since shows in the list, its totals and the open document."""
        if self.store is None:
            return
        self.corpus.refresh()
        page = self.document.page
        if page is not None:
            self.open_document(page.record.id)
        self.status_label.setText(
            f"Project {self.project.root if self.project else ''} · read again"
        )

    # -- documents -----------------------------------------------------------------------------

    def open_document(self, doc_id: int) -> None:
        assert self.store is not None
        try:
            self.document.show_page(load_page(self.store, doc_id))
        except KeyError:
            self.document.show_nothing()

    def relabel(self, doc_id: int, locator: str, label: str, shown: str | None = None) -> None:
        assert self.project is not None
        project = self.project

        def work(_task):  # type: ignore[no-untyped-def]
            with project.store() as store:
                return relabel_block(store, doc_id, locator, label, shown=shown)

        op = run_op(self, work)
        op.on_success(self._on_relabelled).on_failure(
            lambda msg, _details: QMessageBox.warning(self, "Could not change the block", msg)
        )

    def _on_relabelled(self, page) -> None:  # type: ignore[no-untyped-def]
        assert self.store is not None
        for view in (self.document, self.label_view.document):
            if view.page is not None and view.page.record.id == page.record.id:
                view.show_page(load_page(self.store, page.record.id))
        self.corpus.refresh_rows()

    # -- the rest --------------------------------------------------------------------------------

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About Textbook Studio",
            f"<b>Textbook Studio {__version__}</b><p>Curate the training data of small "
            "language models: keep the web pages that teach, and see why.</p>"
            "<p>The segmentation model was trained on WCXB, the Web Content eXtraction "
            "Benchmark (Murrough Foley), CC-BY-4.0.</p>"
            f"<p>Log: {html.escape(str(data_dir() / LOG_NAME))}</p>",
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.import_op is not None and self.import_op.running:
            self.import_op.cancel()
        if self.label_view is not None:
            self.label_view.close_session()
        teacher_view = getattr(self, "views", {}).get("Teacher")
        if teacher_view is not None:
            teacher_view.shut_down()  # a batch stops between tokens, and resumes next time
        from studio.teachers.config import close_teachers

        close_teachers()  # a local model is freed once the reply in flight has stopped
        if self.store is not None:
            self.corpus.shut_down()
            self.store.close()
            self.store = None
        event.accept()
