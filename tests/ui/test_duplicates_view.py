"""The Duplicates tab: find clusters, open one, keep another document; check benchmarks and read
the shared span side by side; cancel; a broken benchmark file is reported, nothing changes."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt

from studio.bench.dedup import synthetic_texts
from studio.decontam import load_benchmark
from studio.dedup.corpus import clusters
from studio.ui.qt_duplicates import highlighted
from tests.core.test_dedup import add_docs, corpus


def fill_project(store) -> tuple[list[int], str]:
    ids = add_docs(store, corpus(synthetic_texts(80, 250, seed=11)))
    question = load_benchmark("gsm8k").items[7].text.splitlines()[0]
    [bad] = add_docs(store, ["Worked example for the class.\n" + question + "\nSolve it."])
    return [*ids, bad], question


def uncheck_all_but(view, keep: set[str]) -> None:
    for i in range(view.benchmarks.count()):
        item = view.benchmarks.item(i)
        on = item.data(Qt.ItemDataRole.UserRole) in keep
        item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


def test_clusters_keep_another_and_benchmark_hits_side_by_side(qtbot, window, screenshot) -> None:
    ids, question = fill_project(window.store)
    view = window.view("Duplicates")
    assert window.tabs.currentWidget() is view
    assert view.dedup_summary.text() == "Not run yet on this project."
    assert view.clusters.rowCount() == 0 and not view.dedup_progress.isVisible()

    with qtbot.waitSignal(view.deduplicated, timeout=60_000) as done:
        view.dedup_button.click()
    assert done.args[0].clusters == 2
    assert view.clusters.rowCount() == 2 and "2 clusters" in view.dedup_summary.text()
    view.clusters.selectRow(0)
    assert view.members.rowCount() == 3 and view.members.item(0, 1).text() == "✓ kept"
    assert not view.keep_button.isEnabled()  # the kept one is selected
    view.members.selectRow(2)
    chosen = view.members.item(2, 0).data(Qt.ItemDataRole.UserRole)
    assert view.keep_button.isEnabled() and view.member_text.toPlainText()
    with qtbot.waitSignal(view.kept_changed, timeout=30_000):
        view.keep_button.click()
    assert clusters(window.store)[0]["kept_doc_id"] == chosen
    assert view.members.item(0, 0).data(Qt.ItemDataRole.UserRole) == chosen
    assert view.members.item(1, 5).text().endswith(f"of document {chosen}, kept by a curator")

    uncheck_all_but(view, {"gsm8k", "hellaswag"})
    assert view.chosen_benchmarks() == ["gsm8k", "hellaswag"]
    with qtbot.waitSignal(view.decontaminated, timeout=60_000) as checked:
        view.decontam_button.click()
    assert checked.args[0].contaminated == 1
    assert view.hits.rowCount() == 1 and "gsm8k: 1" in view.decontam_summary.text()
    view.hits.selectRow(0)
    assert view.hits.item(0, 0).data(Qt.ItemDataRole.UserRole) == 0
    doc_html, item_html = view.doc_view.toHtml(), view.item_view.toHtml()
    assert "#ffd86b" in doc_html and "#ffd86b" in item_html
    words = question.split()
    assert words[3] in view.doc_view.toPlainText() and words[3] in view.item_view.toPlainText()
    assert "gsm8k item" in view.item_label.text() and str(ids[-1]) in view.doc_label.text()
    window.resize(1500, 1000)
    screenshot(window, "duplicates-view")


def test_cancel_and_a_broken_file_leave_the_results_as_they_were(
    qtbot, window, tmp_path: Path, screenshot
) -> None:
    fill_project(window.store)
    view = window.view("Duplicates")
    with qtbot.waitSignal(view.deduplicated, timeout=60_000):
        view.dedup_button.click()
    before = clusters(window.store)

    view.threshold.setValue(0.5)
    with qtbot.waitSignal(view.failed, timeout=60_000) as failed:
        view.dedup_button.click()
        view.cancel()  # before the op starts: the first check stops it
    assert failed.args[0].startswith("Cancelled")
    assert clusters(window.store) == before and view.dedup_button.isEnabled()
    assert not view.dedup_cancel.isVisible()

    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\x00\x01 not json\n{also not\n")
    view.add_benchmark_file(str(broken))
    uncheck_all_but(view, {str(broken)})
    with qtbot.waitSignal(view.failed, timeout=60_000) as failed:
        view.decontam_button.click()
    assert "broken.jsonl" in failed.args[0] and "no benchmark item" in failed.args[0]
    assert view.message_box is not None and view.message_box.isVisible()
    assert view.hits.rowCount() == 0 and view.decontam_button.isEnabled()

    partly = tmp_path / "partly.jsonl"  # one item, one broken line, one id without text
    partly.write_text('{"id": "a", "q": "What is a prime number?"}\n{also not\n{"id": "b"}\n')
    view.add_benchmark_file(str(partly))
    uncheck_all_but(view, {str(partly)})
    with qtbot.waitSignal(view.decontaminated, timeout=60_000) as checked:
        view.decontam_button.click()
    assert checked.args[0].skipped == {"partly": 2}
    told = view.message_box.text()
    assert "partly: 2 line(s) skipped: line 2: not JSON" in told and "line 3: no text" in told
    screenshot(view.message_box, "decontam-skipped-lines")

    uncheck_all_but(view, set())
    view.decontam_button.click()  # nothing chosen: told, nothing runs
    assert "at least one benchmark" in view.message_box.text() and view.op is not None


def test_highlighted_escapes_and_cuts_long_texts() -> None:
    text = "<script>alert(1)</script> " + "x" * 10_000 + " the span here " + "y" * 10_000
    start = text.index("the span")
    out = highlighted(text, start, start + len("the span here"), context=50)
    assert "<script>" not in out and "&lt;script&gt;" not in out  # cut away, and escaped
    assert "the span here</span>" in out and out.count("…") == 2 and len(out) < 500
    assert "&lt;b&gt;" in highlighted("<b>bold</b>", 0, 3)


def test_lsh_settings_are_explained_and_refused_before_a_run(qtbot, window, screenshot) -> None:
    view = window.view("Duplicates")
    # half the time at 0.68 and 56 % at 0.70 (the rough (1/b)^(1/r) said 0.72 beside that 56 %)
    assert "112 hashes a page; pairs about 0.68 similar" in view.lsh_note.text()
    assert "pairs at 0.70 56% of the time" in view.lsh_note.text()
    assert view.dedup_button.isEnabled()
    view.bands.setValue(512)
    view.rows.setValue(64)  # 32,768 hashes: the index refuses them
    assert "at most 4,096" in view.lsh_note.text() and not view.dedup_button.isEnabled()
    view.bands.setValue(1)
    view.rows.setValue(20)  # one band of 20 rows: pairs at 0.7 are almost never compared
    assert "would be missed" in view.lsh_note.text() and view.dedup_button.isEnabled()
    assert "(for 0.70: 13 × 8)" in view.lsh_note.text()
    window.resize(1500, 1000)
    screenshot(window, "duplicates-lsh-note")
    for threshold in (0.5, 0.7, 0.9):  # the suggestion is taken: the warning goes (it once
        view.threshold.setValue(threshold)  # suggested 14 x 9, which it warned about again)
        view.bands.setValue(1)
        view.rows.setValue(20)
        bands, rows = re.search(r"(\d+) × (\d+)\)", view.lsh_note.text()).groups()
        view.bands.setValue(int(bands))
        view.rows.setValue(int(rows))
        assert "would be missed" not in view.lsh_note.text()
    view.threshold.setValue(0.7)
    view.bands.setValue(14)
    view.rows.setValue(8)
    assert "would be missed" not in view.lsh_note.text()


def test_keepers_chosen_on_part_of_the_scores_are_flagged(qtbot, window, screenshot) -> None:
    ids, _ = fill_project(window.store)
    window.store.conn.execute(
        "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold, "
        "metrics, label_hash, n_labels, path) VALUES ('v1', 'now', 'hand', 'ridge', 3, '{}', "
        "'h', 0, 'x')"
    )
    window.store.add_scores("v1", [(d, 2.0, False) for d in ids[:10]])  # a run stopped early
    view = window.view("Duplicates")
    with qtbot.waitSignal(view.deduplicated, timeout=60_000):
        view.dedup_button.click()
    text = view.dedup_summary.text()
    assert "2 clusters" in text and "#9a6a00" in text
    assert f"classifier v1 has scored 10 of {len(ids)} documents" in text
    window.resize(1500, 1000)
    screenshot(window, "duplicates-partial-scores")
