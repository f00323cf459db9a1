"""The generation loop: for each page of a batch, generate K drafts → critique each → rewrite the
best with its critique → check → accept or reject, with its reasons.

Every step is committed the moment it ends (a draft, a critique, the rewrite, the checks), so a
batch stopped by a cancel, a crash or a closed studio resumes where it stopped: a page's finished
steps are reused and only the missing ones are asked for. A partial reply is never stored.

Pages run in parallel, as many at once as their teacher serves (a remote server's
``concurrency``; a local llama.cpp model writes one at a time). Each page runs on a thread of its
own; the database is used only from the thread that called :func:`run_batch`, which does each
page's reads and writes in turn (:mod:`studio.generate.threads`), along with the checks and the
decision, so a page is checked against every page accepted before it.

Writes go through ``write(fn)``, which runs ``fn(store)`` where the caller's writer lives: the
CLI writes on its own connection; the GUI runs this loop off its writer thread and hands each
write to it, so the writer is never held for a whole batch.

Example::

    with project.store() as store:
        batch_id = new_batch(store, BatchConfig(pages=5, teachers=[TeacherChoice(config)]))
        report = run_batch(project, store, batch_id, task=Task())
    print(report.text)   # batch 3: 4 accepted, 1 rejected of 5 pages
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from studio.generate import prompts, record
from studio.generate.checks import (
    CheckResult,
    CheckSettings,
    PageChecker,
    check_repetition,
    check_text,
    failures,
)
from studio.generate.plan import (
    PlanChoice,
    SeedPicker,
    draw_cells,
    extract,
    plan_cells,
)
from studio.generate.replies import CRITIQUE_SCHEMA, Critique, ReplyError, parse_critique
from studio.generate.taxonomy import dimensions
from studio.generate.threads import CallerThread
from studio.locks import Busy, exclusive
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import Store
from studio.teachers.base import (
    Completion,
    IncompleteReply,
    JsonSchema,
    Message,
    Sampling,
    Teacher,
    TeacherError,
)

log = logging.getLogger("studio.generate")

T = TypeVar("T")
Write = Callable[[Callable[[Store], T]], T]
MAX_PAGES_AT_ONCE = 64  # threads of one batch, whatever the teachers' concurrency says


class GenerateError(ValueError):
    """A batch that cannot start or go on as asked (no teacher for it, nothing to plan)."""


# -- configuration -----------------------------------------------------------------------------


@dataclass(slots=True)
class TeacherChoice:
    """A teacher of the plan: its settings (as saved, never with a key) and its label."""

    config: dict[str, Any]  # TeacherConfig.to_json()
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            c = self.config
            self.label = c.get("base_url") and f"openai:{c['base_url']} ({c.get('model', '')})"
            self.label = self.label or f"local:{c.get('path') or 'default'}"

    @classmethod
    def of(cls, config: Any) -> TeacherChoice:
        """From a :class:`studio.teachers.config.TeacherConfig`."""
        return cls(config.to_json())

    def open(self) -> Teacher:
        from studio.teachers.config import TeacherConfig, open_teacher

        return open_teacher(TeacherConfig.from_json(self.config))


@dataclass(slots=True)
class BatchConfig:
    pages: int = 10  # per round
    rounds: int = 1
    teachers: list[TeacherChoice] = field(default_factory=list)
    best_of: int = 1  # K drafts per page; the critique's scores pick the one rewritten
    max_tokens: int = 1024
    temperature: float = 0.8
    top_p: float = 0.95
    critique_temperature: float = 0.2
    critique_max_tokens: int = 512
    json_retries: int = 2  # asks again when a critique is not readable JSON
    seed_pages: bool = False  # start each page from an extract of a kept web page
    seed: int | None = None  # for the draw of cells and the teachers' sampling
    choice: PlanChoice = field(default_factory=PlanChoice)
    checks: CheckSettings = field(default_factory=CheckSettings)

    def validate(self) -> BatchConfig:
        if self.pages < 1 or self.rounds < 1 or self.best_of < 1:
            raise GenerateError("pages, rounds and best-of are each at least 1")
        if self.best_of > 16:
            raise GenerateError("best-of is at most 16 drafts a page")
        if not self.teachers:
            raise GenerateError("a batch needs at least one teacher")
        if self.max_tokens < 16 or self.json_retries < 0:
            raise GenerateError("max tokens is at least 16, JSON retries at least 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["choice"], d["checks"] = self.choice.to_dict(), self.checks.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchConfig:
        known = set(cls.__dataclass_fields__) - {"teachers", "choice", "checks"}
        return cls(
            **{k: v for k, v in data.items() if k in known},
            teachers=[TeacherChoice(**t) for t in data.get("teachers", [])],
            choice=PlanChoice.from_dict(data.get("choice")),
            checks=CheckSettings.from_dict(data.get("checks")),
        )

    def sampling(self, seed: int | None) -> Sampling:
        return Sampling(self.max_tokens, self.temperature, self.top_p, seed)

    def critique_sampling(self, seed: int | None) -> Sampling:
        # critiques are JSON under a schema: no repeat penalty (see teachers.llama)
        tokens, temperature = self.critique_max_tokens, self.critique_temperature
        return Sampling(tokens, temperature, self.top_p, seed, repeat_penalty=1.0)


# -- events for a live view ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """What the loop is doing, for a live view: ``step`` (a step starts: ``draft 1/3``,
    ``critique 1/3``, ``rewrite``, ``checks``), ``token`` (a piece of the reply), ``restart``
    (the teacher starts its reply over: drop what it sent), ``page`` (a page ended: its status)."""

    kind: str
    page_id: int
    step: str = ""
    text: str = ""


EventFn = Callable[[Event], None]


@dataclass(slots=True)
class BatchReport:
    batch_id: int
    status: str  # done | cancelled
    pages: int
    accepted: int
    rejected: int
    failed: int
    by_round: dict[int, dict[str, int]]
    completion_tokens: int
    teacher_seconds: float
    seconds: float

    @property
    def text(self) -> str:
        head = f"batch {self.batch_id}: {self.accepted} accepted, {self.rejected} rejected"
        tail = f" of {self.pages} pages"
        if self.failed:
            head += f", {self.failed} failed"
        if self.status == "cancelled":
            tail += " (cancelled: resume with --resume)"
        return head + tail

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens_per_second"] = (
            round(self.completion_tokens / self.teacher_seconds, 1) if self.teacher_seconds else 0.0
        )
        return {**d, "text": self.text}


# -- the batch -----------------------------------------------------------------------------------


def new_batch(store: Store, config: BatchConfig) -> int:
    """Record a batch (its first round is planned when it runs)."""
    config.validate()
    plan_cells(store, config.choice) or _no_cells()
    if config.seed_pages:
        SeedPicker(store)  # refuses now, not mid-batch, when there is nothing to seed from
    return record.create_batch(store, config.to_dict())


def ungradable(draft: str) -> CheckResult | None:
    """Why a draft is not worth a critique: empty, not text, or a loop (a small model that
    repeats itself until the token limit); None when it is."""
    for result in (check_text(draft), check_repetition(draft)):
        if result.passed is False:
            return result
    return None


def _no_cells() -> list[Any]:
    raise GenerateError("the plan has no cells: add subtopics, or choose fewer filters")


def run_batch(
    project: Project,
    store: Store,
    batch_id: int,
    *,
    task: Task | None = None,
    on_event: EventFn | None = None,
    write: Write | None = None,
    teachers: dict[str, Teacher] | None = None,
) -> BatchReport:
    """Run (or resume) a batch until every page of every round has ended, or until cancelled.

    Each teacher writes as many pages at once as it serves (its ``concurrency``; a local model
    one), on threads of their own. ``store`` and ``write`` are used only on the calling thread,
    which does every read and write for the pages in turn; ``on_event`` is called from the
    page's thread.

    ``teachers`` maps a :class:`TeacherChoice` label to an open teacher; missing ones are opened
    from the batch's saved settings."""
    task = task or Task()
    write = write or (lambda fn: fn(store))
    started = time.perf_counter()
    config = BatchConfig.from_dict(record.batch(store, batch_id).config)
    try:
        with exclusive(project.root, f"generate-batch-{batch_id}", f"batch {batch_id}"):
            runner = _Runner(
                project, store, batch_id, config, task, on_event, write, teachers or {}
            )
            status = _run(runner, write, batch_id)
    except Busy as exc:  # two writers of one batch would write every step twice
        raise GenerateError(str(exc)) from None
    return runner.report(status, time.perf_counter() - started)


