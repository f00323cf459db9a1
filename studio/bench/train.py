"""``studio bench train``: tokens per second of the studio's training loop beside a bare
reference loop written the nanoGPT way, on the same model, data and device in the same process.

The reference below is nanoGPT's ``train.py`` inner loop, written out: random windows from a
memory-mapped token file, forward, cross-entropy, backward, clip, AdamW step, a loss ``item()``
every step. The studio's side is :func:`studio.training.loop.run_steps` with evaluation and
checkpoints off, so what is measured is the loop's own overhead (schedule, accumulation,
logging, cancel checks).

On a shared machine the speed of either loop drifts by a factor of two from one second to the
next, so the two run in alternating blocks of ``steps`` steps (the order flips every block) and
each side's tokens per second is its tokens over its summed time: drift hits both alike.
The target is at least 0.95 of the reference.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.progress import Task

TARGET = 0.95


def run(
    *,
    size: str = "tiny",
    steps: int = 10,
    blocks: int = 10,
    device: str = "auto",
    threads: int | None = None,
    task: Task,
) -> dict[str, Any]:
    import torch

    from studio.training.data import TokenStream
    from studio.training.loop import TrainConfig, resolve_device, torch_threads
    from studio.training.model import SIZES, model_config

    spec = SIZES[size]
    total = blocks * steps + 1  # and one warm-up step each
    cfg = TrainConfig.for_size(size, steps=total, device=device, eval_every=0, checkpoint_every=0)
    model_cfg = model_config(spec, spec.vocab, eos=0)
    device = resolve_device(device)
    # both loops: one process, the same threads
    with torch_threads(threads or 0), tempfile.TemporaryDirectory(prefix="studio-bt-") as tmp:
        path = Path(tmp) / "train.bin"
        n = (total + 1) * cfg.tokens_per_step + 1
        np.random.default_rng(0).integers(0, spec.vocab, n, dtype=np.uint16).tofile(path)
        used_threads = torch.get_num_threads()
        studio = StudioLoop(model_cfg, cfg, TokenStream(path, "uint16"))
        reference = ReferenceLoop(model_cfg, cfg, path, device)
        seconds: dict[str, list[float]] = {"studio": [], "reference": []}
        for b in range(blocks):
            task.check()
            task.progress(b, blocks, "alternating blocks")
            order = (studio, reference) if b % 2 == 0 else (reference, studio)
            for loop in order:
                seconds[loop.name].append(loop.block(steps))
        task.progress(blocks, blocks, "done")
    tokens = steps * cfg.tokens_per_step
    rate = {k: blocks * tokens / sum(v) for k, v in seconds.items()}
    return {
        "size": size,
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "threads": used_threads,
        "blocks": blocks,
        "steps_per_block": steps,
        "tokens_per_step": cfg.tokens_per_step,
        "studio_tokens_per_s": round(rate["studio"], 1),
        "reference_tokens_per_s": round(rate["reference"], 1),
        "studio_blocks_tokens_per_s": [round(tokens / t, 1) for t in seconds["studio"]],
        "reference_blocks_tokens_per_s": [round(tokens / t, 1) for t in seconds["reference"]],
        "ratio": round(rate["studio"] / rate["reference"], 3),
        "target": TARGET,
        "met": rate["studio"] / rate["reference"] >= TARGET,
    }


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


class StudioLoop:
    name = "studio"

    def __init__(self, model_cfg: dict[str, Any], cfg: Any, stream: Any) -> None:
        from studio.training.loop import Trainer, run_steps

        self.trainer, self.run_steps, self.done = Trainer(model_cfg, cfg, stream), run_steps, 0
        self.block(1)  # warm-up (and compile)

    def block(self, steps: int) -> float:
        _sync(self.trainer.device)
        start = time.perf_counter()
        self.run_steps(
            self.trainer, self.done, self.done + steps, emit=lambda _e: None, task=Task()
        )
        _sync(self.trainer.device)
        self.done += steps
        return time.perf_counter() - start


class ReferenceLoop:
    """nanoGPT's loop, as its train.py has it (minus DDP, eval and checkpointing)."""

    name = "reference"

    def __init__(self, model_cfg: dict[str, Any], cfg: Any, path: Path, device: str) -> None:
        from contextlib import nullcontext

        import torch

        from studio.training.model import build_model

        self.torch, self.cfg, self.device = torch, cfg, device
        torch.manual_seed(cfg.seed)
        model = build_model(model_cfg).to(device)
        self.cuda = device.startswith("cuda")
        self.ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else nullcontext()
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        extra = {"fused": True} if self.cuda else {}
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **extra)
        self.raw = model
        self.model = torch.compile(model) if self.cuda and cfg.compile != "off" else model
        self.data = np.memmap(path, dtype=np.uint16, mode="r")
        self.it = 0
        self.x, self.y = self.get_batch()
        self.block(1)  # warm-up (and compile)

    def get_batch(self) -> tuple[Any, Any]:
        torch, block = self.torch, self.cfg.context
        ix = torch.randint(len(self.data) - block, (self.cfg.batch,))
        x = torch.stack([torch.from_numpy(self.data[i : i + block].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(self.data[i + 1 : i + 1 + block].astype(np.int64)) for i in ix]
        )
        if self.cuda:
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        return x, y

    def get_lr(self, it: int) -> float:
        cfg = self.cfg
        if it < cfg.warmup:
            return cfg.lr * (it + 1) / (cfg.warmup + 1)
        ratio = (it - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        min_lr = cfg.lr * cfg.min_lr_ratio
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - min_lr)

    def block(self, steps: int) -> float:
        torch, cfg = self.torch, self.cfg
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            lr = self.get_lr(self.it)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            for _micro in range(cfg.accum):
                with self.ctx:
                    logits = self.model(input_ids=self.x).logits
                    loss = torch.nn.functional.cross_entropy(
                        logits.view(-1, logits.size(-1)), self.y.view(-1)
                    )
                    loss = loss / cfg.accum
                self.x, self.y = self.get_batch()  # fetched while the device works
                loss.backward()
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            loss.item()  # nanoGPT's log line, every step (log_interval = 1)
            self.it += 1
        _sync(self.device)
        return time.perf_counter() - start


def format_table(r: dict[str, Any]) -> str:
    def blocks(values: list[float]) -> str:
        return f"{min(values):,.0f} to {max(values):,.0f}"

    rows = [
        ("loop", "tokens/s", "per block"),
        (
            "studio (run_steps)",
            f"{r['studio_tokens_per_s']:,.0f}",
            blocks(r["studio_blocks_tokens_per_s"]),
        ),
        (
            "reference (nanoGPT pattern)",
            f"{r['reference_tokens_per_s']:,.0f}",
            blocks(r["reference_blocks_tokens_per_s"]),
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    table = "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )
    verdict = "met" if r["met"] else "NOT met"
    return (
        f"{r['size']} model on {r['device']} ({r['threads']} threads), {r['blocks']} alternating "
        f"blocks of {r['steps_per_block']} steps of {r['tokens_per_step']:,} tokens each\n"
        f"{table}\nstudio / reference: {r['ratio']:.3f} (target >= {r['target']}: {verdict})"
    )
