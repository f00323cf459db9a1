"""A run folder, self-describing, under the project's ``runs/``::

    runs/NAME/
      run.json          what was asked: recipe, size, steps, seed, device, tokenizer
      recipe.json       the resolved recipe: its settings, and per source and evaluation set the
                        documents, tokens, share of the mix and repeats; warnings
      config.json       the transformers model config and the training config
      env.json          where it ran: versions of Python, torch, transformers; device; threads
      tokenizer.json    the tokenizer the run trained (or was given)
      data/             train.bin, eval-*.bin (token streams), plan.json, documents.json
      metrics.jsonl     every progress line the job printed
      status.json       preparing | running | done | cancelled | failed, with the step
      checkpoints/      step-NNNNNNN/ (safetensors + meta.json), latest

Example::

    run = prepare_run(project, "curated", "curated-tiny", size="tiny", steps=200)
    state = train_run(run, emit=print, task=Task())
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio import __version__
from studio.locks import Busy, exclusive
from studio.progress import Task, process_alive
from studio.project import Project
from studio.store import now
from studio.training import checkpoint as ckpt
from studio.training.data import Encoder, TokenStream, build_data, dtype_for, tokenizer_texts
from studio.training.loop import (
    Emit,
    TrainConfig,
    Trainer,
    check_memory,
    resolve_device,
    run_steps,
    torch_threads,
)
from studio.training.mix import resolve
from studio.training.model import SIZES, model_config
from studio.training.recipe import load_recipe
from studio.training.tokenizer import eos_id, load_tokenizer, train_tokenizer

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")  # whole name: see check_run_name
MAX_NAME = 80
EVAL_DOC_WINDOWS = 4  # an evaluation page gives at most this many windows
DEFAULT_STEPS = 200
# files whose damage stops a run from being listed truthfully or continued
VITAL_FILES = ("run.json", "status.json", "config.json", "data/plan.json")
RUN_MARKERS = ("run.json", "config.json", "checkpoints")  # a folder holding one is a run's
STEP_NUMBERS = ("steps", "tokens", "tokens_per_s", "elapsed_s", "eta_s", "lr", "mfu")


class RunError(Exception):
    """A run that cannot be started or resumed as asked."""


def check_run_name(name: str, what: str = "run") -> str:
    """``name`` when a run (or comparison) folder can be made of it; a :class:`RunError` says
    why not. Checked before any path is built: the name is a folder under ``runs/`` (a long one
    is refused by the file system) and an argument of the child process (a NUL cuts it short
    there, so the job would train under another name)."""
    why = _name_problem(name)
    if why:
        raise RunError(f"cannot use {shown_name(name)} as a {what} name: {why}")
    return name


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is {len(name):,} characters long, at most {MAX_NAME}"
    if any(not c.isprintable() for c in name):
        return "it contains a control character"
    if not NAME.fullmatch(name):
        return "use only A-Z, a-z, 0-9, '-', '_' and '.', starting with a letter or digit"
    return None


def shown_name(name: str) -> str:
    """A name as a message quotes it: control characters escaped, a long one cut short."""
    return repr(name[:40] + ("..." if len(name) > 40 else ""))


@dataclass
class Run:
    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def read(self, name: str, default: Any = None) -> Any:
        """The file's JSON object; ``default`` when it is absent, unreadable or any other JSON
        shape, so that a damaged file never breaks a listing (:meth:`damage` says what)."""
        data, _why = self._parse(name)
        return default if data is None else data

    def load(self, name: str) -> dict[str, Any] | None:
        """The file's JSON object, or None when there is none; a damaged file raises a
        :class:`RunError` that says so, rather than passing for a missing one."""
        data, why = self._parse(name)
        if why:
            raise RunError(
                f"run {self.name} cannot continue: {why}; "
                "train it again under another name (its checkpoints can still be sampled)"
            )
        return data

    def _parse(self, name: str) -> tuple[dict[str, Any] | None, str | None]:
        """(the file's JSON object or None, what is wrong with it or None): absent is not
        wrong."""
        try:
            raw = self.path(name).read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:  # a folder in its place, no permission
            return None, f"{name} cannot be read ({exc.strerror or exc})"
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            return None, f"{name} is damaged (not valid JSON)"
        if not isinstance(data, dict):
            return None, f"{name} is damaged (not a JSON object)"
        return data, None

    def damage(self) -> str | None:
        """What is wrong with the first of the run's vital files that is there but unreadable."""
        for name in VITAL_FILES:
            why = self._parse(name)[1]
            if why:
                return why
        if self.path("config.json").exists() or self.path("checkpoints").exists():
            for name in ("run.json", "tokenizer.json"):  # there from the start of a prepared run
                if not self.path(name).is_file():
                    return f"{name} is missing"
        return None

    def write(self, name: str, data: Any) -> None:
        tmp = self.path(name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str), "utf-8")
        tmp.replace(self.path(name))

    def status(self) -> dict[str, Any]:
        """The stored status; a job that died without saying so shows as ``crashed``, and a run
        whose files are damaged as ``damaged: ...`` with the file and what is wrong."""
        status = self.read("status.json", {})
        damage = self.damage()
        if damage:
            return {**status, "state": f"damaged: {damage}"}
        if status.get("state") in ("preparing", "running") and not process_alive(status.get("pid")):
            status = {**status, "state": "crashed"}
        return status

    def set_status(self, state: str, **more: Any) -> None:
        self.write(
            "status.json",
            {**self.read("status.json", {}), "state": state, "updated_at": now(), **more},
        )

    def metrics(self) -> list[dict[str, Any]]:
        """Every line the job printed, in order (unreadable lines skipped)."""
        return read_metrics(self.path("metrics.jsonl"))

    def config(self) -> tuple[dict[str, Any], TrainConfig]:
        data = self.load("config.json")
        if not data:
            raise RunError(f"run {self.name} has no config.json: it was never prepared")
        model, train = data.get("model"), data.get("train")
        try:
            if not isinstance(model, dict) or not isinstance(train, dict):
                raise TypeError("no model or training settings")
            return model, TrainConfig(**train)
        except TypeError as exc:  # settings missing, or ones this studio does not know
            raise RunError(
                f"run {self.name} cannot continue: config.json is damaged ({exc}); "
                "train it again under another name"
            ) from exc


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def well_formed_eval(value: Any) -> bool:
    """An evaluation: set name to ``{"loss": number, "bpb": number or None}`` (None: none)."""
    if value is None:
        return True
    return isinstance(value, dict) and all(
        isinstance(v, dict)
        and is_number(v.get("loss"))
        and (v.get("bpb") is None or is_number(v.get("bpb")))
        for v in value.values()
    )


