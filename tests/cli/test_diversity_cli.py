"""`studio diversity` and `studio bench diversity`, as a curator or a script calls them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.diversity import simulate
from studio.project import Project
from tests.core.test_diversity_scenarios import add_documents, add_rounds, split_library_pages


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


def make_generated_project(root: Path, scenario: str = "template-collapse"):
    """Real pages (Python's documentation), a few hostile ones among them, and three rounds of
    generated pages."""
    real, pool = split_library_pages()
    real = [simulate.trim(t, 200) for t in real[:160]]
    hostile = ["", "\x00\x01\x02 \ufffd" * 50, "word " * 50_000, "😀 " * 300]
    project = Project.open(root)
    with project.store() as store:
        add_documents(store, real + hostile, "text", "web")
        rounds = simulate.rounds([simulate.trim(t, 200) for t in pool], scenario, per_round=40)
        add_rounds(store, rounds[:2] + rounds[-1:])
    return project


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    return make_generated_project(tmp_path / "p").root


@pytest.mark.slow
def test_diversity_by_round_json_and_text(generated: Path) -> None:
    report = json.loads(run("diversity", str(generated), "--by", "round", "--json"))
    assert [s["name"] for s in report["sets"]] == ["round 1", "round 2", "round 3"]
    assert report["block"] == 40
    for s in report["sets"]:
        assert s["documents"] == 40 and s["metrics"]["vendi"] > 1
        assert {"distinct_2", "compression_xz", "ppl_p90", "near_duplicates"} <= set(s["metrics"])
    assert {"p5", "p50", "p95"} <= set(report["band"]["recall"])
    kinds = {(a["set"], a["kind"]) for a in report["alarms"]}
    assert ("round 3", "template collapse") in kinds  # the last round is all templates
    alarm = next(a for a in report["alarms"] if a["set"] == "round 3")
    assert alarm["documents"] and "template collapse" in alarm["message"]
    # the reference model was saved in the project, as JSON and npz
    folder = generated / "models" / "diversity-reference"
    assert (folder / "reference.json").is_file() and (folder / "reference.npz").is_file()

    text = run("diversity", str(generated), "--by", "cell")
    assert "real pages" in text and "Science | lesson 0" in text
    search = json.loads(
        run("diversity", str(generated), "--by", "query", "--search", "the", "--json")
    )
    assert len(search["sets"]) == 1 and search["sets"][0]["documents"] > 40


def test_diversity_errors_are_one_line(tmp_path: Path) -> None:
    project = Project.open(tmp_path / "empty")
    out = run("diversity", str(project.root), code=1)
    assert "no accepted generated pages" in out and "Traceback" not in out
    out = run("diversity", str(project.root), "--by", "kind", code=1)
    assert "no real pages" in out or "real pages" in out
    folder = tmp_path / "not-a-project"
    folder.mkdir()
    assert "not a Textbook Studio project" in run("diversity", str(folder), code=1)
    assert "add --by query" in run(
        "diversity", str(project.root), "--by", "round", "--search", "volcano", code=2
    )
    for search in ("*", "( '"):
        out = run("diversity", str(project.root), "--by", "query", "--search", search, code=1)
        assert "has no words to look for" in out
    run("diversity", str(project.root), "--by", "colour", code=2)


@pytest.mark.slow
def test_bench_diversity_without_the_shared_corpus(tmp_path: Path, monkeypatch) -> None:
    """A clone without ../shared benchmarks on Python's own documentation pages."""
    monkeypatch.setenv("STUDIO_SHARED", str(tmp_path / "nowhere"))
    result = json.loads(run("bench", "diversity", "--docs", "300", "--real", "100", "--json"))
    assert result["corpus"] == "Python's documentation pages" and result["documents"] == 300
    assert result["measure_cpu_seconds"] > 0 and result["minhash"]["studio_docs_per_s"] > 0
    empty = tmp_path / "empty"
    (empty / "ground-truth").mkdir(parents=True)
    out = run("bench", "diversity", "--corpus", str(empty), code=1)
    assert "too few to benchmark" in out and "Traceback" not in out
    assert "not a WCXB-style corpus" in run("bench", "diversity", "--corpus", str(tmp_path), code=1)


@pytest.mark.slow
@pytest.mark.shared
def test_bench_diversity_prints_both_minhash_rates(shared_dir: Path) -> None:
    corpus = shared_dir / "corpora" / "wcxb-dev"
    result = json.loads(
        run(
            "bench",
            "diversity",
            "--corpus",
            str(corpus),
            "--docs",
            "400",
            "--real",
            "120",
            "--json",
        )
    )
    assert result["documents"] == 400
    assert (
        result["minhash"]["studio_docs_per_s"] > 0
        and result["minhash"]["datasketch_docs_per_s"] > 0
    )
    steps = [r["step"] for r in result["rows"]]
    assert any(s.startswith("every measure") for s in steps)
    table = run("bench", "diversity", "--corpus", str(corpus), "--docs", "300", "--real", "100")
    assert "datasketch" in table and "studio.dedup.signatures" in table
