"""What the student writes: text sampled from any checkpoint of a run.

Temperature and top-k sampling, one token at a time over the last ``context`` tokens (nanoGPT's
``generate``): small models, short samples, no cache needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.training import checkpoint as ckpt
from studio.training.run import Run, RunError
from studio.training.tokenizer import load_tokenizer


@dataclass
class Student:
    """A checkpoint loaded for sampling."""

    model: Any
    tokenizer: Any
    eos: int | None
    context: int
    step: int
    checkpoint: Path


def checkpoint_path(run: Run, step: int | None = None) -> Path:
    """The checkpoint at ``step`` (None: the latest)."""
    if step is None:
        latest = ckpt.latest_checkpoint(run.root)
        if latest is None:
            raise RunError(f"run {run.name} has no checkpoint yet")
        return latest
    path = run.path(ckpt.DIR, ckpt.checkpoint_name(step))
    if not (path / "meta.json").is_file():
        have = ", ".join(str(int(p.name[5:])) for p in ckpt.list_checkpoints(run.root)) or "none"
        raise RunError(f"run {run.name} has no checkpoint at step {step} (steps: {have})")
    return path


def load_student(run: Run, step: int | None = None) -> Student:
    from studio.training.model import build_model
    from studio.training.tokenizer import eos_id

    path = checkpoint_path(run, step)
    meta = ckpt.read_meta(path)
    try:
        model = build_model(meta["config"])
    except (TypeError, KeyError, ValueError) as exc:  # a config no model can be built from
        raise ckpt.CheckpointError(
            f"checkpoint {path} is damaged: its meta.json holds no usable model config ({exc})"
        ) from exc
    ckpt.load_weights(path, model)
    model.eval()
    tokenizer = load_tokenizer(run.path("tokenizer.json"))
    return Student(
        model, tokenizer, eos_id(tokenizer), model.config.n_positions, meta["step"], path
    )


def unread_prompt_tokens(student: Student, prompt: str) -> int:
    """How many of the prompt's first tokens the student cannot see: it reads the last
    ``context`` tokens, so a prompt longer than that loses its start."""
    n = len(student.tokenizer.encode(prompt, add_special_tokens=False).ids)
    return max(0, n - student.context)


def generate(
    student: Student,
    prompt: str,
    *,
    max_tokens: int = 120,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int = 0,
) -> str:
    """The continuation of ``prompt`` (not including it); stops at the end-of-text token."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = student.tokenizer.encode(prompt, add_special_tokens=False).ids
    if not ids:
        ids = [student.eos] if student.eos is not None else [0]
    tokens = torch.tensor([ids], dtype=torch.long)
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_tokens):
            logits = student.model(input_ids=tokens[:, -student.context :]).logits[0, -1]
            logits = logits[: student.tokenizer.get_vocab_size()]  # never a padding row
            if temperature <= 0:
                token = int(torch.argmax(logits))
            else:
                logits = logits / temperature
                if top_k:
                    cut = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                    logits = torch.where(logits < cut, torch.full_like(logits, -1e9), logits)
                probs = torch.softmax(logits, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            if token == student.eos:
                break
            out.append(token)
            tokens = torch.cat([tokens, torch.tensor([[token]])], dim=1)
    return student.tokenizer.decode(out)
