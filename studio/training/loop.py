"""The training loop: plain torch, read in one sitting.

AdamW (no weight decay on biases and norms), linear warmup then cosine decay to a floor,
gradient accumulation, gradient clipping; on CUDA bf16 autocast, a fused AdamW and
``torch.compile`` when it compiles (the loop falls back to eager when it does not); on a CPU,
float32 and eager unless asked (``precision="bf16"``, ``compile="on"``: the same code paths a
GPU run takes, which is how the tests exercise them without one). The loss is the mean
cross-entropy of each window's next tokens.

:func:`run_steps` is the whole inner loop, the same one ``studio bench train`` measures against
a bare nanoGPT-style loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.progress import Task
from studio.training.data import TokenStream
from studio.training.model import SIZES, build_model, count_parameters, flops_per_token, peak_flops

Emit = Callable[[dict[str, Any]], None]
PRECISIONS = ("auto", "bf16", "fp32")
COMPILE = ("auto", "on", "off")


@dataclass
class TrainConfig:
    size: str = "tiny"
    steps: int = 200
    batch: int = 8  # sequences per micro-batch
    accum: int = 1  # micro-batches per optimizer step
    context: int = 128
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    warmup: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    compile: str = "auto"  # auto: on CUDA only (it gives little on a CPU); on; off
    precision: str = "auto"  # auto: bf16 autocast on a CUDA device that has it, else fp32
    eval_every: int = 50
    eval_windows: int = 128  # context-long windows of each evaluation set
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 1
    threads: int = 0  # CPU threads for torch; 0: its default (OMP_NUM_THREADS, else all cores)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: one of {', '.join(PRECISIONS)}")
        if self.compile not in COMPILE:
            raise ValueError(f"compile {self.compile!r}: one of {', '.join(COMPILE)}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.accum * self.context

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_size(cls, size: str, **overrides: Any) -> TrainConfig:
        s = SIZES[size]
        values = {"size": size, "batch": s.batch, "context": s.context, "lr": s.lr}
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(**values)
        if "warmup" not in overrides or overrides["warmup"] is None:
            cfg.warmup = max(1, min(200, cfg.steps // 10))
        return cfg


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` CPU threads (0: as they are), then put the count back. On a busy
    machine one thread can be several times faster than two that spin waiting for each other."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible to torch")
    return name


def memory_floor(config: dict[str, Any], batch: int, half: bool = False) -> int:
    """Bytes one training step holds at the least: the weights, their gradients and AdamW's two
    moments (16 bytes a parameter), the micro-batch's logits three times over (the logits,
    their log-softmax and its gradient, in float32), and 16 float32 values a token and
    embedding dimension in each layer for the backward pass. Measured on a CPU (tiny, 10m and
    30m at several batch sizes) a step held 1.25-1.7 times this floor, so a step that does
    not fit it never fits. ``half``: under bf16 autocast, where the logits and activations
    take two bytes a value, the per-token part is counted at half."""
    d, layers, vocab, context = (
        config["n_embd"],
        config["n_layer"],
        config["vocab_size"],
        config["n_positions"],
    )
    params = 12 * layers * d * d + (vocab + context) * d
    per_value = 2 if half else 4
    return 16 * params + per_value * batch * context * (3 * vocab + 16 * layers * d)


def available_memory(device: str) -> int | None:
    """Free bytes on ``device``: a CUDA device's, or the machine's available memory, less where
    the process's cgroup (a container, a systemd slice) allows less. None when it cannot be
    told."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    found = [n for n in (_meminfo_available(), _cgroup_room()) if n is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room(listing: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> int | None:
    """Bytes the process's memory cgroup still allows (limit less usage), v2 or v1; None
    without a limit."""
    try:
        with open(listing, encoding="utf-8") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    for _id, controllers, path in (e for e in entries if len(e) == 3):
        if controllers == "":  # v2
            folder, limit_name, usage_name = root + path, "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # v1
            folder = root + "/memory" + path
            limit_name, usage_name = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        try:
            limit = Path(folder, limit_name).read_text().strip()
            used = int(Path(folder, usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:  # "max", or v1's "no limit" of ~2^63
            return max(0, int(limit) - used)
    return None


def uses_bf16(precision: str, device: str) -> bool:
    """Whether a step runs under bf16 autocast: asked for, or ``auto`` on a CUDA device that
    has it."""
    if precision != "auto":
        return precision == "bf16"
    if not device.startswith("cuda"):
        return False
    import torch

    return bool(torch.cuda.is_bf16_supported())


def check_memory(config: dict[str, Any], cfg: TrainConfig, device: str) -> None:
    """Refuse, before anything is prepared or loaded, a micro-batch that cannot fit: ``--batch-size
    20000`` grew until the system killed the run, and killed it again on every resume."""
    half = uses_bf16(cfg.precision, device)
    need, free = memory_floor(config, cfg.batch, half), available_memory(device)
    if free is not None and need > free:
        where = "the GPU" if device.startswith("cuda") else "this machine"
        raise ValueError(
            f"a micro-batch of {cfg.batch:,} sequences of {config['n_positions']:,} tokens "
            f"needs more than {need / 1e9:,.1f} GB on {where}, which has {free / 1e9:,.1f} GB "
            "free: ask for a smaller --batch-size (a larger --accum keeps the tokens a step "
            "reads)"
        )


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warmup to ``lr``, then cosine down to ``lr * min_lr_ratio`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


class Trainer:
    """A model, its optimizer and its data: one :meth:`train_step` per optimizer step."""

    def __init__(
        self,
        model_config: dict[str, Any],
        cfg: TrainConfig,
        stream: TokenStream,
        evals: dict[str, tuple[TokenStream, float]] | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.cfg = cfg
        self.model_config = model_config
        self.device = resolve_device(cfg.device)
        self.cuda = self.device.startswith("cuda")
        torch.manual_seed(cfg.seed)
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.raw_model = build_model(model_config).to(self.device)
        self.model = self.raw_model
        self.n_params = count_parameters(self.raw_model)
        self.flops_per_token = flops_per_token(model_config, self.n_params)
        self.device_name = torch.cuda.get_device_name(self.device) if self.cuda else "cpu"
        self.peak = peak_flops(self.device_name) if self.cuda else None
        self.bf16 = uses_bf16(cfg.precision, self.device)
        self.optimizer = self._optimizer()
        self.stream, self.evals = stream, evals or {}
        self.compiled = False
        if cfg.compile == "on" or (cfg.compile == "auto" and self.cuda):
            self.model = torch.compile(self.raw_model)
            self.compiled = True
        self.notes: list[str] = []

    def _optimizer(self) -> Any:
        decay = [p for p in self.raw_model.parameters() if p.requires_grad and p.dim() >= 2]
        other = [p for p in self.raw_model.parameters() if p.requires_grad and p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": self.cfg.weight_decay},
            {"params": other, "weight_decay": 0.0},
        ]
        extra = {"fused": True} if self.cuda else {}
        return self.torch.optim.AdamW(
            groups, lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2), **extra
        )

    def autocast(self) -> Any:
        if self.bf16:
            kind = "cuda" if self.cuda else "cpu"
            return self.torch.autocast(device_type=kind, dtype=self.torch.bfloat16)
        return nullcontext()

    def batch(self, stream: TokenStream, index: int, rows: int) -> tuple[Any, Any]:
        return self._to_device(*stream.batch(index, rows, self.cfg.context))

    def _to_device(self, x: Any, y: Any) -> tuple[Any, Any]:
        tx, ty = self.torch.from_numpy(x), self.torch.from_numpy(y)
        if self.cuda:
            return (
                tx.pin_memory().to(self.device, non_blocking=True),
                ty.pin_memory().to(self.device, non_blocking=True),
            )
        return tx, ty

    def loss(self, x: Any, y: Any) -> Any:
        with self.autocast():
            logits = self.model(input_ids=x).logits
            return self.torch.nn.functional.cross_entropy(
                logits.view(-1, logits.size(-1)), y.view(-1)
            )

    def train_step(self, step: int) -> Any:
        """One optimizer step over ``accum`` micro-batches; returns the mean loss (a tensor,
        so the caller decides when to wait for the device)."""
        try:
            return self._step(step)
        except Exception as exc:
            if not self.compiled or isinstance(exc, self.torch.cuda.OutOfMemoryError):
                raise
            # torch.compile could not handle this model or device: carry on without it
            self.notes.append(f"torch.compile failed ({type(exc).__name__}); running eagerly")
            self.model, self.compiled = self.raw_model, False
            self.optimizer.zero_grad(set_to_none=True)
            return self._step(step)

    def _step(self, step: int) -> Any:
        cfg = self.cfg
        lr = lr_at(cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = self.torch.zeros((), device=self.device)
        x, y = self.batch(self.stream, step * cfg.accum, cfg.batch)
        for micro in range(1, cfg.accum + 1):
            loss = self.loss(x, y)
            if micro < cfg.accum:  # the next micro-batch is read while the device works
                x, y = self.batch(self.stream, step * cfg.accum + micro, cfg.batch)
            (loss / cfg.accum).backward()
            total += loss.detach()
        if cfg.grad_clip > 0:
            self.torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / cfg.accum

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Mean loss (nats per token) and bits per byte on each evaluation set's windows."""
        out = {}
        self.model.eval()
        with self.torch.no_grad():
            for name, (stream, bytes_per_token) in self.evals.items():
                n = min(self.cfg.eval_windows, stream.windows(1, self.cfg.context))
                if not n:
                    continue
                total = self.torch.zeros((), device=self.device)
                for first in range(0, n, self.cfg.batch):
                    rows = min(self.cfg.batch, n - first)
                    x, y = stream.rows(first, rows, self.cfg.context)
                    total += self.loss(*self._to_device(x, y)) * rows
                loss = float(total.item()) / n
                bpb = loss / math.log(2) / bytes_per_token if bytes_per_token else None
                out[name] = {"loss": round(loss, 5), "bpb": round(bpb, 5) if bpb else None}
        self.model.train()
        return out

    def device_stats(self, tokens_per_s: float) -> dict[str, Any]:
        if not self.cuda:
            return {"gpu_mem_mb": None, "mfu": None}
        mem = self.torch.cuda.max_memory_allocated(self.device) / 2**20
        mfu = self.flops_per_token * tokens_per_s / self.peak if self.peak else None
        return {"gpu_mem_mb": round(mem, 1), "mfu": round(mfu, 4) if mfu is not None else None}


def run_steps(
    trainer: Trainer,
    start: int,
    stop: int,
    *,
    emit: Emit,
    task: Task,
    every: Callable[[int], None] | None = None,
) -> int:
    """Train steps ``start`` to ``stop``; returns the number of steps done when it stopped
    (``stop``, or earlier when the task was cancelled). Tokens per second count training time
    only: ``every(step)`` (evaluation, checkpoints) runs off the clock."""
    cfg = trainer.cfg
    clock, tokens = time.perf_counter(), 0
    trained_s, trained_tokens = 0.0, 0  # since this call began, off-clock time left out
    for step in range(start, stop):
        loss = trainer.train_step(step)
        done = step + 1
        tokens += cfg.tokens_per_step
        if done % cfg.log_every == 0 or done == stop:
            value = float(loss.item())  # waits for the device
            now = time.perf_counter()
            rate = tokens / max(now - clock, 1e-9)
            trained_s += now - clock
            trained_tokens += tokens
            mean_rate = trained_tokens / max(trained_s, 1e-9)
            emit(
                {
                    "event": "step",
                    "step": done,
                    "steps": cfg.steps,
                    "loss": round(value, 5),
                    "lr": lr_at(cfg, step),
                    "tokens": done * cfg.tokens_per_step,
                    "tokens_per_s": round(rate, 1),
                    "elapsed_s": round(trained_s, 2),
                    "eta_s": round((cfg.steps - done) * cfg.tokens_per_step / mean_rate, 1),
                    **trainer.device_stats(rate),
                }
            )
            clock, tokens = now, 0
        if every is not None:
            paused = time.perf_counter()
            every(done)
            clock += time.perf_counter() - paused
        if task.cancelled():
            return done
    return stop
