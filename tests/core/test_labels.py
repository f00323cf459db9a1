"""Label files in and out of a project, including the broken ones a curator will bring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.labels import LabelFileError, export_labels, import_labels
from studio.store import NewDocument, Store


def _docs(store: Store) -> list[int]:
    imp = store.begin_import()
    src = store.add_source(imp, "/data/pages.jsonl", 1, 1.0, "jsonl")
    ids = []
    for i in range(3):
        text = f"page {i} about the water cycle"
        doc = NewDocument(
            source_id=src,
            content_hash=f"h{i}",
            kind="text",
            raw=text,
            main_text=text,
            n_words=6,
            signal_words=6,
            url=f"https://example.org/{i}",
        )
        ids.append(store.insert_document(doc))
    return ids


def test_round_trip_through_csv_and_jsonl(store: Store, tmp_path: Path) -> None:
    a, b, _c = _docs(store)
    store.set_label(a, "ana", 4, "clear tutorial")
    store.set_label(b, "ben", 1)
    for name in ("labels.csv", "labels.jsonl"):
        out = tmp_path / name
        assert export_labels(store, out) == 2
        store.conn.execute("DELETE FROM labels")
        report = import_labels(store, out, annotator="nobody")
        assert (report.imported, report.unmatched, report.invalid) == (2, 0, 0)
        got = {(r["doc_id"], r["annotator"], r["score"]) for r in store.labels()}
        assert got == {(a, "ana", 4), (b, "ben", 1)}


def test_rows_find_their_document_by_hash_or_url(store: Store, tmp_path: Path) -> None:
    _a, b, c = _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(
        json.dumps({"content_hash": "h1", "score": 3})
        + "\n"
        + json.dumps({"url": "https://example.org/2", "score": "2"})
        + "\n"
    )
    report = import_labels(store, f, annotator="carla")
    assert report.imported == 2
    assert {(r["doc_id"], r["score"], r["annotator"]) for r in store.labels()} == {
        (b, 3, "carla"),
        (c, 2, "carla"),
    }


def test_bad_rows_are_explained_and_good_ones_kept(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps({"doc_id": a, "score": 5}),
                "{not json",
                json.dumps({"doc_id": a, "score": 7}),
                json.dumps({"doc_id": a, "score": 2.5}),
                json.dumps({"doc_id": 999, "score": 1}),
                json.dumps([1, 2]),
                json.dumps({"doc_id": "x", "score": 1}),
            ]
        )
    )
    report = import_labels(store, f, annotator="dan")
    assert (report.imported, report.unmatched, report.invalid) == (1, 1, 5)
    assert any(p.startswith("line 2: invalid JSON") for p in report.problems)
    assert any("line 3: score 7" in p for p in report.problems)


def test_unreadable_files_change_nothing(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    store.set_label(a, "ana", 4)
    before = store.labels()
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"doc_id,score,note\n1,3,caf\xe9\n")
    no_score = tmp_path / "n.csv"
    no_score.write_text("doc_id,label\n1,good\n")
    for bad, message in (
        (latin, "not UTF-8"),
        (no_score, "'score' column"),
        (tmp_path / "l.xlsx", "are .csv or .jsonl"),
    ):
        if not bad.exists():
            bad.write_text("x")
        with pytest.raises(LabelFileError, match=message):
            import_labels(store, bad, annotator="x")
    assert store.labels() == before


def test_agreement_command(store: Store, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from studio.cli import cli

    a, b, c = _docs(store)
    for doc, sa, sb in ((a, 0, 0), (b, 3, 3), (c, 5, 1)):
        store.set_label(doc, "ana", sa)
        store.set_label(doc, "ben", sb)
    root = store.path.parent
    result = CliRunner().invoke(cli, ["labels", "agreement", str(root), "--json"])
    assert result.exit_code == 0, result.output
    (pair,) = json.loads(result.output)
    assert pair["shared"] == 3 and pair["disagreements"] == [[c, 5, 1]]
    text = CliRunner().invoke(cli, ["labels", "agreement", str(root)]).output
    assert "ana vs ben: kappa" in text and f"document {c}: ana 5, ben 1" in text
