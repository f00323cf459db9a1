"""The Classifier tab: train on labels, read the metrics, score, move the threshold."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.classify.features import FEATURE_SETS
from studio.classify.models import KINDS
from studio.classify.train import comparisons
from studio.ui.qt_corpus import COLUMNS
from tests.core.test_classify import make_labelled_project


def test_train_score_and_choose_a_threshold(qtbot, window, screenshot) -> None:
    make_labelled_project(window.store, labelled=80, unlabelled=40)
    view = window.view("Classifier")  # built on first use
    assert window.tabs.currentWidget() is view
    assert "No classifier yet" in view.reason.text()

    with qtbot.waitSignal(view.trained, timeout=120_000) as trained:
        view.train_button.click()
    version = trained.args[0]
    assert view.versions.currentData() == version
    # every feature set x model, cross-validated
    assert view.table.rowCount() == len(comparisons(list(FEATURE_SETS), KINDS))
    assert "F1" in view.reason.text() and "cross-validation" in view.reason.text()
    assert "96 labels on 80 pages" in view.reason.text()  # two annotators on 16 of the pages
    assert view.pr_plot.getPlotItem().listDataItems()  # curves drawn from the stored metrics
    # one accuracy for every model: of the keep decision (the stored one is of rounded scores
    # for ridge and forest, and read 0.29 beside logistic's 0.99 on the same pages)
    assert view.table.horizontalHeaderItem(5).text() == "Keep accuracy"
    for r, row in enumerate(view.metas[version]["cv_table"]):
        assert view.table.item(r, 5).text() == f"{row['metrics']['keep_accuracy']:.3f}"
    (tn, fp), (fn, tp) = view.metas[version]["metrics"]["keep_confusion"]
    chosen = [r for r in range(view.table.rowCount()) if view.table.item(r, 0).font().bold()]
    assert view.table.item(chosen[0], 5).text() == f"{(tn + tp) / (tn + fp + fn + tp):.3f}"

    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()
    assert view.curve is not None and len(view.curve.scores) == 120
    # the plot shows every score and the tallest bar (it kept the empty plot's 0-1 view)
    (x0, x1), (y0, y1) = view.hist_plot.viewRange()
    scores = view.curve.scores
    assert x0 <= scores.min() and x1 >= scores.max() and y1 >= view.curve.histogram(40)[0].max()
    view.slider.setValue(0)
    assert "keeping <b>100% of pages</b>" in view.keep_label.text()
    view.slider.setValue(400)
    pages, _words = view.curve.kept(view.threshold_line.value())
    assert f"({pages:,} of 120)" in view.keep_label.text()
    window.resize(1500, 950)
    screenshot(window, "classifier-view")

    # the corpus view now shows, sorts and filters by the scores
    corpus = window.corpus
    qtbot.waitUntil(lambda: corpus.model.query.score_version == version, timeout=10_000)
    score_col = [c[1] for c in COLUMNS].index("score")
    corpus.table.sortByColumn(score_col, Qt.SortOrder.DescendingOrder)
    shown = [corpus.model.row(i)["score"] for i in range(corpus.model.rowCount())]
    assert shown == sorted(shown, reverse=True) and len(shown) == 120
    corpus.min_score.setValue(0.5)  # applied by the search box's debounce timer, as typed
    qtbot.waitUntil(lambda: not corpus._search_timer.isActive(), timeout=5_000)
    assert corpus.model.rowCount() == sum(s >= 0.5 for s in shown)
    corpus.labelled_only.setChecked(True)
    assert corpus.model.rowCount() <= 80
    window.tabs.setCurrentIndex(0)
    screenshot(window, "corpus-with-scores")

    # a newer version that has not scored the corpus: the list keeps the scores it has (it
    # once switched to the new version and showed a blank column and "0 shown")
    from studio.classify.train import train_classifier

    filtered = corpus.model.rowCount()
    assert filtered > 0
    train_classifier(window.project, window.store, features="hand", model="ridge")
    with qtbot.waitSignal(corpus.stats_ready, timeout=10_000):
        corpus.refresh()
    assert corpus.model.query.score_version == version and corpus.min_score.isEnabled()
    assert corpus.model.rowCount() == filtered


@pytest.mark.slow
def test_transformer_embeddings_chosen_by_folder(qtbot, window, screenshot, tmp_path) -> None:
    from studio.classify.features import EMBEDDING_SETS
    from tests.core.test_embed import make_tiny_model

    make_labelled_project(window.store, labelled=40, unlabelled=10)
    view = window.view("Classifier")
    assert not view.embed_check.isChecked() and "all-MiniLM-L6-v2" in view.embedding_label.text()
    assert not view.embedding_reset.isVisible()

    # a folder that is not a model is refused with the reason; nothing changes
    (tmp_path / "notes").mkdir()
    assert not view.set_embedding_folder(str(tmp_path / "notes"))
    assert "no config.json" in view.failed_box.text()
    view.failed_box.close()
    assert view.embedding_path is None and not view.embed_check.isChecked()

    tiny = make_tiny_model(tmp_path / "tiny-bert")
    assert view.set_embedding_folder(str(tiny))
    assert view.embed_check.isChecked() and "tiny-bert" in view.embedding_label.text()
    assert view.embedding_reset.isVisible()
    with qtbot.waitSignal(view.trained, timeout=300_000):
        view.train_button.click()
    rows = {view.table.item(r, 0).text() for r in range(view.table.rowCount())}
    assert rows == set(FEATURE_SETS) | set(EMBEDDING_SETS)
    assert view.table.rowCount() == len(comparisons(sorted(rows), KINDS))
    assert "compared, as asked" in view.reason.text()
    window.resize(1500, 950)
    screenshot(window, "classifier-embeddings")

    view.embedding_reset.click()
    assert view.embedding_path is None and "all-MiniLM-L6-v2" in view.embedding_label.text()


def test_malformed_model_folders_are_refused_with_a_message(qtbot, window, tmp_path) -> None:
    """The hostile folders of a GUI sweep: each is refused in a warning that names the file,
    and the model in use, its label and the embedding choice stay as they were."""
    from tests.core.test_embed import write_weights

    view = window.view("Classifier")
    label = view.embedding_label.text()
    spoilt = [  # (file, what it holds): bad encoding, wrong shape, absurd width, garbage
        ("modules.json", b"\xff garbage"),
        ("modules.json", b"[1, 2]"),
        ("config.json", b"\xfe\xff garbage"),
        ("config.json", b'{"hidden_size": 4}'),
        ("model.safetensors", b"garbage"),
    ]
    for i, (name, data) in enumerate(spoilt):
        folder = write_weights(tmp_path / f"model{i}")
        (folder / name).write_bytes(data)
        assert not view.set_embedding_folder(str(folder))
        assert view.failed_box is not None and view.failed_box.isVisible()
        assert str(folder / name) in view.failed_box.text(), view.failed_box.text()
        view.failed_box.close()
        assert view.embedding_path is None and not view.embed_check.isChecked()
        assert view.embedding_label.text() == label

    # a folder that passes the cheap checks is taken; its name is shown as text, not markup
    named = write_weights(tmp_path / "plausible", _name_or_path="<i>tiny & co")
    assert view.set_embedding_folder(str(named))
    assert "&lt;i&gt;tiny &amp; co" in view.embedding_label.text()
    assert view.embedding_path == str(named) and view.embed_check.isChecked()


# -- scoring in a child process ----------------------------------------------------------------


def _trained_view(window, labelled: int = 60, unlabelled: int = 30):
    from studio.classify.train import train_classifier

    make_labelled_project(window.store, labelled=labelled, unlabelled=unlabelled)
    report = train_classifier(window.project, window.store, features="hand", model="ridge")
    view = window.view("Classifier")
    view.reload_versions()
    return view, str(report.version["id"])


def _listed(qtbot, window, version: str) -> None:
    """The corpus list reloads with the version's scores (on a reader thread)."""
    qtbot.waitUntil(lambda: window.corpus.model.query.score_version == version, timeout=10_000)


