"""The student: a GPT-2-style decoder from a transformers config, trained from scratch.

Sizes are named by their rough parameter count with an 8k vocabulary (``tiny`` is for tests).
The model's vocabulary is the tokenizer's, padded to a multiple of 64 (faster matrix products
on a GPU; the padding rows are never a target).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Size:
    n_layer: int
    n_embd: int
    n_head: int
    context: int
    vocab: int  # of the tokenizer the studio trains for this size
    batch: int  # sequences per micro-batch
    lr: float


SIZES: dict[str, Size] = {
    "tiny": Size(n_layer=2, n_embd=64, n_head=2, context=128, vocab=2048, batch=8, lr=3e-3),
    "10m": Size(n_layer=6, n_embd=320, n_head=5, context=256, vocab=8192, batch=16, lr=1e-3),
    "30m": Size(n_layer=8, n_embd=512, n_head=8, context=512, vocab=8192, batch=16, lr=6e-4),
    "124m": Size(n_layer=12, n_embd=768, n_head=12, context=1024, vocab=50257, batch=16, lr=6e-4),
}

# dense bf16 peak of the GPUs a curator is likely to have, in FLOP/s (vendors' data sheets);
# STUDIO_PEAK_FLOPS overrides it for any other
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
)


def padded_vocab(vocab_size: int) -> int:
    return (vocab_size + 63) // 64 * 64


def model_config(size: Size, vocab_size: int, eos: int) -> dict[str, Any]:
    """The transformers GPT-2 config (as a dict, stored in the run folder)."""
    return {
        "model_type": "gpt2",
        "vocab_size": padded_vocab(vocab_size),
        "n_positions": size.context,
        "n_embd": size.n_embd,
        "n_layer": size.n_layer,
        "n_head": size.n_head,
        # no dropout: small students on little data do not need it, and steps stay replayable
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "tie_word_embeddings": True,
    }


def build_model(config: dict[str, Any]) -> Any:  # -> transformers.GPT2LMHeadModel
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(**{k: v for k, v in config.items() if k != "model_type"})
    return GPT2LMHeadModel(cfg)


def count_parameters(model: Any) -> int:
    """Parameters, without the position embeddings (as nanoGPT counts them for FLOPs)."""
    total = sum(p.numel() for p in model.parameters())
    return total - model.transformer.wpe.weight.numel()


def flops_per_token(config: dict[str, Any], n_params: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward and backward) plus attention
    (the PaLM paper's appendix B estimate)."""
    return 6 * n_params + 12 * config["n_layer"] * config["n_embd"] * config["n_positions"]


def peak_flops(device_name: str | None) -> float | None:
    override = os.environ.get("STUDIO_PEAK_FLOPS")
    if override:
        return float(override)
    if not device_name:
        return None
    for name, flops in PEAK_BF16:
        if name in device_name:
            return flops
    return None


def describe(size: str) -> dict[str, Any]:
    return {"size": size, **asdict(SIZES[size])}
