"""A teacher scores pages with the project's rubric, as one more annotator.

This is how FineWeb-Edu's classifier got its training labels: a large model read pages with an
additive educational-value rubric and gave each a score, and a cheap classifier learnt from those
scores. Here the teacher (a local llama.cpp model or an OpenAI-compatible server) reads each
page's main text with the rubric the curators label by, and replies with JSON: one sentence of
reason and a whole score 0-5. Each score is stored the moment it arrives, under the annotator
``teacher:NAME``, with the reason as its note; a page this teacher has scored already is skipped,
so a stopped run picks up where it stopped.

A page's label is the mean of the people's scores, and the teachers' only where no person scored
the page (:func:`studio.store.queries.label_mean`): let a teacher score the pages the curators
labelled and `studio labels agreement` says how far it agrees with them; let it score pages
nobody labelled and the classifier learns from more pages. A teacher never outvotes a person.

Example::

    with project.store() as store:
        pages = pages_to_score(store, teacher_annotator(teacher), "unlabelled", limit=100)
        report = label_with_teacher(store, teacher, pages, rubric_text(project.root))
    print(report.scored, report.failed, report.problems)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from studio.generate import prompts
from studio.generate.replies import PAGE_SCORE_SCHEMA, ReplyError, parse_page_score
from studio.labelling import seeded_rank
from studio.progress import Task
from studio.store import Store
from studio.store.queries import TEACHER_PREFIX
from studio.teachers.base import IncompleteReply, Sampling, Teacher, TeacherError
from studio.text import MAX_NOTE, abbreviated, clean_note

PAGES = ("labelled", "unlabelled")  # which pages a teacher is asked to score
MAX_PROBLEMS = 20  # listed in a report; the counts cover every page
# a teacher that fails this many pages in a row is down, not having trouble with one page
MAX_FAILURES_IN_A_ROW = 3


class TeacherDown(TeacherError):
    """The teacher failed several pages in a row; the scores given before it are kept."""


@dataclass(slots=True)
class TeacherLabelReport:
    annotator: str
    asked: int = 0  # pages in the request
    scored: int = 0
    skipped: int = 0  # scored by this teacher before, or with no main text
    failed: int = 0
    by_score: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # "document N: why", the first few
    seconds: float = 0.0

    def note(self, doc_id: int, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"document {doc_id}: {problem}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def teacher_annotator(teacher: Teacher) -> str:
    return f"{TEACHER_PREFIX}{teacher.name}"


def pages_to_score(
    store: Store, annotator: str, which: str, limit: int, seed: int = 0
) -> list[int]:
    """Pages for a teacher to score, ``limit`` at most, leaving out those ``annotator`` scored:
    ``labelled``, the pages people labelled, by id (to measure the teacher against them);
    ``unlabelled``, pages with main text that nobody labelled, in a seeded random order (to
    extend the labels)."""
    if which not in PAGES:
        raise ValueError(f"unknown pages {which!r} (known: {', '.join(PAGES)})")
    if which == "labelled":
        people = f"SELECT doc_id FROM labels WHERE annotator NOT LIKE '{TEACHER_PREFIX}%'"
        mine = "SELECT doc_id FROM labels WHERE annotator = ?"
        sql = f"SELECT id FROM documents WHERE id IN ({people}) AND id NOT IN ({mine}) ORDER BY id"
        args: tuple[Any, ...] = (annotator, limit)
    else:  # nobody's pages are not this teacher's either; a page with no main text is left out
        nobody = "NOT EXISTS (SELECT 1 FROM labels l WHERE l.doc_id = d.id)"
        sql = (
            f"SELECT d.id FROM documents d WHERE d.signal_words > 0 AND {nobody} "
            f"ORDER BY {seeded_rank(seed, 'd.id')}, d.id"
        )
        args = (limit,)
    rows = store.conn.execute(f"{sql} LIMIT ?", args)
    return [int(r[0]) for r in rows]


def label_with_teacher(
    store: Store,
    teacher: Teacher,
    doc_ids: list[int],
    rubric: str,
    *,
    retries: int = 1,
    sampling: Sampling | None = None,
    task: Task | None = None,
) -> TeacherLabelReport:
    """Ask ``teacher`` to score each of ``doc_ids`` on ``rubric`` and store the scores.

    A reply that is not a score is asked again ``retries`` times, then the page counts as failed
    with the reason; the run goes on. :class:`TeacherDown` is raised when the teacher fails
    ``MAX_FAILURES_IN_A_ROW`` pages in a row (a stopped server, a wrong model): what it scored
    before is stored already. Cancelling stops between pages (or inside a reply)."""
    task = task or Task()
    sampling = sampling or Sampling(max_tokens=256, temperature=0.0, seed=0, repeat_penalty=1.0)
    annotator = teacher_annotator(teacher)
    report = TeacherLabelReport(annotator, asked=len(doc_ids))
    started, in_a_row = time.perf_counter(), 0
    for n, doc_id in enumerate(doc_ids):
        task.check()
        task.progress(n, len(doc_ids), f"{teacher.name} scoring pages")
        if store.label_of(doc_id, annotator) is not None:
            report.skipped += 1
            continue
        text = store.texts([doc_id]).get(doc_id, ("", 0.0))[0]
        if not text.strip():
            report.skipped += 1
            report.note(doc_id, "no main text to score")
            continue
        try:
            answer = _ask(teacher, prompts.score_messages(rubric, text), sampling, retries, task)
        except IncompleteReply:
            task.check()  # a cancel inside a reply ends the run; a cut-off reply is one failure
            answer = "the reply stopped before it was complete"
        except TeacherError as exc:
            answer = str(exc)
        if isinstance(answer, str):
            report.failed += 1
            report.note(doc_id, answer)
            in_a_row += 1
            if in_a_row >= MAX_FAILURES_IN_A_ROW:
                report.seconds = round(time.perf_counter() - started, 2)
                raise TeacherDown(
                    f"{teacher.name} failed {in_a_row} pages in a row (last: {answer}); "
                    f"{report.scored} scores were stored before it stopped"
                )
            continue
        in_a_row = 0
        reason = abbreviated(clean_note(answer.reason), MAX_NOTE - 30)  # a reason, not a page
        store.set_label(doc_id, annotator, answer.score, reason or None)
        report.scored += 1
        report.by_score[answer.score] = report.by_score.get(answer.score, 0) + 1
    task.progress(len(doc_ids), len(doc_ids), "done")
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _ask(
    teacher: Teacher, messages: list[Any], sampling: Sampling, retries: int, task: Task
) -> Any:
    """The parsed score, or why there is none (a string) after ``retries`` more asks."""
    problem = ""
    for _ in range(retries + 1):
        reply = teacher.chat(
            messages, sampling, cancelled=task.cancelled, json_schema=PAGE_SCORE_SCHEMA
        )
        try:
            return parse_page_score(reply.text)
        except ReplyError as exc:
            problem = f"the reply was not a score ({exc})"
            messages = prompts.repair_messages(messages, reply.text, str(exc))
    return problem