def _scored(window, version: str) -> int:
    row = window.store.conn.execute(
        "SELECT count(*) FROM classifier_scores WHERE version = ?", (version,)
    ).fetchone()
    return int(row[0])


def test_score_in_a_child_process(qtbot, window, screenshot) -> None:
    view, version = _trained_view(window)
    assert view.engine.currentData() == "thread"  # small corpora stay in the studio
    view.set_engine("local")
    assert not view.address.isVisible() and not view.workers.isVisible()
    window.resize(1500, 950)
    events: list[dict] = []
    view.job.event.connect(events.append)
    with qtbot.waitSignal(view.corpus_changed, timeout=120_000) as changed:
        view.score_button.click()
        assert view.job.running() and not view.score_button.isEnabled()
        assert view.cancel_button.isVisible()
        screenshot(window, "classifier-scoring-child")
    assert changed.args == [version]
    assert view.job.args[:2] == ["score", str(window.project.root)]
    assert "--progress-json" in view.job.args
    assert any(e["event"] == "progress" for e in events)
    assert events[-1]["event"] == "end" and events[-1]["scored"] == 90
    assert _scored(window, version) == 90
    assert view.curve is not None and len(view.curve.scores) == 90
    assert "Scored 90 pages with 0001-hand-ridge in a child process" in view.score_status.text()
    _listed(qtbot, window, version)
    assert view.score_button.isEnabled() and not view.cancel_button.isVisible()
    screenshot(window, "classifier-scored-child")


