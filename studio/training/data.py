"""A resolved mix as token streams on disk: ``data/train.bin`` holds exactly the tokens a run
reads, in order, and ``data/eval-NAME.bin`` each evaluation set's held-out tokens.

The training stream is laid out once, when the run starts: each source contributes its share of
the run's tokens (its documents in a seeded order, repeated when the source is smaller than its
share), then the documents are shuffled together, or sorted easier-first for a curriculum.
Micro-batch ``i`` reads the ``rows x context`` tokens at ``i * rows * context``: where a run is
in its data is a function of its step alone, so a resumed run reads exactly what the
uninterrupted one would have.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.progress import Task
from studio.store import Store
from studio.training.mix import Mix, Selection

TRAIN_FILE = "train.bin"
ENCODE_CHUNK = 256
WRITE_CHUNK = 65_536  # pieces copied into the training stream between checks for a cancel
TOKENIZER_CHARS = 20_000_000  # the tokenizer learns from at most this much of the mix's text

WORD = re.compile(r"[A-Za-z]+")
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
VOWEL_GROUPS = re.compile(r"[aeiouy]+")


def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


# -- difficulty, for a curriculum ------------------------------------------------------------------


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade level: longer sentences and longer words read as harder."""
    words = WORD.findall(text)
    if not words:
        return 0.0
    sentences = max(len(SENTENCE_END.findall(text)), 1)
    syllables = sum(max(1, len(VOWEL_GROUPS.findall(w.lower()))) for w in words)
    return 0.39 * len(words) / sentences + 11.8 * syllables / len(words) - 15.59


def difficulty(text: str, signal: str | None) -> float:
    if signal == "grade":
        return reading_grade(text)
    if signal == "words":
        return float(len(text.split()))
    return 0.0


# -- the tokenizer's training text -----------------------------------------------------------------


def tokenizer_texts(store: Store, mix: Mix, shares: list[float], seed: int) -> Iterator[str]:
    """The mix's training text in proportion to its shares, at most ``TOKENIZER_CHARS``."""
    for i, (sel, share) in enumerate(zip(mix.sources, shares, strict=True)):
        budget = share * TOKENIZER_CHARS
        order = np.random.default_rng([seed, i]).permutation(len(sel.train))
        for start in range(0, len(order), ENCODE_CHUNK):
            if budget <= 0:
                break
            ids = [sel.train[j] for j in order[start : start + ENCODE_CHUNK]]
            texts = store.texts(ids)
            for doc_id in ids:
                text = texts.get(doc_id, ("", 0.0))[0]
                budget -= len(text)
                yield text


# -- streams ---------------------------------------------------------------------------------------


@dataclass
class Encoder:
    """Texts to token arrays, each document ending with the end-of-text token."""

    tokenizer: Any
    eos: int
    dtype: np.dtype

    def encode(self, store: Store, doc_ids: list[int]) -> list[tuple[np.ndarray, str]]:
        texts = store.texts(doc_ids)
        batch = [texts.get(i, ("", 0.0))[0] for i in doc_ids]
        encoded = self.tokenizer.encode_batch(batch, add_special_tokens=False)
        return [
            (np.array([*e.ids, self.eos], dtype=self.dtype), text)
            for e, text in zip(encoded, batch, strict=True)
        ]


