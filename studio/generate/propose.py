"""A teacher proposes subtopics for a topic; they wait in the plan as ``proposed`` until a curator
accepts (``active``) or rejects them. A rejected name is never proposed into the plan again.

Example::

    added = propose_subtopics(store, teacher, "Mathematics", "Algebra", n=5)
    set_status(store, [s.id for s in added[:3]], "active")
"""

from __future__ import annotations

from studio.generate import prompts
from studio.generate.replies import SUBTOPICS_SCHEMA, ReplyError, parse_subtopics
from studio.generate.taxonomy import Subtopic, TaxonomyError, clean_name, subtopics
from studio.progress import Task
from studio.store import Store, now
from studio.teachers.base import Sampling, Teacher, TeacherError


def propose_subtopics(
    store: Store,
    teacher: Teacher,
    subject: str,
    topic: str,
    *,
    n: int = 5,
    retries: int = 2,
    task: Task | None = None,
) -> list[Subtopic]:
    """Ask ``teacher`` for ``n`` new subtopics of ``subject / topic`` and hold them for review:
    :func:`ask_subtopics`, then :func:`hold_proposals`."""
    names = ask_subtopics(store, teacher, subject, topic, n=n, retries=retries, task=task)
    return hold_proposals(store, subject, topic, names, teacher.name)


def ask_subtopics(
    store: Store,
    teacher: Teacher,
    subject: str,
    topic: str,
    *,
    n: int = 5,
    retries: int = 2,
    task: Task | None = None,
    sampling: Sampling | None = None,
) -> list[str]:
    """The names a teacher proposes (reads the plan, writes nothing), asked for as JSON of
    :data:`SUBTOPICS_SCHEMA`. Raises :class:`TeacherError` when the teacher fails, or when its
    reply is not a JSON list of names after ``retries`` more asks."""
    task = task or Task()
    if not 1 <= n <= 30:
        raise TaxonomyError("ask for 1 to 30 subtopics at a time")
    rows = [s for s in subtopics(store, None) if (s.subject, s.topic) == (subject, topic)]
    if not any(r.status == "active" for r in rows):
        raise TaxonomyError(f"the plan has no topic {subject} / {topic}")
    existing = [r.subtopic for r in rows if r.status != "rejected"]
    messages = prompts.propose_messages(subject, topic, existing, n)
    sampling = sampling or Sampling(max_tokens=256, temperature=0.7, repeat_penalty=1.0)
    for _ in range(retries + 1):
        task.check()
        reply = teacher.chat(
            messages, sampling, cancelled=task.cancelled, json_schema=SUBTOPICS_SCHEMA
        )
        try:
            return parse_subtopics(reply.text)
        except ReplyError as exc:
            messages = prompts.repair_messages(messages, reply.text, str(exc))
    raise TeacherError(f"the teacher's proposals were not a JSON list after {retries + 1} tries")


def hold_proposals(
    store: Store, subject: str, topic: str, names: list[str], origin: str
) -> list[Subtopic]:
    """Add proposed names to the plan as ``proposed`` (names it has, in any status, and names
    with a control character or '|' are left out)."""
    known = {
        s.subtopic.casefold()
        for s in subtopics(store, None)
        if (s.subject, s.topic) == (subject, topic)
    }
    return _hold(store, subject, topic, names, known, origin)


def _hold(
    store: Store, subject: str, topic: str, names: list[str], known: set[str], origin: str
) -> list[Subtopic]:
    added: list[Subtopic] = []
    stamp = now()
    with store.transaction():
        for raw in names:
            try:
                name = clean_name(raw, "subtopic")
            except TaxonomyError:
                continue  # a proposal with a control character or '|' is not offered
            if name.casefold() in known:
                continue
            known.add(name.casefold())
            cur = store.conn.execute(
                "INSERT OR IGNORE INTO gen_taxonomy(subject, topic, subtopic, status, origin, "
                "created_at) VALUES (?, ?, ?, 'proposed', ?, ?)",
                (subject, topic, name, origin, stamp),
            )
            if cur.rowcount:
                added.append(
                    Subtopic(int(cur.lastrowid or 0), subject, topic, name, "proposed", origin)
                )
    return added