def test_cancel_scoring_on_worker_processes_then_resume(qtbot, window, screenshot) -> None:
    import json

    view, version = _trained_view(window)
    window.resize(1500, 950)
    view.set_engine("processes")
    assert view.workers.isVisible() and view.shard_rows.isVisible()
    assert not view.address.isVisible()
    view.shard_rows.setValue(10)  # nine shards
    folder = window.project.root / "runs" / f"score-{version}"

    def consistent() -> int:
        """Every score stored belongs to a shard marked done: nothing half-written."""
        done = [json.loads(p.read_text("utf-8")) for p in folder.glob("*.done")]
        assert _scored(window, version) == sum(d["rows"] for d in done)
        return len(done)

    # cancelled while the shards are written, before any worker has started
    cancel_on = ["writing shards"]

    def cancel_at(event: dict) -> None:
        if event.get("message") in cancel_on and not view.job.cancelling:
            if "shard-" in event["message"]:
                screenshot(window, "classifier-scoring-workers")
            view.cancel()

    view.job.event.connect(cancel_at)
    with qtbot.waitSignal(view.job.ended, timeout=120_000) as ended:
        view.score_button.click()
        assert "on worker processes…" in view.score_status.text()  # it said a child process
    assert ended.args[0] == "cancelled"
    assert "Cancelled" in view.score_status.text()
    assert view.failed_box is None and view.score_button.isEnabled()
    assert consistent() == 0 and _scored(window, version) == 0

    # cancelled once the first shard is in: the workers die with the group, what is in stays
    cancel_on[:] = [f"shard-{i:05d}.parquet done" for i in range(9)]
    with qtbot.waitSignal(view.job.ended, timeout=120_000) as ended:
        view.score_button.click()
    assert ended.args[0] in ("cancelled", "done")  # the last shards may beat the signal
    assert view.failed_box is None
    assert consistent() >= 1

    view.job.event.disconnect(cancel_at)
    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()
    assert _scored(window, version) == 90 and consistent() == 9
    assert "in worker processes" in view.score_status.text()
    _listed(qtbot, window, version)
    assert view.curve is not None and len(view.curve.scores) == 90


