"""Token counts of a recipe, for the recipe editor and ``studio recipe show``.

Without a tokenizer, tokens are estimated from characters (``CHARS_PER_TOKEN``); with one, the
ratio is measured on a sample of each source's documents (at most ``SAMPLE_DOCS``) and applied
to the source's characters, so a million-page corpus is counted in about a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.store import Store
from studio.training.mix import CHARS_PER_TOKEN, Mix, resolve
from studio.training.recipe import Recipe, load_recipe
from studio.training.tokenizer import load_tokenizer

SAMPLE_DOCS = 200


def recipe_counts(
    root: Path,
    store: Store,
    recipe: str | Recipe,
    *,
    run_tokens: int | None = None,
    tokenizer: Path | None = None,
) -> dict[str, Any]:
    found = recipe if isinstance(recipe, Recipe) else load_recipe(root, recipe)
    mix = resolve(store, found)
    ratio = CHARS_PER_TOKEN
    if tokenizer is not None:
        ratio = chars_per_token(store, mix, load_tokenizer(tokenizer))
    return {
        "recipe": found.to_dict(),
        "counts": mix.counts(run_tokens, ratio),
        "warnings": mix.warnings,
        "chars_per_token": round(ratio, 3),
        "estimated": tokenizer is None,
    }


def chars_per_token(store: Store, mix: Mix, tokenizer: Any) -> float:
    """Characters per token over a sample of every source's training documents."""
    chars = tokens = 0
    for sel in mix.sources:
        step = max(1, len(sel.train) // SAMPLE_DOCS)
        ids = sel.train[::step][:SAMPLE_DOCS]
        texts = [t for t, _share in store.texts(ids).values()]
        for enc, text in zip(tokenizer.encode_batch(texts), texts, strict=True):
            chars += len(text)
            tokens += len(enc.ids)
    return chars / tokens if tokens else CHARS_PER_TOKEN
