"""The student's training loop on a tiny CPU model: the loss falls, a cancelled run resumes to
exactly the uninterrupted run, checkpoints hold no pickles, samples come from any checkpoint,
and a comparison trains recipes in turn on the same tokenizer and evaluation sets."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from studio.progress import Task
from studio.project import Project
from studio.training import checkpoint as ckpt
from studio.training.compare import compare_recipes, format_table, list_comparisons
from studio.training.loop import TrainConfig, lr_at
from studio.training.run import (
    Run,
    RunError,
    list_runs,
    metrics_writer,
    open_run,
    prepare_run,
    read_metrics,
    train_run,
)
from studio.training.sample import checkpoint_path, generate, load_student
from tests.core.test_training import make_training_project

pytestmark = pytest.mark.slow  # each test trains a model for tens of steps (a few seconds)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loop") / "project"
    project = Project.open(root)
    with project.store() as store:
        make_training_project(project, store, lessons=30, shop=30)
    return root


@pytest.fixture
def trained(template: Path, tmp_path: Path) -> Project:
    shutil.copytree(template, tmp_path / "p")
    return Project.open(tmp_path / "p", create=False)


def _train(
    project: Project,
    name: str,
    recipe: str = "all",
    *,
    cancel_at: int | None = None,
    resume: bool = False,
    **options,
) -> tuple[Run, list[dict]]:
    """Prepare (unless resuming) and train a tiny run; returns it and what it printed."""
    events: list[dict] = []
    task = Task()
    run = Run(project.root / "runs" / name)
    if not resume:
        options = {
            "eval_every": 10,
            "checkpoint_every": 10,
            "eval_windows": 16,
            "threads": 1,
            **options,
        }
        prepare_run(project, recipe, name, size="tiny", task=task, **options)
    write = metrics_writer(run, None)

    def emit(event: dict) -> None:
        write(event)
        events.append(event)
        if cancel_at is not None and event.get("event") == "step" and event["step"] == cancel_at:
            task.cancel()

    train_run(run, emit=emit, task=task, resume=resume)
    return run, events


def _losses(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e.get("event") == "step"}


def test_the_loss_falls_and_the_run_folder_describes_itself(trained: Project) -> None:
    run, events = _train(trained, "falls", steps=60)
    losses = list(_losses(events).values())
    assert len(losses) == 60 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-5:]) / 5 < losses[0] - 1.0  # from ~7.6 (uniform over the vocabulary)
    evals = [e for e in events if e.get("event") == "eval"]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 60
    assert set(evals[-1]["eval"]) == {"web", "textbook"}  # no synthetic pages: that set is out
    for name in ("web", "textbook"):
        assert evals[-1]["eval"][name]["loss"] < evals[0]["eval"][name]["loss"] - 0.5
        assert 0 < evals[-1]["eval"][name]["bpb"] < 10
    step = next(e for e in events if e.get("event") == "step")
    assert {"step", "loss", "lr", "tokens", "tokens_per_s", "eta_s", "gpu_mem_mb", "mfu"} <= set(
        step
    )
    assert step["gpu_mem_mb"] is None and step["mfu"] is None  # on a CPU
    assert events[-1] == {"event": "end", "state": "done", "step": 60, "steps": 60}
    for name in ("run.json", "recipe.json", "config.json", "env.json", "tokenizer.json"):
        assert run.path(name).is_file(), name
    recipe = run.read("recipe.json")
    assert recipe["recipe"]["name"] == "all" and recipe["counts"][0]["documents"] > 0
    assert any("synthetic" in w for w in recipe["warnings"])
    assert run.read("config.json")["train"]["steps"] == 60
    assert run.read("env.json")["torch"] and run.status()["state"] == "done"
    assert len(read_metrics(run.path("metrics.jsonl"))) == len(events)
    assert [r.name for r in list_runs(trained)] == ["falls"]


def test_a_cancelled_run_resumes_exactly_where_it_stopped(trained: Project) -> None:
    # two micro-batches a step: accumulation resumes exactly too
    _, whole = _train(trained, "whole", steps=24, accum=2, batch=4)
    run, first = _train(trained, "parts", steps=24, accum=2, batch=4, cancel_at=13)
    assert first[-1]["state"] == "cancelled" and first[-1]["step"] == 13
    # cancel saves a checkpoint at the step it stopped at
    latest = ckpt.latest_checkpoint(run.root)
    assert latest is not None and ckpt.read_meta(latest)["step"] == 13
    assert run.status()["state"] == "cancelled"
    _, second = _train(trained, "parts", resume=True)
    start = next(e for e in second if e.get("event") == "start")
    assert start["resumed_from"] == 13
    assert _losses(second) == {k: v for k, v in _losses(whole).items() if k > 13}
    # the weights at the end are the very same bytes
    a = load_file(
        str(ckpt.latest_checkpoint(trained.root / "runs" / "whole") / "model.safetensors")
    )
    b = load_file(str(ckpt.latest_checkpoint(run.root) / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    # the stored curve lists each step once, in order
    steps = [m["step"] for m in run.metrics() if m.get("event") == "step"]
    assert steps == list(range(1, 25))


def test_checkpoints_hold_no_pickle_and_keep_only_the_newest(trained: Project) -> None:
    run, _ = _train(trained, "ckpt", steps=30, keep_checkpoints=2)
    names = [p.name for p in ckpt.list_checkpoints(run.root)]
    assert names == ["step-0000020", "step-0000030"]
    folder = ckpt.latest_checkpoint(run.root)
    assert folder is not None
    assert sorted(p.name for p in folder.iterdir()) == [
        "meta.json",
        "model.safetensors",
        "optimizer.safetensors",
    ]
    meta = json.loads((folder / "meta.json").read_text("utf-8"))
    assert meta["step"] == 30 and meta["data_position"] == 30 and meta["seed"] == 0
    assert meta["optimizer"]["type"] == "AdamW" and meta["rng"]["python"]
    state = load_file(str(folder / "optimizer.safetensors"))
    assert any(k.endswith(".exp_avg_sq") for k in state) and "rng.torch" in state
    for path in run.root.rglob("*"):
        assert path.suffix not in (".pt", ".pth", ".pkl", ".ckpt"), path
    # a torn checkpoint (a crash while writing) is never picked up
    torn = run.path("checkpoints", "step-0000040.tmp")
    torn.mkdir()
    assert ckpt.latest_checkpoint(run.root) == folder


def test_samples_come_from_any_checkpoint(trained: Project) -> None:
    run, _ = _train(trained, "sample", steps=20)
    student = load_student(run, 10)
    assert student.step == 10
    text = generate(student, "The magnet", max_tokens=30, seed=1)
    assert isinstance(text, str) and text
    assert generate(student, "The magnet", max_tokens=30, seed=1) == text  # seeded
    greedy = generate(load_student(run), "", max_tokens=20, temperature=0)
    assert greedy == generate(load_student(run), "", max_tokens=20, temperature=0)
    with pytest.raises(RunError, match="no checkpoint at step 7"):
        load_student(run, 7)
    # weights cut short: a clear error, and the earlier checkpoint still loads
    weights = checkpoint_path(run, 20) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(ckpt.CheckpointError, match="cannot read the weights of checkpoint"):
        load_student(run, 20)
    assert load_student(run, 10).step == 10


def test_runs_refuse_bad_requests(trained: Project) -> None:
    with pytest.raises(RunError, match="run name"):
        prepare_run(trained, "all", "../escape")
    with pytest.raises(RunError, match="no model size"):
        prepare_run(trained, "all", "ok", size="huge")
    _train(trained, "twice", steps=2)
    with pytest.raises(RunError, match="exists"):
        prepare_run(trained, "all", "twice")
    with pytest.raises(RunError, match="no run 'ghost'"):
        open_run(trained, "ghost")
    # a finished run whose run.json is gone: its checkpoints are never mixed with a new run's
    runs = trained.root / "runs"
    (runs / "twice" / "run.json").unlink()
    before = sorted(p.relative_to(runs) for p in (runs / "twice").rglob("*"))
    with pytest.raises(RunError, match=r"already holds 'checkpoints'.*no run\.json"):
        prepare_run(trained, "all", "twice")
    assert sorted(p.relative_to(runs) for p in (runs / "twice").rglob("*")) == before
    (runs / "mine").mkdir()
    (runs / "mine" / "notes.txt").write_text("my own notes")
    with pytest.raises(RunError, match="'notes.txt'"):
        prepare_run(trained, "all", "mine")
    assert [p.name for p in (runs / "mine").iterdir()] == ["notes.txt"]


def test_a_gpu_runs_code_paths_train_on_a_cpu_when_asked(trained: Project) -> None:
    """bf16 autocast and torch.compile, which a GPU run takes by default, asked for on the CPU:
    the loss falls, the checkpoints hold the plain model's weights (not the compiled wrapper's
    names) and a sample loads from them."""
    run, events = _train(
        trained, "bf16", steps=16, precision="bf16", compile="on", eval_every=8, checkpoint_every=8
    )
    start = next(e for e in events if e.get("event") == "start")
    notes = [e["message"] for e in events if e.get("event") == "note"]
    assert start["bf16"] is True
    # compiled on first use; where it cannot be (no C compiler), a note says it ran eagerly
    assert start["compile"] is True
    assert not notes or all("torch.compile failed" in n for n in notes), notes
    losses = list(_losses(events).values())
    assert len(losses) == 16 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-4:]) / 4 < losses[0] - 0.3
    evals = [e for e in events if e.get("event") == "eval"]
    assert [e["step"] for e in evals] == [0, 8, 16]
    assert all(math.isfinite(v["loss"]) for e in evals for v in e["eval"].values())
    weights = load_file(str(ckpt.latest_checkpoint(run.root) / "model.safetensors"))
    assert weights and not any("_orig_mod" in k for k in weights)
    assert run.read("config.json")["train"]["precision"] == "bf16"
    assert generate(load_student(run), "The magnet", max_tokens=10, seed=1)
    with pytest.raises(ValueError, match="precision 'fp8'"):
        TrainConfig.for_size("tiny", precision="fp8")


def test_the_schedule_warms_up_then_decays_to_its_floor() -> None:
    cfg = TrainConfig.for_size("tiny", steps=100)
    assert cfg.warmup == 10
    lrs = [lr_at(cfg, s) for s in range(100)]
    assert lrs[0] == pytest.approx(cfg.lr / 10) and lrs[9] == pytest.approx(cfg.lr)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=0.01)
    assert TrainConfig.for_size("124m").context == 1024


def test_a_comparison_trains_each_recipe_on_the_same_sets(trained: Project) -> None:
    events: list[dict] = []
    report = compare_recipes(
        trained,
        ["curated", "raw"],
        name="cvr",
        size="tiny",
        steps=12,
        emit=events.append,
        task=Task(),
        eval_every=6,
        eval_windows=16,
    )
    assert report["state"] == "done"
    assert [r["recipe"] for r in report["runs"]] == ["curated", "raw"]
    for r in report["runs"]:
        assert set(r["eval"]) == {"web", "textbook"} and r["state"] == "done"
    runs = [Run(trained.root / "runs" / r["run"]) for r in report["runs"]]
    tokenizers = {r.path("tokenizer.json").read_bytes() for r in runs}
    assert len(tokenizers) == 1  # one tokenizer: losses in the same units
    for name in ("eval-web.bin", "eval-textbook.bin"):
        files = {r.path("data", name).read_bytes() for r in runs}
        assert len(files) == 1  # the very same evaluation tokens
    assert {e.get("run") for e in events if e.get("event") == "step"} == {"cvr-curated", "cvr-raw"}
    table = format_table(report)
    assert "curated" in table and "web loss (bpb)" in table
    # asked again: nothing is trained twice
    again: list[dict] = []
    assert (
        compare_recipes(
            trained,
            ["curated", "raw"],
            name="cvr",
            size="tiny",
            steps=12,
            emit=again.append,
            task=Task(),
            eval_every=6,
            eval_windows=16,
        )["runs"]
        == report["runs"]
    )
    assert not [e for e in again if e.get("event") == "step"]
    with pytest.raises(RunError, match="other settings"):
        compare_recipes(trained, ["curated", "raw"], name="cvr", steps=99, emit=print, task=Task())
    with pytest.raises(RunError, match="two recipes"):
        compare_recipes(trained, ["raw"], name="x", emit=print, task=Task())
    assert [c["name"] for c in list_comparisons(trained)] == ["cvr"]


def test_the_memory_floor_is_below_what_a_real_step_holds() -> None:
    """`train` refuses a micro-batch whose memory floor exceeds the free memory; the floor must
    stay under what a step really holds, or a batch that fits would be refused. One real step
    of the tiny model (two AdamW steps, float32, on the CPU) in a child process, its peak RSS
    growth against the floor."""
    import subprocess
    import sys

    from studio.training.loop import memory_floor
    from studio.training.model import SIZES, model_config

    script = (
        "import re, torch\n"
        "import torch.nn.functional as F\n"
        "def peak():  # VmHWM, this process's own: ru_maxrss starts at the forking parent's\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) * 1024\n"
        "from studio.training.model import SIZES, model_config, build_model\n"
        "s = SIZES['tiny']; cfg = model_config(s, s.vocab, 0); torch.set_num_threads(1)\n"
        "m = build_model(cfg); opt = torch.optim.AdamW(m.parameters())\n"
        "base = peak()\n"
        "x = torch.randint(0, s.vocab, (128, s.context))\n"
        "for _ in range(2):\n"
        "    logits = m(input_ids=x).logits\n"
        "    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), x.view(-1))\n"
        "    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); del logits, loss\n"
        "print(peak() - base)\n"
    )
    held = int(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
        ).stdout.split()[-1]
    )
    floor = memory_floor(model_config(SIZES["tiny"], SIZES["tiny"].vocab, 0), 128)
    assert floor < held, (floor, held)
    assert floor > held / 3  # a floor, but not one so low that it refuses nothing


def test_the_free_memory_counts_a_containers_limit(tmp_path: Path) -> None:
    """MemAvailable is the host's: in a 3 GB container a run it allowed was killed on start
    and on every resume. The cgroup's limit less its usage is read, v2 and v1 alike."""
    from studio.training.loop import _cgroup_room

    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    (v2 / "slice").mkdir(parents=True)
    (v2 / "slice" / "memory.max").write_text("3000000000\n")
    (v2 / "slice" / "memory.current").write_text("1000000000\n")
    (tmp_path / "cgroup2").write_text("0::/slice\n")
    assert _cgroup_room(str(tmp_path / "cgroup2"), str(v2)) == 2_000_000_000
    (v2 / "slice" / "memory.max").write_text("max\n")  # no limit
    assert _cgroup_room(str(tmp_path / "cgroup2"), str(v2)) is None

    (v1 / "memory" / "box").mkdir(parents=True)
    (v1 / "memory" / "box" / "memory.limit_in_bytes").write_text("3000000000\n")
    (v1 / "memory" / "box" / "memory.usage_in_bytes").write_text("500000000\n")
    (tmp_path / "cgroup1").write_text("9:name=systemd:/\n4:cpu,cpuacct:/box\n7:memory:/box\n")
    assert _cgroup_room(str(tmp_path / "cgroup1"), str(v1)) == 2_500_000_000
    (v1 / "memory" / "box" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert _cgroup_room(str(tmp_path / "cgroup1"), str(v1)) is None  # v1's "no limit"
    assert _cgroup_room(str(tmp_path / "missing"), str(v1)) is None