def build_data(
    store: Store,
    mix: Mix,
    encoder: Encoder,
    run_tokens: int,
    *,
    seed: int,
    eval_tokens: int,
    eval_doc_tokens: int,
    folder: Path,
    task: Task,
) -> dict[str, Any]:
    """Write the training stream (at least ``run_tokens + 1`` tokens) and the evaluation
    streams into ``folder``; returns the plan (what each source gave), also saved as
    ``plan.json``.

    Memory does not grow with the run: each source's documents are tokenized once into a
    temporary file of its own, the stream is planned as pieces of those files (a repeated
    document is the same piece again), and the pieces are copied into the stream in order."""
    folder.mkdir(parents=True, exist_ok=True)
    need = run_tokens + 1
    shares = mix.shares(run_tokens)
    plan_sources = []
    parts: list[np.ndarray] = []
    rng = np.random.default_rng([seed, 7])
    sources = [folder / f"source-{i}.tmp" for i in range(len(mix.sources))]
    try:
        for i, (sel, share) in enumerate(zip(mix.sources, shares, strict=True)):
            task.check()
            task.progress(i, len(mix.sources), f"tokenizing {sel.source.name}")
            target = int(np.ceil(share * need))
            pieces, info = _take(
                store, sel, encoder, target, seed, i, mix.recipe.curriculum, sources[i]
            )
            pieces["source"] = i
            pieces["tie"] = rng.random(len(pieces))
            parts.append(pieces)
            plan_sources.append({"name": sel.source.name, "share": round(share, 6), **info})
        pieces = np.concatenate(parts) if parts else np.zeros(0, PIECE)
        del parts
        if mix.recipe.curriculum:  # easier first; ties in a seeded order
            order = np.lexsort((pieces["tie"], pieces["difficulty"]))
        else:
            order = rng.permutation(len(pieces))
        written = _write_pieces(folder / TRAIN_FILE, pieces, order, sources, encoder, task)
    finally:
        for path in sources:
            path.unlink(missing_ok=True)
    if written < need:
        raise ValueError(f"the mix gave {written:,} tokens where the run needs {need:,}")
    evals = {}
    for sel in mix.evals:
        task.check()
        if sel.heldout:
            evals[sel.source.name] = _write_eval(
                store, sel, encoder, eval_tokens, eval_doc_tokens, folder, mix
            )
    plan = {
        "train_tokens": written,
        "run_tokens": run_tokens,
        "dtype": encoder.dtype.name,
        "curriculum": mix.recipe.curriculum,
        "sources": plan_sources,
        "evals": evals,
    }
    (folder / "plan.json").write_text(json.dumps(plan, indent=1), "utf-8")
    return plan


# one document's place in the training stream: ``length`` tokens at ``offset`` of its source's
# temporary file; a cut piece (the last of a source, cut to fit) ends in end-of-text instead
PIECE = np.dtype(
    [
        ("source", np.int32),
        ("offset", np.int64),
        ("length", np.int64),
        ("cut", np.bool_),
        ("difficulty", np.float64),
        ("tie", np.float64),
    ]
)


