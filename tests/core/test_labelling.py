"""Labelling sessions and agreement on a real project database."""

from __future__ import annotations

import pytest

from studio.classify.score import score_documents
from studio.classify.train import train_classifier
from studio.classify.versions import load_classifier, version_info
from studio.labelling import (
    LabelSession,
    agreement,
    annotator_problem,
    queue_ids,
    rubric_text,
    weighted_kappa,
)
from studio.project import Project
from studio.store import DocumentQuery, NewDocument, Store
from tests.core.test_classify import make_labelled_project


def _corpus(store: Store, n: int = 10) -> list[int]:
    imp = store.begin_import()
    src = store.add_source(imp, "/data/x.jsonl", 1, 1.0, "jsonl")
    out = []
    for i in range(n):
        text = f"document {i} " + ("about rivers " if i % 2 else "about prices ") * 3
        out.append(
            store.insert_document(
                NewDocument(
                    source_id=src,
                    content_hash=str(i),
                    kind="text",
                    raw=text,
                    main_text=text,
                    n_words=len(text.split()),
                    signal_words=len(text.split()),
                )
            )
        )
    return out


def test_a_session_stores_each_score_at_once_and_undoes(store: Store) -> None:
    ids = _corpus(store)
    session = LabelSession(store, "ana", queue_ids(store, "ana", seed=1))
    assert sorted(session.ids) == sorted(ids)
    first = session.current
    session.score(4)
    assert store.label_of(first, "ana") == 4  # committed, no save step
    second = session.current
    session.skip()
    session.score(0)
    assert session.given == 2
    assert session.undo() and store.label_of(session.current, "ana") is None
    assert session.undo() and session.current == first and store.label_of(first, "ana") is None
    assert not session.undo()
    assert second != first


def test_a_score_goes_to_the_page_shown_and_never_to_a_page_removed(store: Store) -> None:
    ids = _corpus(store, 4)
    session = LabelSession(store, "ana", ids)
    assert session.score(3, at=2) == ids[2] and session.current == ids[3]
    session.skip(at=0)
    assert session.current == ids[1]
    store.conn.execute("PRAGMA foreign_keys = OFF")
    store.conn.execute("DELETE FROM documents WHERE id = ?", (ids[1],))  # another program
    with pytest.raises(LookupError, match=f"page {ids[1]} is no longer in the project"):
        session.score(4)
    assert store.label_of(ids[1], "ana") is None and session.current == ids[1]
    session.skip()
    assert session.score(5) == ids[2] and store.label_of(ids[2], "ana") == 5


def test_undo_restores_an_earlier_score(store: Store) -> None:
    ids = _corpus(store, 2)
    store.set_label(ids[0], "ana", 2)
    session = LabelSession(store, "ana", [ids[0]])
    session.score(5)
    session.undo()
    assert store.label_of(ids[0], "ana") == 2


def test_queues_skip_what_the_annotator_labelled_and_follow_a_search(store: Store) -> None:
    ids = _corpus(store)
    store.set_label(ids[1], "ana", 3)
    assert ids[1] not in queue_ids(store, "ana")
    assert ids[1] in queue_ids(store, "ben")
    rivers = queue_ids(store, "ben", DocumentQuery(search="rivers"))
    assert rivers and all(
        i % 2 == 0 for i in rivers
    )  # odd documents (ids 2, 4, ...) mention rivers
    with pytest.raises(ValueError):
        LabelSession(store, "ana", ids).score(6)


