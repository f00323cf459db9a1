"""The demo project on real WCXB pages with the shipped hand labels (needs ../shared)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.demo import shipped_labels

pytestmark = pytest.mark.shared
READERS = ("studio-team", "studio-team-2")


def test_shipped_labels_are_well_formed() -> None:
    labels = shipped_labels()
    pages = {lab["file_id"] for lab in labels}
    assert len(pages) >= 300
    # two reads of every page, each page once per read
    reads = {a: {lab["file_id"] for lab in labels if lab["annotator"] == a} for a in READERS}
    assert all(read == pages for read in reads.values())
    assert len(labels) == 2 * len(pages)
    assert all(0 <= lab["score"] <= 5 and lab["note"] for lab in labels)
    # the file names pages by id only: no page text, titles or URLs in the repository
    assert all(set(lab) == {"file_id", "score", "page_type", "annotator", "note"} for lab in labels)
    assert not any("http" in lab["note"] for lab in labels)


def test_demo_imports_pages_and_applies_labels(shared_dir: Path, tmp_path: Path) -> None:
    source = shared_dir / "corpora" / "wcxb-dev"
    corpus = tmp_path / "wcxb"
    (corpus / "html").mkdir(parents=True)
    (corpus / "ground-truth").mkdir()
    pages = sorted({lab["file_id"] for lab in shipped_labels()})
    labelled = pages[:25]
    # every page metadata.json lists is labelled; the split holds others, never labelled
    every = sorted(f.name.split(".")[0] for f in (source / "html").glob("*.html.gz"))
    unlabelled = [file_id for file_id in every if file_id not in pages][:2]
    assert len(unlabelled) == 2
    for file_id in [*labelled, *unlabelled]:  # a few pages without labels too
        (corpus / "html" / f"{file_id}.html.gz").symlink_to(source / "html" / f"{file_id}.html.gz")
        (corpus / "ground-truth" / f"{file_id}.json").symlink_to(
            source / "ground-truth" / f"{file_id}.json"
        )
    result = CliRunner().invoke(
        cli, ["demo", str(tmp_path / "demo"), "--corpus", str(corpus), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["imported"] >= 25
    assert (report["labelled"], report["labels"]) == (25, 50)
    assert report["missing"] == pages[25:]  # labelled pages not in this corpus folder, once each
    info = json.loads(CliRunner().invoke(cli, ["info", str(tmp_path / "demo"), "--json"]).output)
    assert info["labels"]["documents"] == 25
    assert info["labels"]["by_annotator"] == {"studio-team": 25, "studio-team-2": 25}
    agreement = json.loads(
        CliRunner().invoke(cli, ["labels", "agreement", str(tmp_path / "demo"), "--json"]).output
    )
    assert [(p["a"], p["b"], p["shared"]) for p in agreement] == [(*READERS, 25)]
    exported = tmp_path / "out.csv"
    assert (
        CliRunner()
        .invoke(cli, ["labels", "export", str(tmp_path / "demo"), str(exported)])
        .exit_code
        == 0
    )
    assert len(exported.read_text().splitlines()) == 51  # a header and one row per label