def _take(
    store: Store,
    sel: Selection,
    encoder: Encoder,
    target: int,
    seed: int,
    index: int,
    curriculum: str | None,
    path: Path,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Documents of one source in a seeded order until ``target`` tokens, repeating the source
    (a new order each pass) when it is smaller; the last document is cut to fit. Each document
    is tokenized once, into ``path``; the pieces say where in it each one is."""
    rng = np.random.default_rng([seed, index])
    offsets, lengths, difficulties = array("q"), array("q"), array("d")  # 8 bytes a piece
    cut = False
    cache: dict[int, tuple[int, int, float]] = {}  # document: (offset, length, difficulty)
    taken, docs_seen, stored = 0, 0, 0
    with path.open("wb") as out:
        while taken < target and sel.train:
            order = [sel.train[j] for j in rng.permutation(len(sel.train))]
            for start in range(0, len(order), ENCODE_CHUNK):
                ids = order[start : start + ENCODE_CHUNK]
                fresh = [i for i in ids if i not in cache]
                if fresh:
                    for doc_id, (arr, text) in zip(
                        fresh, encoder.encode(store, fresh), strict=True
                    ):
                        arr.tofile(out)
                        cache[doc_id] = (stored, len(arr), difficulty(text, curriculum))
                        stored += len(arr)
                for doc_id in ids:
                    offset, length, d = cache[doc_id]
                    if length > target - taken:
                        # cut to fit, still ending in end-of-text; in a curriculum it comes last
                        length, d, cut = target - taken, float("inf"), True
                    offsets.append(offset)
                    lengths.append(length)
                    difficulties.append(d)
                    taken += length
                    docs_seen += 1
                    if taken >= target:
                        break
                if taken >= target:
                    break
    pieces = np.zeros(len(offsets), PIECE)
    pieces["offset"] = np.frombuffer(offsets, np.int64)
    pieces["length"] = np.frombuffer(lengths, np.int64)
    pieces["difficulty"] = np.frombuffer(difficulties, np.float64)
    if cut:
        pieces["cut"][-1] = True
    full_pass = len(cache) == len(sel.train)
    total = stored if full_pass else None
    return pieces, {
        "documents": len(sel.train),
        "documents_read": docs_seen,
        "tokens_taken": taken,
        "source_tokens": total,  # known when every document was tokenized
        "repeats": round(taken / total, 3) if total else None,
    }


def _write_pieces(
    path: Path,
    pieces: np.ndarray,
    order: np.ndarray,
    sources: list[Path],
    encoder: Encoder,
    task: Task,
) -> int:
    """Copy the pieces, in ``order``, from the sources' files into the stream at ``path``."""
    maps = [
        np.memmap(p, dtype=encoder.dtype, mode="r")
        if p.stat().st_size
        else np.zeros(0, encoder.dtype)
        for p in sources
    ]
    eos = np.array([encoder.eos], dtype=encoder.dtype)
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with tmp.open("wb") as out:
        for start in range(0, len(order), WRITE_CHUNK):
            task.check()
            chunk = pieces[order[start : start + WRITE_CHUNK]]
            for source, offset, length, cut in zip(
                chunk["source"], chunk["offset"], chunk["length"], chunk["cut"], strict=True
            ):
                if cut:
                    maps[source][offset : offset + length - 1].tofile(out)
                    eos.tofile(out)
                else:
                    maps[source][offset : offset + length].tofile(out)
            written += int(chunk["length"].sum())
    del maps
    tmp.replace(path)
    return written


def _write(path: Path, arrays: list[np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for arr in arrays:
            arr.tofile(out)
    tmp.replace(path)


def _write_eval(
    store: Store,
    sel: Selection,
    encoder: Encoder,
    eval_tokens: int,
    per_doc: int,
    folder: Path,
    mix: Mix,
) -> dict[str, Any]:
    """The held-out documents in an order fixed by the split seed (the same in every recipe
    that shares the split), each cut to ``per_doc`` tokens so that a few long pages do not make
    the whole set, up to ``eval_tokens``; with the bytes they cover, for bits per byte."""
    order = np.random.default_rng(mix.recipe.split_seed).permutation(len(sel.heldout))
    ids = [sel.heldout[j] for j in order]
    arrays, n_tokens, n_bytes, docs = [], 0, 0, 0
    for start in range(0, len(ids), ENCODE_CHUNK):
        for arr, text in encoder.encode(store, ids[start : start + ENCODE_CHUNK]):
            if len(arr) > per_doc:
                kept = encoder.tokenizer.decode([int(t) for t in arr[:per_doc]])
                arr, text = arr[:per_doc], kept
            arrays.append(arr)
            n_tokens += len(arr)
            n_bytes += len(text.encode("utf-8", "surrogatepass")) + 1
            docs += 1
            if n_tokens >= eval_tokens:
                break
        if n_tokens >= eval_tokens:
            break
    path = folder / eval_file(sel.source.name)
    _write(path, arrays)
    return {
        "file": path.name,
        "documents": docs,
        "tokens": n_tokens,
        "bytes_per_token": n_bytes / n_tokens if n_tokens else 0.0,
    }


def eval_file(name: str) -> str:
    return "eval-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".bin"


class TokenStream:
    """A token file read through a memory map: micro-batch ``i`` is ``rows`` consecutive
    windows of ``context`` tokens starting at ``i * rows * context``."""

    def __init__(self, path: Path, dtype: str) -> None:
        self.data = np.memmap(path, dtype=np.dtype(dtype), mode="r")

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, index: int, rows: int, context: int) -> tuple[np.ndarray, np.ndarray]:
        start = index * rows * context
        chunk = np.asarray(self.data[start : start + rows * context + 1], dtype=np.int64)
        if len(chunk) < rows * context + 1:
            raise IndexError(f"micro-batch {index} runs past the end of the stream")
        return chunk[:-1].reshape(rows, context), chunk[1:].reshape(rows, context)

    def rows(self, first: int, count: int, context: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``first`` to ``first + count`` of ``context`` tokens (the last may overlap
        the next by its target token)."""
        start = first * context
        chunk = np.asarray(self.data[start : start + count * context + 1], dtype=np.int64)
        if len(chunk) < count * context + 1:
            raise IndexError(f"window {first + count} runs past the end of the stream")
        return chunk[:-1].reshape(count, context), chunk[1:].reshape(count, context)

    def windows(self, rows: int, context: int) -> int:
        """How many whole micro-batches the stream holds."""
        return max(0, (len(self.data) - 1) // (rows * context))
