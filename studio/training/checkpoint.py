"""Checkpoints without pickles: weights and optimizer state as safetensors, the rest as JSON.

``checkpoints/step-0000200/`` holds ``model.safetensors``, ``optimizer.safetensors`` (AdamW's
moments flattened to ``state.<param>.<name>`` tensors, its random-number states as tensors) and
``meta.json`` (step, tokens seen, data position, seed, the optimizer's parameter groups, the
Python and numpy random states, the model config). A checkpoint is written into a ``.tmp``
folder and renamed, so a crash never leaves half of one; ``checkpoints/latest`` names the
newest complete one.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

DIR = "checkpoints"
LATEST = "latest"
STEP_FOLDER = re.compile(r"step-\d{1,12}")  # what checkpoint_name makes; nothing else is one


class CheckpointError(Exception):
    """No usable checkpoint where one was expected."""


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def save_checkpoint(
    run_dir: Path, model: Any, optimizer: Any, meta: dict[str, Any], *, keep: int = 2
) -> Path:
    """Write a checkpoint of ``model`` and ``optimizer`` at ``meta['step']``; keep the newest
    ``keep`` (0: all)."""
    import torch
    from safetensors.torch import save_file, save_model

    folder = run_dir / DIR
    final = folder / checkpoint_name(int(meta["step"]))
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding
    tensors, groups = _flatten_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    save_file(
        {k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp / "optimizer.safetensors")
    )
    py_version, py_state, py_gauss = random.getstate()
    meta = {
        **meta,
        "optimizer": {"type": type(optimizer).__name__, "param_groups": groups},
        "rng": {
            "python": [py_version, list(py_state), py_gauss],
            "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        },
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    pointer = folder / (LATEST + ".tmp")
    pointer.write_text(final.name, "utf-8")
    pointer.replace(folder / LATEST)
    if keep:
        _prune(folder, keep, final.name)
    return final


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import torch

    tensors: dict[str, Any] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{key}"] = t
    groups = [
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
        for g in state["param_groups"]
    ]
    return tensors, groups


def _prune(folder: Path, keep: int, newest: str) -> None:
    done = sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in done[:-keep]:
        if old.name != newest:
            shutil.rmtree(old, ignore_errors=True)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    folder = run_dir / DIR
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.glob("step-*")
        if STEP_FOLDER.fullmatch(p.name) and p.is_dir() and (p / "meta.json").is_file()
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names; the newest complete one when it names none (a damaged
    pointer is no reason to lose the run)."""
    try:
        named = (run_dir / DIR / LATEST).read_text("utf-8").strip()
    except (OSError, ValueError):
        named = ""
    if STEP_FOLDER.fullmatch(named) and (run_dir / DIR / named / "meta.json").is_file():
        return run_dir / DIR / named
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def read_meta(checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's ``meta.json``: a step and the model config at least."""
    try:
        meta = json.loads((checkpoint / "meta.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {checkpoint}: {exc}") from exc
    step = meta.get("step") if isinstance(meta, dict) else None
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or not isinstance(config, dict):
        raise CheckpointError(
            f"checkpoint {checkpoint} is damaged: its meta.json has no step or model config "
            "(an earlier checkpoint of the run may still load: --step)"
        )
    return meta


def load_weights(checkpoint: Path, model: Any, device: str = "cpu") -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(model, str(checkpoint / "model.safetensors"), device=device)
    except (SafetensorError, OSError, RuntimeError) as exc:  # cut short, garbled, wrong shapes
        raise CheckpointError(
            f"cannot read the weights of checkpoint {checkpoint}: {exc}; the file is damaged "
            "(an earlier checkpoint of the run may still load: --step)"
        ) from exc


def load_checkpoint(checkpoint: Path, model: Any, optimizer: Any, device: str) -> dict[str, Any]:
    """Restore weights, optimizer state and every random state; returns the meta."""
    import torch
    from safetensors.torch import load_file

    meta = read_meta(checkpoint)
    load_weights(checkpoint, model, device)
    tensors = load_file(str(checkpoint / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value.to(device) if name != "step" else value
    groups = meta["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    version, py_state, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, pos, has_gauss, cached = meta["rng"]["numpy"]
    np.random.set_state(
        (name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached)
    )
    return meta