def test_a_failing_child_shows_its_error(qtbot, window) -> None:
    view, _version = _trained_view(window, labelled=30, unlabelled=0)
    view.set_engine("local")
    view.versions.blockSignals(True)  # a version the child does not know
    view.versions.addItem("0099-gone", "0099-gone")
    view.versions.setCurrentIndex(view.versions.count() - 1)
    view.versions.blockSignals(False)
    with qtbot.waitSignal(view.job.ended, timeout=120_000) as ended:
        view.score_button.click()
    assert ended.args[0] == "failed"
    assert view.job.error == "no classifier version 0099-gone (known: 0001-hand-ridge)"
    assert "no classifier version 0099-gone" in view.failed_box.text()
    assert '"event": "error"' in view.failed_box.detailedText()
    assert "Scoring failed" in view.score_status.text()
    assert window.isVisible() and view.score_button.isEnabled()
    assert _scored(window, "0001-hand-ridge") == 0


def test_a_killed_child_leaves_the_studio_up(qtbot, window) -> None:
    import os
    import signal

    view, version = _trained_view(window, labelled=30, unlabelled=30)
    view.set_engine("processes")
    view.shard_rows.setValue(10)

    def kill(event: dict) -> None:  # the job dies without a word, as if the system killed it
        if view.job.running():
            os.killpg(int(view.job.proc.processId()), signal.SIGKILL)

    view.job.event.connect(kill)
    with qtbot.waitSignal(view.job.ended, timeout=120_000) as ended:
        view.score_button.click()
    assert ended.args[0] == "crashed"
    assert "stopped abruptly" in view.failed_box.text()
    assert "ended abruptly" in view.failed_box.detailedText()
    assert window.isVisible() and view.score_button.isEnabled()
    view.job.event.disconnect(kill)
    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()  # the rerun writes the shards again and finishes
    assert _scored(window, version) == 60
    _listed(qtbot, window, version)


# -- damaged versions, hostile addresses and thresholds ------------------------------------------


def _two_versions(window) -> tuple[str, str]:
    from studio.classify.train import train_classifier

    make_labelled_project(window.store, labelled=60, unlabelled=30)
    first = train_classifier(window.project, window.store, features="hand", model="ridge")
    second = train_classifier(window.project, window.store, features="hand", model="ridge")
    return str(first.version["id"]), str(second.version["id"])


def _folder(window, version: str):
    row = next(r for r in window.store.classifier_versions() if r["id"] == version)
    return window.project.root / row["path"]


