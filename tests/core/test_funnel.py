"""The filtering funnel on a hand-built project: every figure checked against the rows themselves
(real SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.export import export_documents
from studio.funnel import funnel
from studio.project import Project
from studio.store import NewDocument, Store

# (lang, signal words, score); a version keeps score >= 3
DOCS = [("en", 100, 4.5), ("en", 50, 1.0), ("en", 30, 3.5), ("de", 200, 4.0), (None, 20, 0.5)]


def build(store: Store, *, version: bool = True, scored: int = len(DOCS)) -> list[int]:
    imp = store.begin_import()
    ids = []
    for f, path in enumerate(("/c/a.jsonl", "/c/b.jsonl")):
        src = store.add_source(imp, path, 1, 1.0, "jsonl")
        mine = DOCS[:3] if f == 0 else DOCS[3:]
        for i, (lang, words, _) in enumerate(mine):
            text = "w " * words
            doc = NewDocument(src, f"{path}{i}", "text", text + "menu " * 10, text, words + 10,
                              words, lang=lang)  # fmt: skip
            ids.append(store.insert_document(doc))
        store.finish_source(src, status="imported", imported=len(mine), duplicates=f + 1)
    failed = store.add_source(imp, "/c/broken.zip", 1, 1.0, None)
    store.finish_source(failed, status="failed", reason="not a zip")
    if version:
        store.conn.execute(
            "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold,"
            " metrics, label_hash, n_labels, path) VALUES ('0001-hand-ridge', 'now', 'hand',"
            " 'ridge', 3, '{}', 'h', 0, 'nowhere')"
        )
        store.add_scores(
            "0001-hand-ridge",
            [(i, s, s >= 3) for i, (_, _, s) in zip(ids[:scored], DOCS[:scored], strict=True)],
        )
    return ids


def test_every_stage_counts_documents_and_signal_words(store: Store) -> None:
    build(store)
    f = funnel(store, lang="en")
    assert (f.files, f.records, f.duplicates) == (2, 5 + 3, 3)
    assert [(s.name, s.documents, s.words) for s in f.stages] == [
        ("imported", 5, 400),
        ("language", 3, 180),
        ("quality", 2, 130),  # kept and in en: the 100- and 30-word pages
    ]
    assert f.version == "0001-hand-ridge" and f.scored == 5
    assert f.text == (
        "imported 8 records from 2 files → 5 documents (3 exact duplicates removed) → 3 in en "
        "→ 2 kept by 0001-hand-ridge: 40% of documents, 32% of words survive"
    )
    data = f.to_dict()
    assert data["document_share"] == pytest.approx(0.4) and data["word_share"] == 130 / 400
    json.dumps(data)
    # no language asked: that stage is left out, the classifier keeps 3 pages of every language
    f = funnel(store)
    assert [s.name for s in f.stages] == ["imported", "quality"]
    assert (f.stages[-1].documents, f.stages[-1].words) == (3, 330)
    # a score threshold instead of the version's decision
    assert funnel(store, threshold=4.2).stages[-1].documents == 1


def test_stages_that_cannot_be_told_are_left_out(store: Store) -> None:
    build(store, version=False)
    f = funnel(store)
    assert [s.name for s in f.stages] == ["imported"] and f.version is None
    assert f.text == "imported 8 records from 2 files → 5 documents (3 exact duplicates removed)"
    with pytest.raises(LookupError, match="no classifier version nope"):
        funnel(store, version="nope")


def test_a_partly_scored_corpus_says_so(store: Store) -> None:
    build(store, scored=2)
    f = funnel(store, version="0001-hand-ridge")
    assert f.scored == 2 and f.stages[-1].documents == 1
    assert f.text.endswith("(0001-hand-ridge has scored 2 of 5)")


def test_one_document_per_file_reads_as_files(store: Store) -> None:
    imp = store.begin_import()
    for i in range(3):
        src = store.add_source(imp, f"/c/{i}.html", 1, 1.0, "html")
        store.insert_document(NewDocument(src, str(i), "html", "<p>a b</p>", "a b", 2, 2))
        store.finish_source(src, status="imported", imported=1)
    assert funnel(store).text.startswith("imported 3 files → 3 documents (0 exact")


def test_the_export_manifest_carries_the_funnel(
    project: Project, store: Store, tmp_path: Path
) -> None:
    build(store)
    out = tmp_path / "kept.jsonl"
    report = export_documents(project, store, out, version="0001-hand-ridge", threshold=3)
    manifest = json.loads(Path(report.manifest_path).read_text("utf-8"))
    stages = manifest["funnel"]["stages"]
    assert [s["name"] for s in stages] == ["imported", "quality"]
    assert stages[-1]["documents"] == report.kept == 3
    assert stages[-1]["words"] == report.kept_words
    everything = export_documents(project, store, tmp_path / "all.jsonl")
    manifest = json.loads(Path(everything.manifest_path).read_text("utf-8"))
    assert [s["name"] for s in manifest["funnel"]["stages"]] == ["imported"]
