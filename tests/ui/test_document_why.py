"""The document view's 'Why this score' tab: the latest classifier's reasons for a page."""

from __future__ import annotations

from studio.classify.train import train_classifier
from tests.core.test_classify import make_labelled_project


def _tab_titles(view) -> list[str]:  # type: ignore[no-untyped-def]
    return [view.tabs.tabText(i) for i in range(view.tabs.count())]


def test_why_this_score_reads_the_latest_classifier(qtbot, window, project, screenshot) -> None:
    with project.store() as store:
        ids = make_labelled_project(store, labelled=60, unlabelled=10)
    view = window.document
    assert _tab_titles(view)[-1] == "Why this score"
    # the label view leaves it out: an annotator scores a page without the classifier's view
    assert "Why this score" not in _tab_titles(window.label_view.document)

    window.open_document(ids[0])
    view.tabs.setCurrentWidget(view.why)
    qtbot.waitUntil(lambda: "No classifier trained yet" in view.why.toPlainText(), timeout=10_000)

    with project.store() as store:
        train_classifier(project, store, features="tfidf+hand", model="ridge", folds=3)
    window.open_document(ids[1])  # the tab is open: the new page is explained at once
    qtbot.waitUntil(lambda: "0001-tfidf_hand-ridge" in view.why.toPlainText(), timeout=20_000)
    text = view.why.toPlainText()
    assert "intercept" in text and "words (TF-IDF)" in text and "hand features" in text
    assert "kept" in text or "dropped" in text
    window.corpus.refresh()  # the pages were stored behind the window's back
    # until the counts come back, the header says it is counting: it said "No documents yet"
    # over the list of 70
    assert "No documents yet" not in window.corpus.summary.text()
    qtbot.waitUntil(lambda: "70 documents" in window.corpus.summary.text(), timeout=10_000)
    window.resize(1400, 900)
    screenshot(window, "document-why-score")
    # another page: the loaded classifier is reused, and the text follows the page
    window.open_document(ids[5])

    def next_page_explained() -> bool:
        now = view.why.toPlainText()
        return "0001-tfidf_hand-ridge" in now and now != text

    qtbot.waitUntil(next_page_explained, timeout=20_000)
    # the open page deleted by another program: said, not explained as an empty page
    with project.store() as store:
        store.conn.execute("PRAGMA foreign_keys = OFF")
        store.conn.execute("DELETE FROM documents WHERE id = ?", (ids[5],))
    view._explain(ids[5])
    qtbot.waitUntil(
        lambda: f"document {ids[5]} is no longer in the project" in view.why.toPlainText(),
        timeout=20_000,
    )
