"""A recipe resolved against a project: which documents each source and evaluation set holds,
which of them are held out, and how many tokens that makes.

The held-out split is a property of the document, not of the recipe: a document is held out
when the hash of its content (salted with ``split_seed``) falls below ``heldout``. Two recipes
with the same ``heldout`` and ``split_seed`` therefore hold out the same documents, and no
recipe ever trains on a page an evaluation set scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from studio.classify.features import CODE_LINE
from studio.classify.versions import version_info
from studio.store import Store
from studio.training.recipe import Recipe, RecipeError, Source

CHARS_PER_TOKEN = 4.0  # byte-level BPE with a few thousand merges, on English prose
CODE_SHARE = 0.3  # a page "is code" when at least this share of its lines looks like code
CHUNK = 500


@dataclass
class Selection:
    """One source's (or evaluation set's) documents, split into training and held-out."""

    source: Source
    train: list[int] = field(default_factory=list)
    heldout: list[int] = field(default_factory=list)
    train_chars: int = 0
    heldout_chars: int = 0
    note: str | None = None  # why it is empty, or what it could not do

    def tokens(self, chars_per_token: float = CHARS_PER_TOKEN) -> int:
        return round(self.train_chars / chars_per_token)


@dataclass
class Mix:
    recipe: Recipe
    sources: list[Selection]
    evals: list[Selection]

    @property
    def warnings(self) -> list[str]:
        notes = [f"source {s.source.name}: {s.note}" for s in self.sources if s.note]
        return notes + [f"eval set {s.source.name}: {s.note}" for s in self.evals if s.note]

    def shares(self, run_tokens: int, chars_per_token: float = CHARS_PER_TOKEN) -> list[float]:
        """Each source's share of a run of ``run_tokens``: token budgets first (capped at the
        run), shares over what is left; an empty source's share goes to the others."""
        live = [s for s in self.sources if s.train]
        if not live:
            raise RecipeError(f"recipe {self.recipe.name}: no source has any document to train on")
        budgets = {id(s): float(s.source.tokens) for s in live if s.source.tokens is not None}
        budget_total = sum(budgets.values())
        scale = min(1.0, run_tokens / budget_total) if budget_total else 1.0
        fixed = {k: v * scale / run_tokens for k, v in budgets.items()}
        left = max(0.0, 1.0 - sum(fixed.values()))
        share_total = sum(s.source.share or 0.0 for s in live if s.source.tokens is None)
        out = []
        for s in self.sources:
            if not s.train:
                out.append(0.0)
            elif id(s) in fixed:
                out.append(fixed[id(s)])
            else:
                out.append(left * (s.source.share or 0.0) / share_total if share_total else 0.0)
        total = sum(out)
        return [x / total for x in out] if total > 0 else out

    def counts(self, run_tokens: int | None = None, chars_per_token: float = CHARS_PER_TOKEN):
        """Rows for the recipe editor and ``studio recipe show``: per source and eval set."""
        shares = self.shares(run_tokens or 1, chars_per_token) if run_tokens else None
        rows: list[dict[str, Any]] = []
        for i, s in enumerate(self.sources):
            tokens = s.tokens(chars_per_token)
            row = _row("source", s, chars_per_token)
            if shares is not None and run_tokens:
                row["mix_share"] = round(shares[i], 4)
                row["repeats"] = round(shares[i] * run_tokens / tokens, 2) if tokens else None
            rows.append(row)
        rows += [_row("eval", s, chars_per_token) for s in self.evals]
        return rows


def _row(role: str, s: Selection, chars_per_token: float) -> dict[str, Any]:
    return {
        "role": role,
        "name": s.source.name,
        "kind": s.source.kind,
        "selector": s.source.selector(),
        "share": s.source.share,
        "tokens_budget": s.source.tokens,
        "documents": len(s.train),
        "heldout_documents": len(s.heldout),
        "chars": s.train_chars,
        "tokens": s.tokens(chars_per_token),
        "heldout_tokens": round(s.heldout_chars / chars_per_token),
        "note": s.note,
    }


