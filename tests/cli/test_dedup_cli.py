"""`studio dedup`, `studio decontam` and `studio bench dedup`, as a curator or a script calls them:
JSON out, errors as one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.bench.dedup import synthetic_texts
from studio.cli import cli
from studio.project import Project
from tests.core.test_dedup import add_docs, corpus


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    if code:
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
    return result.output


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        add_docs(store, corpus(synthetic_texts(80, 250, seed=11)))
    return project.root


def test_dedup_marks_clusters_reruns_the_same_and_takes_a_curators_choice(
    project_dir: Path,
) -> None:
    p = str(project_dir)
    first = json.loads(run("dedup", p, "--json"))
    assert (first["documents"], first["clusters"], first["removed"]) == (20, 2, 3)
    assert first["params"]["bands"] == 14 and "highest classifier score" in first["rule"]
    assert first["warnings"] == []
    listed = first["clusters_listed"]
    assert [(c["id"], c["size"], c["kept_doc_id"]) for c in listed] == [(1, 3, 1), (4, 2, 4)]
    again = json.loads(run("dedup", p, "--json"))
    assert again == first
    assert "--threshold would be ignored" in run(
        "dedup", p, "--keep", "3", "--threshold", "0.3", code=2
    )
    chosen = json.loads(run("dedup", p, "--keep", "3", "--json"))
    assert chosen["kept"] == 3 and {m["doc_id"] for m in chosen["members"]} == {1, 2, 3}
    text = run("dedup", p)
    assert text.startswith("20 documents: 2 clusters (1 of exact duplicates), 3 near-duplicates")
    assert "cluster 1: 3 documents" in text and "kept 3 (curator)" in text
    strict = json.loads(run("dedup", p, "--threshold", "0.99", "--bands", "20", "--rows", "5",
                            "--ngram", "3", "--json"))  # fmt: skip
    assert strict["clusters"] == 1 and strict["params"]["ngram"] == 3  # only the exact pair
    # a threshold the default bands barely reach is said, with bands and rows that reach it
    low = json.loads(run("dedup", p, "--threshold", "0.5", "--json"))
    assert "compared 5% of the time" in low["warnings"][0]
    assert low["warnings"][0].endswith("for 0.50 use --bands 25 --rows 5")
    assert "warning: with 14 bands of 8 rows" in run("dedup", p, "--threshold", "0.5")


def test_dedup_errors_are_one_line(project_dir: Path, tmp_path: Path) -> None:
    out = run("dedup", str(project_dir), "--keep", "12", code=1)
    assert out.strip() == "Error: document 12 is in no near-duplicate cluster"
    assert "is not a Textbook Studio project" in run("dedup", str(tmp_path), code=1)
    assert "Invalid value" in run("dedup", str(project_dir), "--threshold", "0", code=2)
    assert "at most 4096" in run("dedup", str(project_dir), "--bands", "512", "--rows", "64",
                                 code=1)  # fmt: skip


def test_decontam_marks_contaminated_documents(project_dir: Path, tmp_path: Path) -> None:
    from studio.decontam import load_benchmark

    question = load_benchmark("gsm8k").items[4].text
    with Project.open(project_dir).store() as store:
        [bad] = add_docs(store, ["A worked example.\n" + question])
    p = str(project_dir)
    report = json.loads(run("decontam", p, "--benchmark", "gsm8k", "--json"))
    assert (report["documents"], report["contaminated"], report["benchmarks"]) == (
        21, 1, ["gsm8k"],
    )  # fmt: skip
    mine = tmp_path / "private_eval.jsonl"
    prompt = question.splitlines()[0]  # the question without its worked answer
    mine.write_text(json.dumps({"id": "x1", "question": prompt}) + "\n{broken\n")
    both = json.loads(run("decontam", p, "--benchmark", "gsm8k", "--benchmark", str(mine),
                          "--n", "8", "--json"))  # fmt: skip
    assert both["by_benchmark"] == {"gsm8k": 1, "private_eval": 1}
    assert both["skipped"] == {"private_eval": 1}
    assert both["skipped_why"]["private_eval"][0] == (  # whole, with where: it was cut at 60
        "line 2: not JSON (Expecting property name enclosed in double quotes at column 2)"
    )
    mine.write_text(mine.read_text() + '{"id": "x2"}\n')  # an id alone: skipped, with why
    out = run("decontam", p, "--benchmark", str(mine), "--n", "8")
    assert "private_eval: 2 line(s) skipped: line 2: not JSON" in out
    assert "line 3: no text in it" in out
    mine.write_text(json.dumps({"id": "x1", "question": prompt}) + "\n{broken\n")
    allow = tmp_path / "allow.txt"
    allow.write_text(prompt + "\n")
    clean = json.loads(run("decontam", p, "--benchmark", str(mine), "--allow", str(allow),
                           "--json"))  # fmt: skip
    assert clean["contaminated"] == 0
    text = run("decontam", p)  # every shipped benchmark
    assert "against 464 items of humaneval, gsm8k, hellaswag, truthfulqa (13-grams)" in text
    assert "1 contaminated (gsm8k: 1)" in text and bad == 21


def test_decontam_errors_are_one_line(project_dir: Path, tmp_path: Path) -> None:
    out = run("decontam", str(project_dir), "--benchmark", "mmlu", code=1)
    assert out.startswith("Error: mmlu: neither a shipped benchmark") and out.count("\n") == 1
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "no benchmark item found" in run("decontam", str(project_dir), "--benchmark",
                                            str(empty), code=1)  # fmt: skip
    zero = run("decontam", str(project_dir), "--allow", "/dev/zero", code=1)
    assert "/dev/zero: cannot be used (zero is not a regular file" in zero
    short = run("decontam", str(project_dir), "--benchmark", "gsm8k", "--n", "3", code=2)
    assert "3 is too few words: n-grams under 8 words match ordinary prose" in short


def test_bench_dedup_prints_the_studio_beside_the_references() -> None:
    result = json.loads(run("bench", "dedup", "--docs", "300", "--words", "100", "--repeats",
                            "1", "--reference-docs", "50", "--json"))  # fmt: skip
    methods = [r["method"] for r in result["rows"]]
    assert methods[0] == "studio" and methods[-1] == "datasketch" and len(methods) == 6
    assert all(r["docs_per_second"] > 0 for r in result["rows"])
    errors = [r["jaccard_error"] for r in result["rows"] if r["jaccard_error"] is not None]
    assert len(errors) == 4 and max(errors) < 0.1  # every method estimates the same Jaccard
    table = run("bench", "dedup", "--docs", "200", "--words", "50", "--repeats", "1",
                "--reference-docs", "20")  # fmt: skip
    assert "datasketch" in table and "target >= 20,000 docs/s" in table
