"""A teacher scoring pages with the rubric, as one more annotator (the FineWeb-Edu recipe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studio.cli import cli
from studio.generate.replies import ReplyError, parse_page_score
from studio.project import Project
from studio.store import NewDocument, Store
from studio.teacher_labels import (
    MAX_FAILURES_IN_A_ROW,
    TeacherDown,
    label_with_teacher,
    pages_to_score,
    teacher_annotator,
)
from studio.text import MAX_NOTE
from tests.core.test_teachers import remote
from tests.fixtures.teacher_proxy import TeacherProxy

RUBRIC = "Score 0 (nothing to learn) to 5 (outstanding teaching)."


def _pages(store: Store, n: int) -> list[int]:
    src = store.add_source(store.begin_import(), "/gen/pages.jsonl", 1, 1.0, "jsonl")
    ids = []
    for i in range(n):
        text = f"Page {i}. Photosynthesis turns light into sugar, step {i}." if i != 3 else "  "
        n = len(text.split())
        doc = store.insert_document(NewDocument(src, f"h{i}", "text", text, text, n, n))
        assert doc is not None
        ids.append(doc)
    return ids


@pytest.fixture
def proxy():
    p = TeacherProxy("http://127.0.0.1:9/v1")  # every reply canned: no server behind it
    yield p
    p.close()


def test_reading_a_score_never_guesses() -> None:
    assert parse_page_score('{"reason": "Explains it well.", "score": 4}').score == 4
    # a string or a whole float is read; prose and fences around the JSON are dropped
    got = parse_page_score('Sure!\n```json\n{"reason": "ok", "score": "3"}\n```')
    assert (got.score, got.reason) == (3, "ok") and got.repairs
    assert parse_page_score('{"score": 2.0}').score == 2
    for reply, why in [
        ('{"reason": "x"}', 'no "score"'),
        ('{"score": 3.5}', "whole number"),
        ('{"score": 7}', "outside 0 to 5"),
        ('{"score": -1}', "outside 0 to 5"),
        ('{"score": true}', "not a number"),
        ('{"score": "high"}', "not a number"),
        ('{"score": 1e999}', "whole number"),
        ("I would give it a 3.", "no JSON object"),
    ]:
        with pytest.raises(ReplyError, match=why):
            parse_page_score(reply)


def test_scores_are_stored_as_they_come_and_never_outvote_a_person(
    store: Store, proxy: TeacherProxy
) -> None:
    ids = _pages(store, 6)
    store.set_label(ids[0], "ana", 1)
    store.set_label(ids[1], "ana", 5)
    teacher = remote(proxy.url)
    who = teacher_annotator(teacher)
    assert who == f"teacher:{teacher.name}" and "tiny" in who
    # people's pages first, by id; then pages nobody labelled, in a seeded order
    assert pages_to_score(store, who, "labelled", 10) == ids[:2]
    # pages nobody labelled, with main text (ids[3] has none), in a seeded order
    unlabelled = pages_to_score(store, who, "unlabelled", 10, seed=1)
    assert sorted(unlabelled) == [ids[2], *ids[4:]]
    assert unlabelled == pages_to_score(store, who, "unlabelled", 10, seed=1)
    with pytest.raises(ValueError, match="unknown pages"):
        pages_to_score(store, who, "some", 10)

    proxy.replies.extend(
        [
            '{"reason": "A clear account of photosynthesis.", "score": 4}',
            "It is a fine page.",  # not JSON: asked again, with the reason why
            '{"reason": "Thin.", "score": 2}',
            '{"reason": "?", "score": 9}',
            '{"score": 8}',  # twice wrong: this page fails, the run goes on
            '{"reason": "Basic facts.", "score": 3}',
        ]
    )
    report = label_with_teacher(store, teacher, [ids[0], ids[1], ids[2], ids[3], ids[4]], RUBRIC)
    assert (report.asked, report.scored, report.failed, report.skipped) == (5, 3, 1, 1)
    assert report.by_score == {4: 1, 2: 1, 3: 1}
    assert any("outside 0 to 5" in p for p in report.problems)
    assert any(f"document {ids[3]}: no main text" in p for p in report.problems)
    # the retry quoted the unreadable reply back; the page went into the prompt, fenced
    retry = proxy.requests[2]["messages"]
    assert (
        retry[1]["content"] == "It is a fine page." and "could not be read" in retry[2]["content"]
    )
    first = proxy.requests[0]
    assert "<page>" in first["messages"][0]["content"] and RUBRIC in first["messages"][0]["content"]
    assert first["response_format"]["type"] == "json_schema"
    assert store.label_of(ids[0], who) == 4 and store.label_of(ids[4], who) == 3
    assert store.label_of(ids[2], who) is None  # failed: nothing stored
    notes = {r["doc_id"]: r["note"] for r in store.labels() if r["annotator"] == who}
    assert notes[ids[0]] == "A clear account of photosynthesis."

    # a person's score is the label where there is one; the teacher's only where there is not
    targets = {doc: label for doc, label, _ in store.label_targets()}
    assert targets[ids[0]] == 1.0 and targets[ids[1]] == 5.0 and targets[ids[4]] == 3.0
    assert ids[2] not in targets
    # a rerun asks only for what is missing; a reason is stored as a note a curator can read:
    # no NUL or direction override, and cut to a reason's length
    hostile = "Some\u0000 facts\u202e. " + "word " * 5000
    proxy.replies.append(json.dumps({"reason": hostile, "score": 1}))
    again = label_with_teacher(store, teacher, ids[:5], RUBRIC)
    assert (again.scored, again.skipped, again.failed) == (1, 4, 0)
    note = next(
        r["note"] for r in store.labels() if r["annotator"] == who and r["doc_id"] == ids[2]
    )
    assert note.startswith("Some facts. word") and len(note) <= MAX_NOTE
    assert pages_to_score(store, who, "labelled", 10) == []


def test_a_teacher_that_keeps_failing_stops_the_run_and_keeps_what_it_gave(
    store: Store, proxy: TeacherProxy
) -> None:
    ids = _pages(store, 8)
    proxy.replies.append('{"reason": "Fine.", "score": 3}')
    proxy.faults.extend(["pass"] + ["401"] * MAX_FAILURES_IN_A_ROW)
    with pytest.raises(TeacherDown, match=f"failed {MAX_FAILURES_IN_A_ROW} pages in a row"):
        label_with_teacher(store, remote(proxy.url), ids, RUBRIC)
    who = teacher_annotator(remote(proxy.url))
    assert store.label_of(ids[0], who) == 3
    assert sum(store.label_of(d, who) is not None for d in ids) == 1


def test_cli_scores_with_a_local_model_and_reports_every_page(
    tmp_path: Path, tiny_gguf: Path, proxy: TeacherProxy
) -> None:
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        ids = _pages(store, 5)
        store.set_label(ids[0], "ana", 2)
        store.set_label(ids[1], "ana", 4)
    p = str(project.root)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["labels", "teacher", p, *args])
        return result.exit_code, result.output

    # a real llama.cpp model, held to the JSON schema by a grammar: whatever its random weights
    # say (this one writes its reason until the token limit), every page is scored or failed
    # with a reason, and nothing else is touched
    code, out = run("--teacher", f"local:{tiny_gguf}", "--json")
    report = json.loads(out)
    assert code == (1 if report["failed"] else 0), out
    assert report["scored"] + report["failed"] == report["asked"] == 2
    assert len(report["problems"]) == report["failed"]
    with project.store() as store:
        assert store.label_of(ids[0], "ana") == 2 and store.label_of(ids[1], "ana") == 4

    remote_teacher = ["--teacher", f"openai:{proxy.url}", "--model", "tiny"]
    proxy.replies.extend(['{"reason": "Basic.", "score": 3}', '{"reason": "None.", "score": 0}'])
    code, out = run(*remote_teacher, "--pages", "unlabelled", "--limit", "2")
    assert code == 0, out
    assert out.startswith("teacher:openai:tiny@127.0.0.1:")
    assert "scored 2 of 2 pages (0 failed, 0 skipped)" in out
    assert "scores 0: 1, 3: 1" in out
    code, out = run(*remote_teacher, "--pages", "unlabelled")  # left: ids[3], with no text
    assert code == 0 and out.startswith("no unlabelled pages left for teacher:openai:tiny@")
    assert "needs a model name" in run("--teacher", f"openai:{proxy.url}")[1]
    assert "no model file" in run("--teacher", f"local:{tmp_path}/none.gguf")[1]
    assert run("--pages", "all")[0] == 2


def test_cli_exits_1_when_the_teacher_failed_on_a_page(tmp_path: Path, proxy: TeacherProxy) -> None:
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        _pages(store, 2)
    proxy.faults.append("401")
    proxy.replies.append('{"reason": "Clear steps.", "score": 4}')
    args = ["labels", "teacher", str(project.root), "--pages", "unlabelled"]
    result = CliRunner().invoke(cli, [*args, "--teacher", f"openai:{proxy.url}", "--model", "m"])
    assert result.exit_code == 1, result.output
    assert "scored 1 of 2 pages (1 failed, 0 skipped)" in result.output