def resolve(store: Store, recipe: Recipe) -> Mix:
    """Select every source's and evaluation set's documents. A source that names something the
    project lacks (no synthetic pages yet) is empty with a note; a classifier version that does
    not exist is an error for a source and a note for an evaluation set."""
    sources = [select(store, s, recipe, strict=True) for s in recipe.sources]
    evals = [select(store, s, recipe, strict=False) for s in recipe.evals]
    for e in evals:
        if not e.heldout and e.note is None:
            e.note = "no held-out document: left out of the evaluation"
    return Mix(recipe, sources, evals)


def select(store: Store, source: Source, recipe: Recipe, *, strict: bool) -> Selection:
    sel = Selection(source)
    try:
        sql, args = _query(store, source)
    except LookupError as exc:
        if strict:
            raise RecipeError(f"source {source.name!r}: {exc.args[0]}") from exc
        sel.note = str(exc.args[0])
        return sel
    if sql is None:
        sel.note = str(args)
        return sel
    rows = store.conn.execute(sql, args).fetchall()
    if source.code is not None:
        rows = _by_code(store, rows, source.code)
    for doc_id, content_hash, chars in rows:
        if held_out(content_hash, recipe.split_seed, recipe.heldout):
            sel.heldout.append(doc_id)
            sel.heldout_chars += chars or 0
        else:
            sel.train.append(doc_id)
            sel.train_chars += chars or 0
    if not rows and sel.note is None:
        sel.note = "no document matches"
    return sel


def held_out(content_hash: str, seed: int, fraction: float) -> bool:
    digest = hashlib.blake2b(f"{seed}:{content_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


_BASE = (
    "SELECT d.id, d.content_hash, length(t.main_text) FROM documents d "
    "LEFT JOIN document_text t ON t.doc_id = d.id "
)


def _query(store: Store, s: Source) -> tuple[str | None, Any]:
    """(SQL, arguments) selecting (id, content hash, characters); (None, why) when the project
    has nothing of this kind yet."""
    if s.kind == "all":
        return _BASE + "ORDER BY d.id", ()
    if s.kind == "web":
        return _BASE + "WHERE d.kind != 'synthetic' ORDER BY d.id", ()
    if s.kind == "import":
        return _BASE + "JOIN sources s ON s.id = d.source_id WHERE s.path GLOB ? ORDER BY d.id", (
            s.path or "*",
        )
    if s.kind == "filtered":
        return _filtered(store, s)
    return _synthetic(store, s)


def _filtered(store: Store, s: Source) -> tuple[str | None, Any]:
    info = version_info(store, None if s.model in (None, "latest") else s.model)
    if s.threshold is not None and not info.predicts_score:
        raise RecipeError(
            f"source {s.name!r}: classifier {info.version} predicts P(keep), so a rubric "
            "threshold does not apply; leave threshold out to use its own keep decision"
        )
    keep = "c.keep = 1" if s.threshold is None else "c.score >= ?"
    args = (info.version,) if s.threshold is None else (info.version, s.threshold)
    sql = (
        _BASE + "JOIN classifier_scores c ON c.doc_id = d.id AND c.version = ? "
        f"WHERE {keep} AND d.kind != 'synthetic' ORDER BY d.id"
    )
    return sql, args


def _synthetic(store: Store, s: Source) -> tuple[str | None, Any]:
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    if "gen_pages" not in tables:
        return None, "the project has no synthetic pages yet"
    where, args = ["g.status = ?"], [s.status or "accepted"]
    if s.cell:
        where.append("g.cell GLOB ?")
        args.append(s.cell)
    if s.exclude_cell:
        where.append("NOT g.cell GLOB ?")
        args.append(s.exclude_cell)
    sql = (
        _BASE
        + "WHERE d.id IN (SELECT g.doc_id FROM gen_pages g WHERE "
        + " AND ".join(where)
        + ") ORDER BY d.id"
    )
    return sql, args


def _by_code(store: Store, rows: list[Any], want_code: bool) -> list[Any]:
    """Keep the rows whose page is (or is not) mostly code: reads each page's text once."""
    kept = []
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i : i + CHUNK]
        texts = store.texts([r[0] for r in chunk])
        kept += [r for r in chunk if is_code(texts.get(r[0], ("", 0))[0]) == want_code]
    return kept


def is_code(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return False
    return sum(bool(CODE_LINE.search(ln)) for ln in lines) / len(lines) >= CODE_SHARE
