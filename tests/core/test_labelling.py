"""Labelling sessions and agreement on a real project database."""

from __future__ import annotations

import pytest

from studio.labelling import LabelSession, agreement, queue_ids, rubric_text, weighted_kappa
from studio.store import DocumentQuery, NewDocument, Store


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
    assert weighted_kappa([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)
    assert weighted_kappa([], []) is None


def test_the_project_rubric_overrides_the_shipped_one(tmp_path) -> None:
    assert "Educational value" in rubric_text(None)
    (tmp_path / "rubric.md").write_text("# Our own rubric")
    assert rubric_text(tmp_path) == "# Our own rubric"