def well_formed(event: Any) -> bool:
    """Whether a metrics line is an event every reader can use as it is: a step with its
    numbers, an evaluation with its losses. Any other line is skipped, so a hand-edited or
    damaged ``metrics.jsonl`` never breaks a listing or a plot."""
    if not isinstance(event, dict) or not isinstance(event.get("run", ""), str):
        return False
    kind = event.get("event")
    if kind == "step":
        return (
            is_int(event.get("step"))
            and is_number(event.get("loss"))
            and all(event.get(k) is None or is_number(event[k]) for k in STEP_NUMBERS)
        )
    if kind == "eval":
        return is_int(event.get("step")) and well_formed_eval(event.get("eval"))
    return True


def read_metrics(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if well_formed(item):
            out.append(item)
    return out


def runs_dir(project: Project) -> Path:
    return project.dir("runs")


@contextmanager
def run_lock(project: Project, name: str, what: str = "run") -> Iterator[None]:
    """Hold run ``name`` (or comparison) for one process: a second ``studio train`` of the same
    name, new or resumed, is refused with :class:`RunError` instead of writing the same folder."""
    try:
        with exclusive(project.root, f"run-{name}", f"{what} {name}"):
            yield
    except Busy as exc:
        raise RunError(str(exc)) from None


def list_runs(project: Project) -> list[Run]:
    folder = runs_dir(project)
    if not folder.is_dir():
        return []
    # a run.json that is there but no file (a folder in its place), or a prepared run that lost
    # it, lists its run as damaged
    found = [Run(p) for p in folder.iterdir() if any((p / f).exists() for f in RUN_MARKERS)]
    return sorted(found, key=lambda r: (str(r.read("run.json", {}).get("created_at", "")), r.name))


def open_run(project: Project, name: str) -> Run:
    """The listed run called ``name``: looked up among the runs rather than built into a path,
    so a name no folder can have is an unknown run, not a file-system error."""
    runs = list_runs(project)
    for run in runs:
        if run.name == name:
            return run
    known = ", ".join(r.name for r in runs) or "none"
    raise RunError(f"no run {shown_name(name)} in {project.root} (runs: {known})")


# -- preparing a run -------------------------------------------------------------------------------


def prepare_run(
    project: Project,
    recipe_name: str,
    run_name: str,
    *,
    size: str = "tiny",
    steps: int | None = None,
    tokens: int | None = None,
    tokenizer: Path | None = None,
    emit: Emit | None = None,
    task: Task | None = None,
    evals_from: str | None = None,
    **train_options: Any,
) -> Run:
    """Resolve the recipe, train (or copy) the tokenizer and lay out the token streams."""
    task = task or Task()
    emit = emit or (lambda _e: None)
    check_run_name(run_name)
    if size not in SIZES:
        raise RunError(f"no model size {size!r} (sizes: {', '.join(SIZES)})")
    run = Run(runs_dir(project) / run_name)
    if run.path("run.json").exists():
        raise RunError(f"run {run_name} exists: resume it with --resume, or choose another name")
    stray = _stray_files(run.root)
    if stray:  # a run's checkpoints without its run.json, or someone else's files
        raise RunError(
            f"runs/{run_name} already holds {', '.join(stray)}, and no run.json: "
            "it is not a run the studio can continue or write over; move those files away or "
            "choose another name"
        )
    recipe = load_recipe(project.root, recipe_name)
    if evals_from is not None:  # a comparison scores every recipe on the same sets
        other = load_recipe(project.root, evals_from)
        recipe.evals, recipe.heldout, recipe.split_seed = (
            other.evals,
            other.heldout,
            other.split_seed,
        )
    if steps is None:
        per_step = TrainConfig.for_size(size, **train_options).tokens_per_step
        steps = max(1, math.ceil(tokens / per_step)) if tokens else DEFAULT_STEPS
    cfg = TrainConfig.for_size(size, steps=steps, **train_options)
    # a device that is not there, a micro-batch too big for it, a stream too big for the disk:
    # each fails now, not after preparing
    device = resolve_device(cfg.device)
    vocab = load_tokenizer(tokenizer).get_vocab_size() if tokenizer else SIZES[size].vocab
    check_memory(model_config(SIZES[size], vocab, 0), cfg, device)
    run_tokens = cfg.steps * cfg.tokens_per_step
    _check_space(run.root.parent, cfg.steps, run_tokens, vocab)
    with project.store(readonly=True) as store:
        mix = resolve(store, recipe)
        shares = mix.shares(run_tokens)  # a recipe that selects nothing fails before any file
        run.root.mkdir(parents=True, exist_ok=True)
        run.path("metrics.jsonl").unlink(missing_ok=True)  # left by a run never prepared
        request = {
            "name": run_name,
            "recipe": recipe.name,
            "size": size,
            "steps": cfg.steps,
            "tokens": run_tokens,
            "seed": cfg.seed,
            "tokenizer": str(tokenizer) if tokenizer else None,
            "evals_from": evals_from,
            "created_at": now(),
            "studio_version": __version__,
        }
        run.write("run.json", request)
        run.set_status("preparing", pid=os.getpid(), step=0, steps=cfg.steps)
        what = "reading the tokenizer" if tokenizer else "training the tokenizer"
        emit({"event": "prepare", "stage": "tokenizer", "message": what})
        tok = _tokenizer(run, store, mix, shares, size, tokenizer, cfg.seed)
        task.check()
        encoder = Encoder(tok, eos_id(tok), dtype_for(tok.get_vocab_size()))
        emit({"event": "prepare", "stage": "data", "message": "tokenizing the mix"})
        plan = build_data(
            store,
            mix,
            encoder,
            run_tokens,
            seed=cfg.seed,
            eval_tokens=cfg.eval_windows * cfg.context + 1,
            eval_doc_tokens=EVAL_DOC_WINDOWS * cfg.context,
            folder=run.path("data"),
            task=task,
        )
    run.write("data/documents.json", {s.source.name: s.train for s in mix.sources})
    counts = mix.counts(run_tokens)
    run.write(
        "recipe.json", {"recipe": recipe.to_dict(), "counts": counts, "warnings": mix.warnings}
    )
    run.write(
        "config.json",
        {
            "model": model_config(SIZES[size], tok.get_vocab_size(), encoder.eos),
            "train": cfg.to_dict(),
        },
    )
    run.write("env.json", environment(cfg.device))
    emit({"event": "prepared", "plan": plan, "warnings": mix.warnings})
    return run


def _check_space(folder: Path, steps: int, run_tokens: int, vocab: int) -> None:
    """Refuse a run whose token stream (every token it reads, laid out when it starts) cannot
    fit on the disk that holds ``runs/``: a mistyped ``--steps 99999999999`` fails here, at once,
    instead of filling the disk."""
    need = (run_tokens + 1) * dtype_for(vocab).itemsize
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # not there yet, or not for us to see: its writes will say
        return
    if need > free:
        raise RunError(
            f"a run of {steps:,} steps reads {run_tokens:,} tokens, and its token stream needs "
            f"{_gigabytes(need)} on disk where {folder} has {_gigabytes(free)} free: ask for "
            "fewer --steps or --tokens, or free some space"
        )


def _gigabytes(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n < 1e15 else f"{n:.1e} bytes"


# what a preparation stopped part-way leaves (the run starts afresh over it); anything else in a
# run folder without run.json is refused rather than mixed with the new run's files
PREPARATION_FILES = frozenset(
    {"status.json", "metrics.jsonl", "error.log", "tokenizer.json", "data"}
    | {"recipe.json", "config.json", "env.json"}
)


def _stray_files(folder: Path) -> list[str]:
    """Up to five names in ``folder`` that a new run must not be written next to."""
    try:
        names = sorted(p.name for p in folder.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RunError(f"{folder} cannot be read: {exc.strerror or exc}") from exc
    stray = [n for n in names if n not in PREPARATION_FILES and not n.endswith(".tmp")]
    return [shown_name(n) for n in stray[:5]] + (
        [f"{len(stray) - 5} more"] if len(stray) > 5 else []
    )


def _tokenizer(
    run: Run, store: Any, mix: Any, shares: list[float], size: str, given: Path | None, seed: int
) -> Any:
    target = run.path("tokenizer.json")
    if given is not None:
        tok = load_tokenizer(given)
        tok.save(str(target))
        return tok
    # read here: the library pulls the texts from a thread of its own, and a SQLite
    # connection stays in the thread that opened it
    texts = list(tokenizer_texts(store, mix, shares, seed))
    tok = train_tokenizer(texts, SIZES[size].vocab)
    tok.save(str(target))
    return tok


def environment(device: str) -> dict[str, Any]:
    import tokenizers
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    return {
        "studio": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "device_requested": device,
        "cuda": torch.version.cuda if cuda else None,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "frozen": bool(getattr(sys, "frozen", False)),
    }


# -- training a prepared run -----------------------------------------------------------------------


def train_run(
    run: Run, *, emit: Emit, task: Task, resume: bool = False, device: str | None = None
) -> str:
    """Train the prepared run to its last step (or from its latest checkpoint with ``resume``);
    returns the final state: ``done`` or ``cancelled`` (a checkpoint is saved either way)."""
    damage = run.damage()
    if damage:
        raise RunError(
            f"run {run.name} cannot continue: {damage}; train it again under another name"
        )
    model_cfg, cfg = run.config()
    if device:
        cfg.device = device
    check_memory(model_cfg, cfg, resolve_device(cfg.device))
    with torch_threads(cfg.threads):
        return _train(run, model_cfg, cfg, emit=emit, task=task, resume=resume)


def _train(
    run: Run, model_cfg: dict[str, Any], cfg: TrainConfig, *, emit: Emit, task: Task, resume: bool
) -> str:
    stream, evals = _streams(run)
    trainer = Trainer(model_cfg, cfg, stream, evals)
    start = 0
    latest = ckpt.latest_checkpoint(run.root) if resume else None
    if latest is not None:
        meta = ckpt.load_checkpoint(latest, trainer.raw_model, trainer.optimizer, trainer.device)
        start = int(meta["step"])
    if resume:
        _truncate_metrics(run, start)
    run.set_status("running", pid=os.getpid(), step=start, steps=cfg.steps, error=None)
    emit(
        {
            "event": "start",
            "run": run.name,
            "recipe": run.read("run.json", {}).get("recipe"),
            "size": cfg.size,
            "params": trainer.n_params,
            "steps": cfg.steps,
            "tokens_per_step": cfg.tokens_per_step,
            "device": trainer.device_name,
            "bf16": trainer.bf16,
            "compile": trainer.compiled,
            "resumed_from": start if latest is not None else None,
        }
    )
    if start == 0 and cfg.eval_every:
        emit({"event": "eval", "step": 0, "eval": trainer.evaluate()})

    def save(step: int) -> None:
        meta = {
            "step": step,
            "tokens": step * cfg.tokens_per_step,
            "data_position": step * cfg.accum,  # micro-batches read: the stream's offset
            "seed": cfg.seed,
            "config": model_cfg,
            "train": cfg.to_dict(),
            "saved_at": now(),
        }
        path = ckpt.save_checkpoint(
            run.root, trainer.raw_model, trainer.optimizer, meta, keep=cfg.keep_checkpoints
        )
        emit({"event": "checkpoint", "step": step, "path": str(path.relative_to(run.root))})
        run.set_status("running", step=step)

    def every(step: int) -> None:
        for note in trainer.notes:
            emit({"event": "note", "message": note})
        trainer.notes.clear()
        if step == cfg.steps:
            return  # the end saves and evaluates once
        if cfg.eval_every and step % cfg.eval_every == 0:
            emit({"event": "eval", "step": step, "eval": trainer.evaluate()})
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            save(step)

    done = (
        run_steps(trainer, start, cfg.steps, emit=emit, task=task, every=every)
        if start < cfg.steps
        else start
    )
    if done == cfg.steps and cfg.eval_every:
        emit({"event": "eval", "step": done, "eval": trainer.evaluate()})
    last = ckpt.latest_checkpoint(run.root)
    if last is None or ckpt.read_meta(last)["step"] != done:
        save(done)
    state = "done" if done == cfg.steps else "cancelled"
    run.set_status(state, step=done)
    emit({"event": "end", "state": state, "step": done, "steps": cfg.steps})
    return state


def _streams(run: Run) -> tuple[TokenStream, dict[str, tuple[TokenStream, float]]]:
    """The training stream and each evaluation set's, as ``data/plan.json`` describes them."""
    plan = run.load("data/plan.json")
    if not plan:
        raise RunError(f"run {run.name} has no data: it was stopped while being prepared")
    try:
        stream = TokenStream(run.path("data", "train.bin"), plan["dtype"])
        evals = {
            name: (TokenStream(run.path("data", e["file"]), plan["dtype"]), e["bytes_per_token"])
            for name, e in plan["evals"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:  # a plan of another shape
        raise RunError(
            f"run {run.name} cannot continue: data/plan.json is damaged ({exc}); "
            "train it again under another name"
        ) from exc
    return stream, evals


def _truncate_metrics(run: Run, step: int) -> None:
    """Forget what the job printed after the checkpoint it resumes from: the resumed run prints
    those steps again, so the curve continues instead of doubling back."""
    path = run.path("metrics.jsonl")
    kept = [
        m for m in read_metrics(path) if not isinstance(m.get("step"), int) or m["step"] <= step
    ]
    kept = [m for m in kept if m.get("event") not in ("end",)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(m) + "\n" for m in kept), "utf-8")
    tmp.replace(path)


def metrics_writer(run: Run, out: Callable[[str], None] | None) -> Emit:
    """An emitter that appends each event to ``metrics.jsonl`` and hands its line to ``out``."""

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str)
        with run.path("metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        if out is not None:
            out(line)

    return emit