def test_kappa_and_disagreements(store: Store) -> None:
    ids = _corpus(store, 6)
    for doc, a, b in zip(ids, [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 1], strict=True):
        store.set_label(doc, "ana", a)
        store.set_label(doc, "ben", b)
    (pair,) = agreement(store)
    assert (pair.a, pair.b, pair.shared) == ("ana", "ben", 6)
    assert 0 < pair.kappa < 1
    assert pair.disagreements == [(ids[5], 5, 1)]
    # keep at 3+: ana keeps 3, 4, 5 and ben 3, 4: one page split, kappa (6 - 1) / 6 agreement
    assert pair.split == [(ids[5], 5, 1)]
    assert pair.keep_kappa == pytest.approx((5 / 6 - 0.5) / (1 - 0.5))
    # a one-point gap across the threshold splits the decision; the score gap list misses it
    (pair,) = agreement(store, threshold=2)
    assert pair.split == [(ids[5], 5, 1)]
    store.set_label(ids[2], "ben", 3)
    (pair,) = agreement(store)
    assert pair.split == [(ids[2], 2, 3), (ids[5], 5, 1)] and pair.disagreements == [(ids[5], 5, 1)]
    assert weighted_kappa([0, 1, 1, 0], [0, 1, 0, 0], k=2) == pytest.approx(0.5)
    assert weighted_kappa([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)
    assert weighted_kappa([], []) is None


def test_the_project_rubric_overrides_the_shipped_one(tmp_path) -> None:
    assert "Educational value" in rubric_text(None)
    (tmp_path / "rubric.md").write_text("# Our own rubric")
    assert rubric_text(tmp_path) == "# Our own rubric"
    (tmp_path / "rubric.md").write_bytes(b"# R\xe9sum\xe9 of our rubric")  # saved as Latin-1
    text = rubric_text(tmp_path)
    assert text.startswith("*This project's rubric.md is not UTF-8 text")
    assert text.endswith("# R\ufffdsum\ufffd of our rubric")
    # a megabyte on one line froze the Label tab for 38 s: the start of it, said so
    (tmp_path / "rubric.md").write_text("# Long\n" + "é" * 1_000_000, "utf-8")
    text = rubric_text(tmp_path)
    assert text.startswith("*This project's rubric.md is longer than a rubric (32 KB)")
    assert "\ufffd" not in text and len(text) < 20_000  # the cut inside a character dropped
    (tmp_path / "rubric.md").unlink()
    (tmp_path / "rubric.md").mkdir()  # not a file: the shipped rubric
    assert "Educational value" in rubric_text(tmp_path)


# -- queues over a classifier's scores ---------------------------------------------------------


def _scored(project: Project, store: Store, model: str) -> tuple[str, dict[int, float]]:
    """A trained and scored classifier on a generated project: (version, doc id -> score)."""
    make_labelled_project(store, labelled=60, unlabelled=60)
    version = train_classifier(project, store, features="hand", model=model).version["id"]
    score_documents(project, store)
    rows = store.conn.execute(
        "SELECT doc_id, score FROM classifier_scores WHERE version = ?", (version,)
    )
    return version, {int(r[0]): float(r[1]) for r in rows}


def _mean_labels(store: Store) -> dict[int, float]:
    return {doc_id: mean for doc_id, mean, _ in store.label_targets()}


def test_score_queues_need_a_scored_classifier(project: Project, store: Store) -> None:
    make_labelled_project(store, labelled=60, unlabelled=10)
    with pytest.raises(ValueError, match="no classifier trained yet"):
        queue_ids(store, "ana", strategy="uncertainty")
    train_classifier(project, store, features="hand", model="ridge")
    for strategy in ("uncertainty", "band", "disagreement"):
        with pytest.raises(ValueError, match="score the corpus with a classifier first"):
            queue_ids(store, "ana", strategy=strategy, band=(0, 5))
    with pytest.raises(ValueError, match="unknown queue"):
        queue_ids(store, "ana", strategy="loudest")


def test_uncertainty_puts_what_sits_on_the_cut_first(project: Project, store: Store) -> None:
    version, scores = _scored(project, store, "ridge")
    cut = version_info(store).cut
    assert cut == load_classifier(project, store).model.cut
    labelled_by_ana = {d for d, a, _ in store.label_triples() if a == "ana"}
    queue = queue_ids(store, "ana", strategy="uncertainty", limit=20)
    expected = sorted(
        (d for d in scores if d not in labelled_by_ana), key=lambda d: (abs(scores[d] - cut), d)
    )
    assert queue == expected[:20]
    # ben labelled only every fifth page, so his queue holds pages ana has scored
    assert set(queue_ids(store, "ben", strategy="uncertainty")) & labelled_by_ana
    # a query narrows the queue: the shortest pages only
    short = set(store.document_ids(DocumentQuery(max_words=70)))
    narrowed = queue_ids(store, "ana", DocumentQuery(max_words=70), strategy="uncertainty")
    assert narrowed and set(narrowed) <= short
    assert narrowed == [d for d in expected if d in short]


def test_a_band_queue_is_the_band_in_a_seeded_order(project: Project, store: Store) -> None:
    _, scores = _scored(project, store, "ridge")
    lo, hi = 1.5, 3.5
    band = [d for d, s in scores.items() if lo <= s <= hi]
    first = queue_ids(store, "ana", strategy="band", band=(lo, hi), seed=1)
    assert sorted(first) == sorted(band) and len(band) > 10
    assert queue_ids(store, "ana", strategy="band", band=(lo, hi), seed=1) == first
    assert queue_ids(store, "ana", strategy="band", band=(lo, hi), seed=2) != first
    assert first != sorted(first)
    assert len(queue_ids(store, "ana", strategy="band", band=(lo, hi), limit=5)) == 5
    with pytest.raises(ValueError, match="needs a score band"):
        queue_ids(store, "ana", strategy="band")
    with pytest.raises(ValueError, match="empty score band"):
        queue_ids(store, "ana", strategy="band", band=(3, 1))


def test_disagreement_with_a_regressor_is_the_widest_gap_first(
    project: Project, store: Store
) -> None:
    _, scores = _scored(project, store, "ridge")
    labels = _mean_labels(store)
    store.set_label(next(iter(labels)), "ana", 5)  # make sure at least one page is far off
    labels = _mean_labels(store)
    queue = queue_ids(store, "ana", strategy="disagreement", gap=1.0)
    gaps = {d: abs(scores[d] - labels[d]) for d in labels}
    expected = sorted((d for d in labels if gaps[d] >= 1.0), key=lambda d: (-gaps[d], d))
    assert queue and queue == expected
    assert len(queue_ids(store, "ana", strategy="disagreement", gap=0.0)) == len(labels)


def test_disagreement_with_logistic_is_the_wrong_side_of_the_threshold(
    project: Project, store: Store
) -> None:
    version, scores = _scored(project, store, "logistic")
    info = version_info(store, version)
    labels = _mean_labels(store)
    keep = dict(store.conn.execute("SELECT doc_id, keep FROM classifier_scores").fetchall())
    # turn three kept pages into dropped ones by the curators' word
    for doc_id in [d for d in labels if keep[d]][:3]:
        for annotator in ("ana", "ben"):
            if store.label_of(doc_id, annotator) is not None:
                store.set_label(doc_id, annotator, 0)
    labels = _mean_labels(store)
    queue = queue_ids(store, "ana", strategy="disagreement")
    wrong = [d for d in labels if bool(keep[d]) != (labels[d] >= info.threshold)]
    side = {d: float(labels[d] >= info.threshold) for d in wrong}
    assert len(queue) >= 3
    assert queue == sorted(wrong, key=lambda d: (-abs(scores[d] - side[d]), d))


def test_pages_annotators_disagree_on_come_back_widest_first(store: Store) -> None:
    ids = _corpus(store, 6)
    for doc, a, b in zip(ids, [0, 5, 2, 4, 1, 2], [1, 1, 4, 4, 4, 3], strict=True):
        store.set_label(doc, "ana", a)
        store.set_label(doc, "ben", b)
    store.set_label(ids[0], "carla", 3)  # a third annotator widens the first page's spread to 3
    queue = queue_ids(store, "ana", strategy="annotators", threshold=5)
    # spreads: ids[0] 3, ids[1] 4, ids[2] 2, ids[3] 0, ids[4] 3, ids[5] 1 -> 2 or more, widest first
    assert queue == [ids[1], ids[0], ids[4], ids[2]]
    # one point apart across the keep threshold (a 2 and a 3) is a split decision: it comes too
    assert queue_ids(store, "ana", strategy="annotators") == [*queue, ids[5]]
    assert queue_ids(
        store, "ana", DocumentQuery(search="rivers"), strategy="annotators", threshold=5
    ) == [i for i in queue if i % 2 == 0]


def test_the_random_queue_draws_from_the_whole_corpus(store: Store) -> None:
    ids = _corpus(store, 30)
    for doc in ids[:20]:
        store.set_label(doc, "ana", 1)
    # the first 20 are labelled: a queue of 5 must still find unlabelled pages further on
    queue = queue_ids(store, "ana", limit=5, seed=3)
    assert len(queue) == 5 and set(queue) <= set(ids[20:])
    assert queue == queue_ids(store, "ana", limit=5, seed=3)  # the same seed, the same order
    assert sorted(queue_ids(store, "ana", seed=4)) == ids[20:]


def test_annotator_names_are_plain_and_never_a_teachers() -> None:
    for fine in ("ana", "Zoë Müller", "studio-team-2", "李"):
        assert annotator_problem(fine) is None
    for bad in ("", "   ", "x" * 81, "a\nb", "a\x00b", "\u202eevil", "Teacher:gpt-4o"):
        assert annotator_problem(bad) is not None, bad