def _run(runner: _Runner, write: Write, batch_id: int) -> str:
    """Run the batch to its end; the batch's stored status says how it ended."""
    status = "failed"  # stays so only when something unexpected stops the run
    write(lambda s: record.set_batch_status(s, batch_id, "running"))
    try:
        runner.run()
        status = "done"
    except Cancelled:
        status = "cancelled"
    except KeyboardInterrupt:  # Ctrl+C in the CLI: the pages in hand resume later
        status = "cancelled"
        raise
    finally:
        write(lambda s: record.set_batch_status(s, batch_id, status))
    return status


@dataclass(slots=True)
class _Outcome:
    """How a page's teacher steps ended: ``accepted`` means "if the checks pass"; ``rewrite``
    is the version the checks run on."""

    status: str
    reasons: list[str]
    text: str | None
    rewrite: record.Version | None = None


class _Runner:
    """One run of one batch; holds what its pages share (teachers, checker, seed picker)."""

    def __init__(
        self,
        project: Project,
        store: Store,
        batch_id: int,
        config: BatchConfig,
        task: Task,
        on_event: EventFn | None,
        write: Write,
        teachers: dict[str, Teacher],
    ) -> None:
        self.project, self.store, self.batch_id, self.config = project, store, batch_id, config
        self.task, self.on_event, self.write = task, on_event, write
        self.teachers = dict(teachers)
        self.choices = {t.label: t for t in config.teachers}
        self.checker = PageChecker(project.root, store, config.checks)
        self.dims = dimensions(store)
        self.tokens = 0
        self.teacher_seconds = 0.0
        self._seeds: SeedPicker | None = None
        self._home = CallerThread()
        self._stop = threading.Event()  # a page failed unexpectedly, or Ctrl+C: stop the others
        self._counts = threading.Lock()
        self._widths: dict[str, int] = {}
        self._flight: dict[Future, record.Page] = {}  # pages being written, by their thread
        self._busy: Counter[str] = Counter()  # pages in flight per teacher label

    # -- the batch ---------------------------------------------------------------------------

    def run(self) -> None:
        total = self.config.pages * self.config.rounds
        width = min(MAX_PAGES_AT_ONCE, sum(self._width(label) for label in self.choices) or 1)
        pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="studio-page")
        try:
            self._dispatch(pool, total)
        except BaseException:
            self._stop.set()  # the pages in flight stop at their next token and stay pending
            raise
        finally:
            try:
                while self._flight:
                    self._wait_for_pages()
            finally:
                self._home.close()
                pool.shutdown(wait=True)
        self.task.progress(total, total, "done")

    def _dispatch(self, pool: ThreadPoolExecutor, total: int) -> None:
        failure: BaseException | None = None
        while True:
            if not self._stopping():
                self._start_pages(pool, total)
            if not self._flight:
                if self._stopping() or not self._plan_next_round():
                    break
                continue
            for error in self._wait_for_pages():
                failure = failure or error
                self._stop.set()
        if failure is not None:
            raise failure
        self.task.check()

    def _stopping(self) -> bool:
        return self._stop.is_set() or self.task.cancelled()

    def _start_pages(self, pool: ThreadPoolExecutor, total: int) -> None:
        """Start the next pages, as many as the teachers' lanes have room for."""
        while True:
            full = [t for t, n in self._busy.items() if n >= self._width(t)]
            in_flight = [p.id for p in self._flight.values()]
            page = record.next_page(self.store, self.batch_id, skip=in_flight, teachers_full=full)
            if page is None:
                return
            self._width(page.teacher)  # a label not of the plan fails here, as GenerateError
            done = self._finished_count()
            n = done + len(self._flight) + 1
            self.task.progress(done, total, f"page {n} of {total}: {page.cell}")
            future = pool.submit(self._write_page, page)
            self._flight[future] = page
            self._busy[page.teacher] += 1
            future.add_done_callback(lambda _f: self._home.wake())

    def _wait_for_pages(self) -> list[BaseException]:
        """Serve the pages' reads and writes until one or more of them end; their errors (a
        cancel is not one)."""
        self._home.serve(until=lambda: any(f.done() for f in self._flight))
        errors = []
        for future in [f for f in self._flight if f.done()]:
            page = self._flight.pop(future)
            self._busy[page.teacher] -= 1
            error = future.exception()
            if error is not None and not isinstance(error, Cancelled):
                log.error("page %s stopped the batch", page.id, exc_info=error)
                errors.append(error)
        return errors

    def _width(self, label: str) -> int:
        """How many pages of this teacher run at once: as many replies as it serves."""
        if label not in self._widths:
            try:
                teacher = self.teacher(label)
            except TeacherError:
                self._widths[label] = 1  # its pages fail one at a time, each with the reason
            else:
                width = getattr(teacher, "concurrency", 1)
                self._widths[label] = max(1, min(MAX_PAGES_AT_ONCE, int(width or 1)))
        return self._widths[label]

    def _finished_count(self) -> int:
        b = record.batch(self.store, self.batch_id)
        return sum(b.counts.get(s, 0) for s in record.FINISHED)

    def _plan_next_round(self) -> bool:
        planned = record.rounds_planned(self.store, self.batch_id)
        if planned >= self.config.rounds:
            return False
        round_ = planned + 1
        seed = None if self.config.seed is None else self.config.seed * 1000 + round_
        rng = random.Random(seed if seed is not None else None)
        cells = draw_cells(
            self.store, self.config.pages, plan_cells(self.store, self.config.choice), rng
        )
        labels = [t.label for t in self.config.teachers]
        planned_pages = []
        for i, cell in enumerate(cells):
            seed_doc = self._seed_picker().pick(cell) if self.config.seed_pages else None
            planned_pages.append((cell, labels[i % len(labels)], seed_doc))
        self.write(lambda s: record.add_pages(s, self.batch_id, round_, planned_pages))
        return True

    def _seed_picker(self) -> SeedPicker:
        if self._seeds is None:
            self._seeds = SeedPicker(self.store)
        return self._seeds

    def teacher(self, label: str) -> Teacher:
        if label not in self.teachers:
            choice = self.choices.get(label)
            if choice is None:
                raise GenerateError(f"the batch has no settings for teacher {label!r}")
            self.teachers[label] = choice.open()
        return self.teachers[label]

    def report(self, status: str, seconds: float) -> BatchReport:
        b = record.batch(self.store, self.batch_id)
        by_round: dict[int, dict[str, int]] = {}
        for round_, st, n in self.store.conn.execute(
            "SELECT round, status, count(*) FROM gen_pages WHERE batch_id = ? "
            "GROUP BY round, status",
            (self.batch_id,),
        ):
            by_round.setdefault(round_, {})[st] = n
        c = b.counts
        return BatchReport(
            self.batch_id, status, sum(c.values()), c.get("accepted", 0), c.get("rejected", 0),
            c.get("failed", 0), by_round, self.tokens, round(self.teacher_seconds, 3),
            round(seconds, 3),
        )  # fmt: skip

    # -- the database, from a page's thread ----------------------------------------------------

    def _write(self, fn: Callable[[Store], T]) -> T:
        return self._home.call(lambda: self.write(fn))

    def _read(self, fn: Callable[[Store], T]) -> T:
        return self._home.call(lambda: fn(self.store))

    # -- one page (on its own thread) ----------------------------------------------------------

    def _write_page(self, page: record.Page) -> None:
        pid = page.id
        self._write(lambda s: record.set_page(s, pid, "running"))
        try:
            outcome = self._page_steps(page)
        except Cancelled:
            self._write(lambda s: record.set_page(s, pid, "pending"))
            raise
        except TeacherError as exc:
            outcome = _Outcome("failed", [f"teacher: {exc}"], None)
        # the checks and the decision run where the writes do, one page at a time, so a page
        # is checked against every page accepted before it (near-duplicates)
        status, reasons = self._home.call(lambda: self._decide(pid, outcome))
        self._emit("page", pid, status, "; ".join(reasons))

    def _decide(self, pid: int, outcome: _Outcome) -> tuple[str, list[str]]:
        status, reasons, text, rewrite = (
            outcome.status, outcome.reasons, outcome.text, outcome.rewrite,
        )  # fmt: skip
        if rewrite is not None:
            self._emit("step", pid, "checks")
            results = self.checker.run(text or "", rewrite.finish_reason or "stop")
            self.write(
                lambda s: record.add_version(
                    s, pid, "checks", parent_id=rewrite.id, data=[r.to_dict() for r in results]
                )
            )
            failed = failures(results)
            if failed:
                status, reasons = "rejected", failed
            else:
                passed = sum(1 for r in results if r.passed)
                skipped = [r.name for r in results if r.passed is None]
                not_run = f" ({', '.join(skipped)} not run)" if skipped else ""
                reasons = [*reasons, f"passed {passed} checks{not_run}"]
        if status == "accepted":
            return self._accept(pid, reasons, text or "")
        self.write(lambda s: record.set_page(s, pid, status, reasons, text=text))
        return status, reasons

    def _accept(self, pid: int, reasons: list[str], text: str) -> tuple[str, list[str]]:
        def accept(s: Store) -> int:
            record.set_page(s, pid, "running", text=text)
            return record.accept(s, pid, reasons)

        try:
            doc_id = self.write(accept)
        except record.RecordError as exc:
            reasons = [f"duplicate: {exc}"]
            self.write(lambda s: record.set_page(s, pid, "rejected", reasons))
            return "rejected", reasons
        self.checker.remember(doc_id, text)
        return "accepted", reasons

    def _page_steps(self, page: record.Page) -> _Outcome:
        """How the page's teacher steps end, once every step has run or been reused."""
        versions = self._read(lambda s: record.versions(s, page.id))
        teacher = self.teacher(page.teacher)
        cell = page.parts
        rng = random.Random(
            page.id if self.config.seed is None else self.config.seed * 7919 + page.id
        )
        system = prompts.system_message(self.dims.find("styles", cell.style).system_bank, rng)
        first = next((v for v in versions if v.kind == "draft" and v.prompt), None)
        if first is not None and first.prompt and first.prompt[0]["role"] == "system":
            system = first.prompt[0]["content"]  # resumed: the same system message as before
        seed_doc = page.seed_doc_id
        seed_text = self._read(lambda s: extract(s, seed_doc)) if seed_doc else None

        drafts = self._drafts(page, teacher, versions, system, seed_text)
        critiques = self._critiques(page, teacher, versions, drafts)
        scored = [(d, c) for d, c in zip(drafts, critiques, strict=True) if c is not None]
        if not scored:
            kept = self._read(lambda s: record.versions(s, page.id))
            errors = {v.parent_id: v.error for v in kept if v.kind == "critique" and v.error}
            why = "; ".join(
                f"draft {d.n + 1}: {unusable.reason}"
                if (unusable := ungradable(d.text or "")) is not None
                else errors.get(d.id) or "no critique"
                for d in drafts
            )
            best_text = next((d.text for d in drafts if d.text and d.text.strip()), None)
            return _Outcome("rejected", [f"critique: no draft could be graded ({why})"], best_text)
        best, critique = max(scored, key=lambda dc: (dc[1].mean, -len(dc[1].problems), -dc[0].n))
        rewrite = self._rewrite(page, teacher, versions, best, critique, system)
        reasons = [f"best of {len(drafts)}: draft {best.n + 1}, critique mean {critique.mean:.1f}"]
        return _Outcome("accepted", reasons, rewrite.text or "", rewrite)

    def _drafts(
        self,
        page: record.Page,
        teacher: Teacher,
        versions: list[record.Version],
        system: str,
        seed_text: str | None,
    ) -> list[record.Version]:
        done = {v.n: v for v in versions if v.kind == "draft" and v.ok}
        messages = prompts.generate_messages(
            page.parts, self.dims, system=system, extract=seed_text
        )
        k = self.config.best_of
        out = []
        for n in range(k):
            if n not in done:
                sampling = self.config.sampling(self._seed(page.id, n))
                done[n] = self._ask(
                    page.id, f"draft {n + 1}/{k}", "draft", teacher, messages, sampling, n=n
                )
            out.append(done[n])
        return out

    def _critiques(
        self,
        page: record.Page,
        teacher: Teacher,
        versions: list[record.Version],
        drafts: list[record.Version],
    ) -> list[Critique | None]:
        """One critique per usable draft (None: the draft is unusable, or no critique of it
        could be read)."""
        by_parent = {v.parent_id: v for v in versions if v.kind == "critique"}
        out: list[Critique | None] = []
        for d in drafts:
            if ungradable(d.text or "") is not None:
                out.append(None)  # nothing a critique could grade, or a rewrite mend
                continue
            v = by_parent.get(d.id)
            if v is None:
                v = self._critique(page, teacher, d)
            out.append(Critique.from_dict(v.data) if v.ok and v.data else None)
        return out

    def _critique(
        self, page: record.Page, teacher: Teacher, draft: record.Version
    ) -> record.Version:
        messages = prompts.critique_messages(page.parts, draft.text or "")
        k = self.config.best_of
        step = f"critique {draft.n + 1}/{k}"
        errors: list[str] = []
        replies: list[str] = []
        seconds, tokens = 0.0, 0
        for attempt in range(self.config.json_retries + 1):
            sampling = self.config.critique_sampling(
                self._seed(page.id, 100 + 10 * draft.n + attempt)
            )
            try:
                reply = self._chat(
                    page.id,
                    step if not attempt else f"{step} (retry {attempt})",
                    teacher,
                    messages,
                    sampling,
                    CRITIQUE_SCHEMA,
                )
            except TeacherError as exc:  # stored with its error, as a failed draft is
                self._store(
                    page.id, "critique", n=draft.n, parent_id=draft.id, teacher=teacher.name,
                    prompt=messages, sampling=sampling.as_dict(), error=str(exc),
                )  # fmt: skip
                raise
            seconds += reply.seconds
            tokens += reply.completion_tokens
            replies.append(reply.text)
            try:
                critique = parse_critique(reply.text)
            except ReplyError as exc:
                errors.append(str(exc))
                messages = prompts.repair_messages(messages, reply.text, str(exc))
                continue
            return self._store_critique(
                page.id,
                draft,
                teacher,
                messages,
                sampling,
                reply,
                critique,
                errors,
                seconds,
                tokens,
            )
        error = f"the critique was not readable JSON after {len(errors)} tries (last: {errors[-1]})"
        data = {
            "attempts": [
                {"reply": r[:4000], "error": e} for r, e in zip(replies, errors, strict=True)
            ]
        }
        return self._store(
            page.id, "critique", n=draft.n, parent_id=draft.id, teacher=teacher.name,
            prompt=messages, sampling=sampling.as_dict(), text=replies[-1], data=data,
            seconds=seconds, completion_tokens=tokens, error=error,
        )  # fmt: skip

    def _store_critique(
        self,
        page_id: int,
        draft: record.Version,
        teacher: Teacher,
        messages: list[Message],
        sampling: Sampling,
        reply: Completion,
        critique: Critique,
        errors: list[str],
        seconds: float,
        tokens: int,
    ) -> record.Version:
        data = critique.to_dict()
        # how the JSON was asked for: a local grammar, a server's response_format, or neither
        asked = "grammar" if "grammar" in reply.extra else reply.extra.get("response_format")
        data["structured"] = asked or "none"
        if errors:
            data["retries"] = errors
        return self._store(
            page_id, "critique", n=draft.n, parent_id=draft.id, teacher=teacher.name,
            prompt=messages, sampling=sampling.as_dict(), text=reply.text, data=data,
            finish_reason=reply.finish_reason, prompt_tokens=reply.prompt_tokens,
            completion_tokens=tokens, seconds=seconds,
        )  # fmt: skip

    def _rewrite(
        self,
        page: record.Page,
        teacher: Teacher,
        versions: list[record.Version],
        best: record.Version,
        critique: Critique,
        system: str,
    ) -> record.Version:
        for v in versions:
            if v.kind == "rewrite" and v.ok and v.parent_id == best.id:
                return v
        messages = prompts.rewrite_messages(
            page.parts, best.text or "", critique.scores, critique.problems, system=system
        )
        sampling = self.config.sampling(self._seed(page.id, 999))
        return self._ask(
            page.id, "rewrite", "rewrite", teacher, messages, sampling, parent_id=best.id
        )

    # -- teacher calls -------------------------------------------------------------------------

    def _ask(
        self,
        page_id: int,
        step: str,
        kind: str,
        teacher: Teacher,
        messages: list[Message],
        sampling: Sampling,
        *,
        n: int = 0,
        parent_id: int | None = None,
    ) -> record.Version:
        """One teacher call, stored as a version (a failed call is stored with its error)."""
        try:
            reply = self._chat(page_id, step, teacher, messages, sampling)
        except TeacherError as exc:  # a cancel is not an error: it raises Cancelled instead
            self._store(
                page_id, kind, n=n, parent_id=parent_id, teacher=teacher.name,
                prompt=messages, sampling=sampling.as_dict(), error=str(exc),
            )  # fmt: skip
            raise
        return self._store(
            page_id, kind, n=n, parent_id=parent_id, teacher=reply.teacher, prompt=messages,
            sampling=sampling.as_dict(), text=reply.text, finish_reason=reply.finish_reason,
            prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
            seconds=round(reply.seconds, 3),
        )  # fmt: skip

    def _chat(
        self,
        page_id: int,
        step: str,
        teacher: Teacher,
        messages: list[Message],
        sampling: Sampling,
        json_schema: JsonSchema | None = None,
    ) -> Completion:
        if self._stopping():
            raise Cancelled()
        self._emit("step", page_id, step)
        extra: dict[str, Any] = {} if json_schema is None else {"json_schema": json_schema}
        try:
            reply = teacher.chat(
                messages,
                sampling,
                on_token=lambda piece: self._emit("token", page_id, step, piece),
                cancelled=self._stopping,
                on_restart=lambda why: self._emit("restart", page_id, step, why),
                **extra,
            )
        except IncompleteReply:
            if self._stopping():
                raise Cancelled() from None
            raise
        with self._counts:
            self.tokens += reply.completion_tokens
            self.teacher_seconds += reply.seconds
        return reply

    def _store(self, page_id: int, kind: str, **fields: Any) -> record.Version:
        def store() -> record.Version:
            vid = self.write(lambda s: record.add_version(s, page_id, kind, **fields))
            return next(v for v in record.versions(self.store, page_id) if v.id == vid)

        return self._home.call(store)

    def _seed(self, page_id: int, k: int) -> int | None:
        if self.config.seed is None:
            return None
        return (self.config.seed * 1_000_003 + page_id * 1009 + k) & 0x7FFFFFFF

    def _emit(self, kind: str, page_id: int, step: str, text: str = "") -> None:
        if self.on_event is not None:
            self.on_event(Event(kind, page_id, step, text))
