"""Text -> vectors (studio.embed): the shipped all-MiniLM-L6-v2 over whole pages, any model
folder by path, and the folders that must be refused (real torch, real transformers)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.embed import (
    MAX_CHUNKS,
    EmbeddingError,
    TextEmbedder,
    default_model_path,
    fingerprint,
    resolve_model,
)
from studio.progress import Cancelled, Task

LESSON = "A fraction names a part of a whole: one half is one of two equal parts of a thing."


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A random-weight two-layer BERT (32 dims) with the shipped model's tokenizer, saved as a
    Hugging Face folder with safetensors: ~4 MB, embeds in milliseconds."""
    import torch
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    shipped = default_model_path()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(shipped / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def minilm() -> TextEmbedder:
    return TextEmbedder(device="cpu")


@pytest.mark.slow
def test_shipped_model_matches_sentence_transformers_on_short_texts(minilm: TextEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = [LESSON, "Buy two, get one free! Subscribe to our newsletter.", ""]
    ours = minilm.embed(texts)
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert minilm.ref.shipped and minilm.ref.name == "all-MiniLM-L6-v2"
    reference = SentenceTransformer(str(minilm.ref.path), device="cpu", local_files_only=True)
    theirs = reference.encode(texts, normalize_embeddings=True)
    # one window each: the same computation as sentence-transformers, up to float rounding
    assert np.abs(ours - theirs).max() < 1e-5
    assert float(ours[0] @ ours[1]) < 0.5  # a lesson and an advert are far apart


@pytest.mark.slow
def test_whole_pages_are_covered_and_batches_do_not_matter(minilm: TextEmbedder) -> None:
    lesson = (LESSON + " ") * 60  # ~1,300 tokens: six windows
    tail = " Buy cheap shoes now, free shipping on every order today only!" * 80
    alone, with_tail = minilm.embed([lesson]), minilm.embed([lesson + tail])
    # the advert starts past the first 256 tokens: a first-window embedding would not move
    assert float(alone[0] @ with_tail[0]) < 0.95
    together = minilm.embed([lesson, LESSON, lesson + tail])
    assert np.allclose(together[0], alone[0], atol=1e-5)
    assert np.allclose(together[2], with_tail[0], atol=1e-5)


def test_windows_overlap_and_spread_over_long_pages(minilm: TextEmbedder) -> None:
    body = minilm.chunk_tokens - 2
    ids = list(range(1000))
    windows = minilm.windows(ids)
    assert all(len(w) <= body for w in windows) and windows[0] == ids[:body]
    step = body - minilm.overlap
    assert windows[1][: minilm.overlap] == ids[step : step + minilm.overlap]
    assert windows[-1][-1] == 999  # the end of the page is covered
    assert minilm.windows([]) == [[]]
    huge = minilm.windows(list(range(200_000)))
    assert len(huge) == MAX_CHUNKS and huge[0][0] == 0 and huge[-1][-1] == 199_999


def test_a_hostile_page_is_bounded(tiny_model: Path) -> None:
    page = "word " * 600_000 + "\x00\ud7ff<script>" * 1000  # 3 MB of text, odd characters
    [vector] = TextEmbedder(tiny_model).embed([page])
    assert np.isfinite(vector).all() and abs(float(np.linalg.norm(vector)) - 1) < 1e-4


def test_any_model_folder_by_path(tiny_model: Path, tmp_path: Path) -> None:
    embedder = TextEmbedder(tiny_model, device="auto")
    vectors = embedder.embed([LESSON, LESSON * 40, "x"])
    assert vectors.shape == (3, 32) and embedder.device == "cpu" and embedder.batch_size == 32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.ref.name == "tiny-bert" and not embedder.ref.shipped
    info = embedder.info()
    assert info["path"] == str(tiny_model.resolve()) and info["dims"] == 32
    # a sentence-transformers layout: the transformer in a subfolder, CLS pooling declared
    st = tmp_path / "st-model"
    shutil.copytree(tiny_model, st / "0_Transformer")
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    modules = [
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "models.Pooling"},
    ]
    (st / "modules.json").write_text(json.dumps(modules))
    ref = resolve_model(st)
    assert ref.pooling == "cls" and ref.path == (st / "0_Transformer").resolve()
    cls_vectors = TextEmbedder(ref).embed([LESSON])
    assert not np.allclose(cls_vectors[0], vectors[0], atol=1e-3)  # pooled differently


def test_fingerprint_follows_the_weights(tiny_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    assert fingerprint(copy) == fingerprint(tiny_model)
    make_tiny_model(copy, seed=1)  # other weights, same names and sizes
    assert fingerprint(copy) != fingerprint(tiny_model)


def test_unusable_folders_are_refused_with_a_reason(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="not a folder"):
        resolve_model(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmbeddingError, match="not a folder"):
        resolve_model(tmp_path / "file")
    with pytest.raises(EmbeddingError, match="File name too long"):  # was an OSError
        resolve_model(tmp_path / ("x" * 5000))
    with pytest.raises(EmbeddingError, match="not a folder"):  # was a RuntimeError
        resolve_model("~nosuchuser-of-the-studio/model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmbeddingError, match="no config.json"):
        resolve_model(empty)
    pickled = shutil.copytree(tiny_model, tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(EmbeddingError, match="pickled weights are never loaded"):
        resolve_model(pickled)
    garbled = shutil.copytree(tiny_model, tmp_path / "garbled")
    (garbled / "config.json").write_text("{not json")
    with pytest.raises(EmbeddingError, match="not readable JSON"):
        resolve_model(garbled)
    (garbled / "config.json").write_text("[1, 2]")
    with pytest.raises(EmbeddingError, match="not a JSON object"):
        resolve_model(garbled)
    escaping = tmp_path / "escaping"
    escaping.mkdir()
    (escaping / "modules.json").write_text(
        json.dumps([{"path": "../../etc", "type": "sentence_transformers.models.Transformer"}])
    )
    with pytest.raises(EmbeddingError, match="outside the model folder"):
        resolve_model(escaping)
    truncated = shutil.copytree(tiny_model, tmp_path / "truncated")
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(EmbeddingError, match="model.safetensors is not usable safetensors"):
        resolve_model(truncated)  # refused when chosen, not when training starts
    foreign = shutil.copytree(tiny_model, tmp_path / "foreign")
    config = json.loads((foreign / "config.json").read_text())
    (foreign / "config.json").write_text(json.dumps({**config, "model_type": "no-such-model"}))
    embedder = TextEmbedder(foreign)  # the folder looks right until transformers reads it
    with pytest.raises(EmbeddingError, match="cannot load the embedding model"):
        embedder.embed([LESSON])
    with pytest.raises(ValueError, match="overlap"):
        TextEmbedder(tiny_model, chunk_tokens=64, overlap=40)


def write_weights(folder: Path, hidden: int = 32, **config: object) -> Path:
    """A model folder that passes every check made without torch: a config and a one-tensor
    safetensors file of the given width (it would fail to load, but it is read in milliseconds)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"hidden_size": hidden, **config}))
    save_file({"norm.weight": np.ones(hidden, np.float32)}, str(folder / "model.safetensors"))
    return folder


def _listing(modules: object) -> dict[str, bytes]:
    return {"modules.json": json.dumps(modules).encode()}


CONFIG_32 = {"config.json": b'{"hidden_size": 32}'}

# each hostile folder: the files written over a plausible folder, and what the refusal names
MALFORMED = {
    "modules.json not UTF-8": ({"modules.json": b"\xff garbage"}, "modules.json is not UTF-8"),
    "modules.json of numbers": (_listing([1, 2]), "modules.json is not a list of modules"),
    "modules.json an object": (_listing({"0": "x"}), "modules.json is not a list of modules"),
    "modules.json nested deep": ({"modules.json": b"[" * 100_000}, "modules.json is not readable"),
    "modules.json names a gap": (
        _listing([{"type": "models.Transformer", "path": "gone"}]),
        "gone is not a model folder (no config.json)",
    ),
    "config.json not UTF-8": ({"config.json": b"\xfe\xff{}"}, "config.json is not UTF-8"),
    "config.json garbage": ({"config.json": b"\x00\x01garbage"}, "config.json is not readable"),
    "config.json a list": ({"config.json": b"[384]"}, "config.json is not a JSON object"),
    "no hidden size": ({"config.json": b'{"vocab_size": 3}'}, "does not give the model's hidden"),
    "hidden size 4": ({"config.json": b'{"hidden_size": 4}'}, "hidden size of 4: an encoder"),
    "hidden size 1e12": ({"config.json": b'{"hidden_size": 1e12}'}, "size of 1000000000000.0"),
    "hidden size huge int": (
        {"config.json": b'{"hidden_size": 1000000000000}'},
        "hidden size of 1000000000000",
    ),
    "hidden size text": ({"config.json": b'{"hidden_size": "384"}'}, "hidden size of '384'"),
    "hidden size true": ({"config.json": b'{"hidden_size": true}'}, "hidden size of True"),
    "hidden size not the weights'": (
        {"config.json": b'{"hidden_size": 48}'},
        "no tensor in the weights has that size",
    ),
    "garbage safetensors": (
        {**CONFIG_32, "model.safetensors": b"garbage"},
        "model.safetensors is not usable safetensors weights",
    ),
    "empty safetensors": (
        {**CONFIG_32, "model.safetensors": b""},
        "model.safetensors is not usable safetensors weights",
    ),
    "a second, garbled shard": (
        {"model-00002-of-00002.safetensors": b"\xff" * 64},
        "model-00002-of-00002.safetensors is not usable",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_model_folders_are_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    folder = write_weights(tmp_path / "model")
    files, message = MALFORMED[case]
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with pytest.raises(EmbeddingError, match=re.escape(message)):
        resolve_model(folder)


def test_the_sweeps_garbage_folder_is_refused_when_chosen(tmp_path: Path) -> None:
    """hidden_size 4 and a garbage model.safetensors: once accepted as "4 dims", now refused
    on either count."""
    folder = tmp_path / "cfg_bad"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 4}')
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(EmbeddingError, match="config.json gives a hidden size of 4"):
        resolve_model(folder)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    with pytest.raises(EmbeddingError, match="model.safetensors is not usable"):
        resolve_model(folder)


def test_a_plausible_folder_passes_the_cheap_checks(tmp_path: Path) -> None:
    ref = resolve_model(write_weights(tmp_path / "plausible", hidden=24))
    assert ref.dims == 24 and ref.name == "plausible" and ref.pooling == "mean"
    empty_listing = write_weights(tmp_path / "listed")
    (empty_listing / "modules.json").write_text("")  # an empty listing: a plain folder
    assert resolve_model(empty_listing).dims == 32


def test_cancel_stops_between_forward_passes(tiny_model: Path) -> None:
    embedder = TextEmbedder(tiny_model, batch_size=2)
    task = Task()
    task.cancel()
    with pytest.raises(Cancelled):
        embedder.embed([LESSON] * 8, task)
    assert embedder.embed([]).shape == (0, 32)