DAMAGES = {
    "meta.json deleted": (lambda f: (f / "meta.json").unlink(), "meta.json is missing"),
    "meta.json garbage": (
        lambda f: (f / "meta.json").write_bytes(b"\xff{garbage"),
        "meta.json is not UTF-8 text",
    ),
    "meta.json a list": (
        lambda f: (f / "meta.json").write_text("[]", "utf-8"),
        "meta.json holds a list",
    ),
    "folder deleted": (lambda f: __import__("shutil").rmtree(f), "its folder is missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_version_is_listed_with_why_and_cannot_score(
    qtbot, window, damage, screenshot
) -> None:
    """The tab opens over a version whose files were deleted or overwritten: every version is
    listed, the intact one is chosen, and the damaged one says why and scores nothing."""
    intact, damaged = _two_versions(window)
    spoil, reason = DAMAGES[damage]
    spoil(_folder(window, damaged))
    view = window.view("Classifier")  # built now, over the damaged files
    assert [view.versions.itemData(i) for i in range(view.versions.count())] == [intact, damaged]
    assert view.versions.currentData() == intact  # the latest one that can be used
    assert view.score_button.isEnabled() and "cross-validation" in view.reason.text()
    index = view.versions.findData(damaged)
    assert "damaged" in view.versions.itemText(index)
    assert reason in view.versions.itemData(index, Qt.ItemDataRole.ToolTipRole)

    view.versions.setCurrentIndex(index)
    assert f"{damaged} cannot be used" in view.reason.text() and reason in view.reason.text()
    assert view.table.rowCount() == 0 and not view.score_button.isEnabled()
    window.resize(1400, 900)
    screenshot(window, f"classifier-damaged-version-{damage}")
    view.score()  # from code, as the button is off: refused with the reason
    assert view.op is None and not view.job.running()
    assert view.failed_box is not None and reason in view.failed_box.text()
    assert _scored(window, damaged) == 0

    view.versions.setCurrentIndex(view.versions.findData(intact))
    assert view.score_button.isEnabled() and view.table.rowCount() > 0
    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()
    assert _scored(window, intact) == 90


def test_a_version_whose_meta_json_lost_its_metrics_still_shows_and_scores(window) -> None:
    import json

    intact, edited = _two_versions(window)
    meta_path = _folder(window, edited) / "meta.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    del meta["metrics"]
    meta["cv_table"] = "not a table"
    meta_path.write_text(json.dumps(meta), "utf-8")
    view = window.view("Classifier")
    assert view.versions.currentData() == edited and view.score_button.isEnabled()
    text = view.reason.text()
    assert "cross-validation" in text  # the description is intact
    assert "cannot give its comparison table, its cross-validated metrics" in text
    assert view.table.rowCount() == 0


def test_a_version_from_before_keep_accuracy_shows_it_for_its_chosen_row(window) -> None:
    """Versions saved before the column existed: the chosen row's figure comes from its keep
    confusion matrix; the other rows say the figure was not stored."""
    import json

    from studio.classify.train import train_classifier

    make_labelled_project(window.store, labelled=60, unlabelled=10)
    edited = str(train_classifier(window.project, window.store, folds=3).version["id"])
    meta_path = _folder(window, edited) / "meta.json"
    meta = json.loads(meta_path.read_text("utf-8"))
    del meta["metrics"]["keep_accuracy"]
    for row in meta["cv_table"]:
        del row["metrics"]["keep_accuracy"]
    meta_path.write_text(json.dumps(meta), "utf-8")
    view = window.view("Classifier")
    assert view.versions.currentData() == edited
    (tn, fp), (fn, tp) = meta["metrics"]["keep_confusion"]
    cells = [view.table.item(r, 5) for r in range(view.table.rowCount())]
    bold = [c for c in cells if c.font().bold()]
    assert [c.text() for c in bold] == [f"{(tn + tp) / (tn + fp + fn + tp):.3f}"]
    others = [c for c in cells if not c.font().bold()]
    assert others and all(c.text() == "–" and "not stored" in c.toolTip() for c in others)


@pytest.mark.parametrize(
    ("address", "what"),
    [("\x00", "U+0000"), ("host:6379\x00--x", "U+0000"), ("ray://a b:10001", "a space")],
)
def test_a_ray_address_with_control_characters_is_refused(window, address, what) -> None:
    """The child's arguments end at a NUL: such an address once scored on another Ray."""
    view, version = _trained_view(window)
    view.set_engine("ray")
    view.address.setText(address)
    view.score_button.click()
    assert not view.job.running() and view.job.args == []  # no child was started
    assert f"{what} at position" in view.score_status.text()
    assert view.failed_box is not None and "ray://host:10001" in view.failed_box.text()
    assert _scored(window, version) == 0 and view.score_button.isEnabled()


def test_the_threshold_refuses_values_that_are_not_finite(qtbot, window) -> None:
    view, _version = _trained_view(window)
    with qtbot.waitSignal(view.corpus_changed, timeout=120_000):
        view.score_button.click()
    assert view.set_threshold(view._lo)
    before, summary = view.threshold_line.value(), view.keep_label.text()
    for value in (float("inf"), float("-inf"), float("nan")):
        assert not view.set_threshold(value)
        assert view.threshold_line.value() == before and view.keep_label.text() == summary
    assert view.set_threshold(1e308)  # finite, past every score: the slider stops at its end
    assert view.slider.value() == view.slider.maximum()
    assert "At classifier score ≥ 1e+308: keeping <b>0% of pages</b>" in view.keep_label.text()
    assert view.set_threshold(-1e308)
    assert view.slider.value() == 0 and "keeping <b>100% of pages</b>" in view.keep_label.text()
