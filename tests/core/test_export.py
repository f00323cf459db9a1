"""Exports of the kept documents on a generated, classified project, as a Hugging Face dataset
folder: shards read back, the card parses, counts add up, and nothing is ever left half-written."""

from __future__ import annotations

import gzip
import json
import os
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from studio import export as export_module
from studio.classify.score import score_documents
from studio.classify.train import train_classifier
from studio.export import ExportError, export_documents
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import Store
from tests.core.test_classify import make_labelled_project


def read_jsonl(path: Path) -> list[dict]:
    if path.suffix == ".gz":
        text = gzip.decompress(path.read_bytes()).decode()
    elif path.suffix == ".zst":
        text = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).decode()
    else:
        text = path.read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def read_dataset(folder: Path) -> list[dict]:
    """Every record of the folder's shards, in shard order."""
    rows: list[dict] = []
    for shard in sorted((folder / "data").iterdir()):
        if shard.suffix == ".parquet":
            rows += pq.read_table(shard).to_pylist()
        else:
            rows += read_jsonl(shard)
    return rows


def front_matter(card: str) -> dict:
    """The card's YAML front matter, parsed with pyyaml when it is there."""
    assert card.startswith("---\n")
    block = card.split("---\n")[1]
    try:
        import yaml
    except ImportError:
        lines = block.splitlines()
        assert "configs:" in lines and "- config_name: default" in lines
        assert "  - split: train" in lines and "    path: data/train-*" in lines
        return {"license": json.loads(lines[0].removeprefix("license: "))}
    return yaml.safe_load(block)


def classified(project: Project, store: Store, model: str = "ridge") -> str:
    make_labelled_project(store, labelled=60, unlabelled=40)
    version = train_classifier(project, store, features="hand", model=model).version["id"]
    score_documents(project, store)
    return version


def test_without_a_model_every_document_is_exported(
    project: Project, store: Store, tmp_path: Path
) -> None:
    make_labelled_project(store, labelled=12, unlabelled=8)
    out = tmp_path / "all"
    report = export_documents(project, store, out, fmt="jsonl", batch=7)  # batches end mid-corpus
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data", "manifest.json"]
    assert report.shards == ["data/train-00000-of-00001.jsonl"]
    records = read_dataset(out)
    assert (report.kept, report.dropped, report.documents) == (20, 0, 20)
    assert [r["id"] for r in records] == store.document_ids()
    first = records[0]
    assert set(first) == {"id", "text", "title", "url", "lang", "words", "provenance"}
    assert first["text"] == store.main_text(first["id"]) and first["url"] == "https://gen/0"
    prov = first["provenance"]
    assert prov["source"] == "/gen/pages.jsonl" and prov["content_hash"] == "hash0"
    assert json.loads(prov["locator"]) == {} and prov["classifier"] is None
    assert prov["labels"] == [{"annotator": "ana", "score": 0}, {"annotator": "ben", "score": 1}]
    assert records[-1]["provenance"]["labels"] is None  # an unlabelled page
    assert report.kept_words == sum(r["words"] for r in records)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kept"] == 20 and manifest["id"] == report.id and manifest["version"] is None
    assert "provenance.content_hash" in manifest["fields"] and manifest["classifier"] is None
    assert manifest["sources"]["top"] == [{"path": "/gen/pages.jsonl", "documents": 20}]
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "other"
    assert "None: every document" in card and "`/gen/pages.jsonl`: 20" in card
    [row] = store.exports()
    assert (row["path"], row["format"], row["kept"], row["dropped"]) == (str(out), "jsonl", 20, 0)
    # a dataset is for others to read: the folder has the umask's mode, not a private 0700
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask


def test_a_version_keeps_what_it_decided_and_says_why_it_dropped(
    project: Project, store: Store, tmp_path: Path
) -> None:
    version = classified(project, store)
    kept_ids = {
        r[0]
        for r in store.conn.execute(
            "SELECT doc_id FROM classifier_scores WHERE version = ? AND keep = 1", (version,)
        )
    }
    out, dropped = tmp_path / "kept", tmp_path / "dropped.jsonl.gz"
    report = export_documents(
        project, store, out, version="latest", dropped=dropped, batch=32, shard_size=7
    )
    kept, gone = read_dataset(out), read_jsonl(dropped)
    assert {r["id"] for r in kept} == kept_ids and 0 < len(kept_ids) < 100
    n = -(-len(kept) // 7)
    assert report.shards == [f"data/train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    assert all(pq.read_metadata(out / s).num_rows <= 7 for s in report.shards)
    assert (report.kept, report.dropped) == (len(kept), len(gone)) and len(kept) + len(gone) == 100
    assert (
        report.text == f"kept {len(kept)} of 100 documents, {report.kept_words / 1000:.3g}k words"
    )
    prov = kept[0]["provenance"]
    assert prov["classifier"] == version and prov["threshold"] == 3 and prov["score"] >= prov["cut"]
    reason = gone[0]["reason"]
    assert reason.startswith("score ") and f"(classifier {version}, keep threshold 3)" in reason
    assert all(r["provenance"]["score"] < r["provenance"]["cut"] for r in gone)
    assert report.dropped_by_reason == {f"score < cut {report.cut:.2f} of {version}": len(gone)}
    # the project keeps why pages were dropped, next to the export's record
    assert json.loads(store.exports()[-1]["dropped_by_reason"]) == report.dropped_by_reason

    manifest = json.loads((out / "manifest.json").read_text())
    classifier = manifest["classifier"]
    assert classifier["version"] == version and classifier["model_kind"] == "ridge"
    assert classifier["feature_set"] == "hand" and classifier["labels"] > 0
    assert set(classifier["metrics"]) == {"f1_keep", "spearman", "roc_auc"}
    assert manifest["funnel"]["stages"][-1]["documents"] == len(kept)
    card = (out / "README.md").read_text()
    assert front_matter(card)["license"] == "other"
    for words in (version, "F1 at keep", "Spearman", "ROC-AUC", "## Funnel", str(dropped)):
        assert words in card

    # re-thresholded on the predicted score, as gzipped JSONL, with a license
    scores = dict(store.conn.execute("SELECT doc_id, score FROM classifier_scores").fetchall())
    strict = tmp_path / "strict"
    report = export_documents(
        project, store, strict, version=version, threshold=3.5, fmt="jsonl.gz", license="cc-by-4.0"
    )
    table = read_dataset(strict)
    assert report.shards == ["data/train-00000-of-00001.jsonl.gz"]
    assert [r["id"] for r in table] == sorted(d for d, s in scores.items() if s >= 3.5)
    assert report.format == "jsonl.gz" and table[0]["provenance"]["cut"] == 3.5
    assert report.dropped_by_reason == {"score < min-score 3.5": 100 - len(table)}
    assert front_matter((strict / "README.md").read_text())["license"] == "cc-by-4.0"
    assert [e["threshold"] for e in store.exports()] == [3, 3.5]


def test_dropped_parquet_records_carry_the_reason(
    project: Project, store: Store, tmp_path: Path
) -> None:
    version = classified(project, store, "logistic")
    gone = tmp_path / "dropped.parquet"
    report = export_documents(project, store, tmp_path / "kept", version=version, dropped=gone)
    rows = pq.read_table(gone).to_pylist()
    assert len(rows) == report.dropped > 0
    assert rows[0]["reason"].startswith("P(keep) ") and version in rows[0]["reason"]


def test_nothing_kept_still_makes_a_valid_folder(
    project: Project, store: Store, tmp_path: Path
) -> None:
    version = classified(project, store)
    out = tmp_path / "none"
    out.mkdir()  # an empty folder is fine
    report = export_documents(project, store, out, version=version, threshold=99)
    assert report.kept == 0 and report.shards == ["data/train-00000-of-00001.parquet"]
    assert read_dataset(out) == []


def test_a_failed_export_leaves_nothing_behind(
    project: Project, store: Store, tmp_path: Path, monkeypatch
) -> None:
    version = classified(project, store)
    out, dropped = tmp_path / "kept", tmp_path / "dropped.jsonl"
    calls = []

    def failing(row, labels, rule):
        calls.append(row["id"])
        if len(calls) > 40:
            raise RuntimeError("disk on fire")
        return real(row, labels, rule)

    real = export_module.record
    monkeypatch.setattr(export_module, "record", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_documents(
            project, store, out, version=version, dropped=dropped, batch=16, shard_size=5
        )
    assert list(tmp_path.iterdir()) == [project.root] and store.exports() == []

    monkeypatch.setattr(export_module, "record", real)
    task = Task()
    task._on_progress = lambda done, total, msg: task.cancel()  # stop after the first batch
    with pytest.raises(Cancelled):
        export_documents(project, store, out, version=version, batch=16, task=task)
    assert list(tmp_path.iterdir()) == [project.root] and store.exports() == []

    def no_card(manifest):  # fails after the shards, while the row is being recorded
        raise RuntimeError("card")

    monkeypatch.setattr(export_module, "dataset_card", no_card)
    with pytest.raises(RuntimeError, match="card"):
        export_documents(project, store, out, version=version, dropped=dropped)
    assert list(tmp_path.iterdir()) == [project.root] and store.exports() == []


def test_exports_refuse_what_they_cannot_do(project: Project, store: Store, tmp_path: Path) -> None:
    out = tmp_path / "x"
    make_labelled_project(store, labelled=60, unlabelled=10)
    with pytest.raises(ExportError, match="no classifier trained yet"):
        export_documents(project, store, out, version="latest")
    with pytest.raises(ExportError, match="no classifier trained yet"):  # a threshold: latest
        export_documents(project, store, out, threshold=3)
    version = train_classifier(project, store, features="hand", model="logistic").version["id"]
    with pytest.raises(ExportError, match="has scored 0 of 70 documents"):
        export_documents(project, store, out, version=version)
    score_documents(project, store)
    with pytest.raises(ExportError, match="P\\(keep\\)"):
        export_documents(project, store, out, version=version, threshold=4)
    with pytest.raises(ExportError, match="a file of their own"):
        export_documents(project, store, out, dropped=out / "d.jsonl")
    with pytest.raises(ExportError, match="unknown format csv"):
        export_documents(project, store, out, fmt="csv")
    # the dropped file never replaces a file already there (another project's database, say)
    other = tmp_path / "elsewhere" / "labels.csv"
    other.parent.mkdir()
    other.write_text("doc_id,score\n1,3\n")
    for taken, why in ((other, "already exists"), (other.parent / "d.csv", "a .jsonl, .jsonl.gz")):
        with pytest.raises(ExportError, match=why):
            export_documents(project, store, out, version=version, dropped=taken)
    assert [p.name for p in other.parent.iterdir()] == ["labels.csv"]
    assert other.read_text() == "doc_id,score\n1,3\n"
    assert not out.exists()
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an empty folder"):
        export_documents(project, store, out)
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    # a name whose bytes are not UTF-8 (a shell's $'\\xff'): refused before anything is written
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/o_\xff\xfe"))
    with pytest.raises(ExportError, match="is not a UTF-8 name"):
        export_documents(project, store, odd)
    with pytest.raises(ExportError, match="is not a UTF-8 name"):
        export_documents(project, store, tmp_path / "y", dropped=odd.with_name("d\udcff.jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", project.root.name, "x"]
    assert store.exports() == []


def test_an_export_never_writes_over_the_projects_own_files(
    project: Project, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database (and its companions), models/, runs/ and the folder itself are refused as
    the dataset folder or the dropped file, however the path is spelled; exports/ is the place."""
    version = classified(project, store)
    root = project.root
    model = next((root / "models" / "classifier" / version).glob("*.npz"))
    before = model.read_bytes()
    (tmp_path / "link.db").symlink_to(project.db_path)
    (tmp_path / "hard.db").hardlink_to(project.db_path)
    monkeypatch.chdir(root / "models")  # a relative path, resolved before it is compared
    for bad, why in [
        (project.db_path, "project's database"),
        (root / "studio.db-wal", "project's database"),
        (tmp_path / "link.db", "project's database"),
        (tmp_path / "hard.db", "under another name"),
        (model, "classifier models"),
        (Path("../runs"), "runs"),
        (root / "exports" / ".." / "rubric.md", "own files"),
    ]:
        with pytest.raises(ExportError, match=why):
            export_documents(project, store, tmp_path / "kept", version=version, dropped=bad)
        with pytest.raises(ExportError, match=why):
            export_documents(project, store, bad, version=version)
    with pytest.raises(ExportError, match="project folder itself"):
        export_documents(project, store, Path(".."), version=version)
    with pytest.raises(ExportError, match="exports folder itself"):
        export_documents(project, store, root / "exports", version=version)
    assert model.read_bytes() == before and store.exports() == []
    assert store.totals()["documents"] == 100 and list((root / "runs").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.db", "link.db", root.name]

    report = export_documents(
        project,
        store,
        root / "exports" / "kept",
        version=version,
        dropped=Path("../exports/d.jsonl"),
    )
    assert report.kept + report.dropped == 100 and (root / "exports" / "d.jsonl").is_file()


def test_documents_imported_after_the_last_dedup_or_decontam_are_named(
    project: Project, store: Store, tmp_path: Path
) -> None:
    """An import after the filters ran went out unchecked, and nothing said so."""
    from studio.decontam import BenchmarkIndex
    from studio.decontam.benchmarks import Benchmark, Item
    from studio.decontam.corpus import decontaminate
    from studio.dedup.corpus import dedup_corpus
    from studio.ingest.pipeline import import_paths

    make_labelled_project(store, labelled=12, unlabelled=8)
    dedup_corpus(store)
    item = Item("1", "what is the boiling point of water at sea level")
    decontaminate(store, BenchmarkIndex([Benchmark("quiz", "test", [item], [])], n=8))
    clean = export_documents(project, store, tmp_path / "a", fmt="jsonl")
    assert clean.warnings == []
    for i in range(3):
        (tmp_path / f"late{i}.txt").write_text(f"A lesson added later, number {i}, on tides.\n")
    import_paths(store, sorted(tmp_path.glob("late*.txt")))
    late = export_documents(project, store, tmp_path / "b", fmt="jsonl")
    assert late.warnings == [
        "3 documents were imported after the last near-duplicate check and were not checked: "
        "run `studio dedup` again before exporting",
        "3 documents were imported after the last quiz benchmark check and were not checked: "
        "run `studio decontam --benchmark quiz` again before exporting",
    ]
    assert "**Not checked:** 3 documents" in (tmp_path / "b" / "README.md").read_text()
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["warnings"] == late.warnings
    dedup_corpus(store)  # run again: the near-duplicate check has seen them
    assert len(export_documents(project, store, tmp_path / "c", fmt="jsonl").warnings) == 1


def test_what_a_killed_export_left_is_removed_by_the_next(
    project: Project, store: Store, tmp_path: Path
) -> None:
    """A killed export left its 57 MB .partial folder and the dropped file's .tmp behind, and
    every rerun kept them; what a running export writes is never touched."""
    import subprocess
    import sys

    make_labelled_project(store, labelled=12, unlabelled=8)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f"out.partial-{dead}-0a1b2c3d"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "train-00000-of-00001.jsonl").write_text("{}\n")
    stale_drop = tmp_path / f".dropped.jsonl.tmp-{dead}"
    stale_drop.write_text("{}\n")
    running = tmp_path / f"out.partial-{os.getpid()}-00000000"  # an export under way
    running.mkdir()
    mine = tmp_path / "out.partial-notes"  # not the studio's name: left alone
    mine.mkdir()
    export_documents(
        project, store, tmp_path / "out", fmt="jsonl", dropped=tmp_path / "dropped.jsonl"
    )
    assert not stale.exists() and not stale_drop.exists()
    assert running.is_dir() and mine.is_dir() and (tmp_path / "out" / "manifest.json").is_file()


def test_keepers_chosen_before_the_scores_changed_are_named(
    project: Project, store: Store, tmp_path: Path
) -> None:
    """Dedup run, then the corpus scored: the keepers were chosen without the scores."""
    from studio.dedup.corpus import dedup_corpus

    make_labelled_project(store, labelled=60, unlabelled=40)
    dedup_corpus(store)
    train_classifier(project, store, features="hand", model="ridge")
    score_documents(project, store)
    [note] = export_documents(project, store, tmp_path / "a", fmt="jsonl").warnings
    assert note.startswith("the near-duplicate keepers were chosen on no scores, and the scores")
    dedup_corpus(store)
    assert export_documents(project, store, tmp_path / "b", fmt="jsonl").warnings == []
    store.conn.execute("DELETE FROM classifier_scores WHERE doc_id IN (1, 2)")
    store.conn.commit()  # as if the version were scored again, partly: the counts differ
    [note] = export_documents(project, store, tmp_path / "c", fmt="jsonl").warnings
    assert "chosen on 0001-hand-ridge's scores of 100 documents" in note


def test_a_folder_written_while_the_export_ran_is_kept_and_this_export_is_not(
    project: Project, store: Store, tmp_path: Path, monkeypatch
) -> None:
    """Two exports to one folder at once: the second said 'Directory not empty:
    OUT.partial-...'. The folder was empty when this one began, so it says another wrote it."""
    make_labelled_project(store, labelled=12, unlabelled=8)
    out = tmp_path / "kept"
    real = export_module.dataset_card

    def other_export_finishes_first(manifest):
        out.mkdir(exist_ok=True)
        (out / "README.md").write_text("the other export's card")
        return real(manifest)

    monkeypatch.setattr(export_module, "dataset_card", other_export_finishes_first)
    with pytest.raises(ExportError, match="was written while this export ran"):
        export_documents(project, store, out, fmt="jsonl", dropped=tmp_path / "d.jsonl")
    assert (out / "README.md").read_text() == "the other export's card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "project"]
    assert store.exports() == []
