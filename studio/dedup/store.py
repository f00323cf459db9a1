"""The project's MinHash signatures: computed once per document and parameters, kept in
``dedup_signatures``, recomputed when a curator's block correction changed a main text."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import numpy as np

from studio.dedup.minhash import method
from studio.progress import Task
from studio.store import Store, now

if TYPE_CHECKING:
    from studio.dedup.index import NearDuplicateIndex

BATCH = 2000  # documents hashed and saved per transaction


def params_key(num_perm: int, ngram: int, seed: int) -> str:
    """What the cached signatures are keyed by: another key never reads stale values."""
    return f"{method()}/p{num_perm}/n{ngram}/s{seed}"


def load_signatures(
    store: Store, index: NearDuplicateIndex, *, save: bool = True, task: Task | None = None
) -> tuple[list[int], np.ndarray, list[str]]:
    """(document ids, their signatures, their text hashes) for every document, in id order."""
    from studio.dedup.index import text_hash

    task = task or Task()
    key = params_key(index.num_perm, index.ngram, index.seed)
    stale = _stale(store, key)
    started = now()
    missing = _missing(store, key) | stale
    total, done = len(missing), 0
    todo = sorted(missing)
    fresh: dict[int, tuple[int, str, str, bytes]] = {}  # computed, not saved (save=False)
    for i in range(0, len(todo), BATCH):
        task.check()
        chunk = todo[i : i + BATCH]
        texts = _main_texts(store, chunk)
        sigs = index.signatures(texts)
        rows = [
            (doc_id, key, text_hash(t), sig.astype("<u4").tobytes())
            for doc_id, t, sig in zip(chunk, texts, sigs, strict=True)
        ]
        if save:
            save = _save(store, rows)
        if not save:
            fresh.update((r[0], r) for r in rows)
        done += len(chunk)
        task.progress(done, total, "hashing documents")
    if save:
        store.set_meta(_meta_key(key), started)
    return _read(store, key, index.num_perm, fresh)


def _save(store: Store, rows: list[tuple[int, str, str, bytes]]) -> bool:
    """Cache the rows; False when the store is read-only (they are then kept in memory)."""
    try:
        with store.transaction():
            store.conn.executemany(
                "INSERT OR REPLACE INTO dedup_signatures(doc_id, params, text_hash, signature) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            return False
        raise
    return True


def _read(
    store: Store, key: str, num_perm: int, fresh: dict[int, tuple[int, str, str, bytes]]
) -> tuple[list[int], np.ndarray, list[str]]:
    ids, hashes, blobs = [], [], []
    rows = store.conn.execute(
        "SELECT s.doc_id, s.text_hash, s.signature FROM dedup_signatures s "
        "JOIN documents d ON d.id = s.doc_id WHERE s.params = ? ORDER BY s.doc_id",
        (key,),
    )
    for doc_id, h, blob in rows:
        if doc_id in fresh:
            continue
        ids.append(doc_id)
        hashes.append(h)
        blobs.append(blob)
    for doc_id, _, h, blob in sorted(fresh.values()):
        ids.append(doc_id)
        hashes.append(h)
        blobs.append(blob)
    sigs = np.frombuffer(b"".join(blobs), dtype="<u4").astype(np.uint32).reshape(-1, num_perm)
    return ids, sigs, hashes


def signatures_of(store: Store, key: str, num_perm: int, doc_ids: list[int]) -> np.ndarray:
    """The cached signatures of some documents (rows of :data:`EMPTY` where none is cached)."""
    from studio.dedup.minhash import EMPTY

    out = np.full((len(doc_ids), num_perm), EMPTY, np.uint32)
    where = {d: i for i, d in enumerate(doc_ids)}
    marks = ",".join("?" * len(doc_ids))
    for doc_id, blob in store.conn.execute(
        f"SELECT doc_id, signature FROM dedup_signatures WHERE params = ? AND doc_id IN ({marks})",
        [key, *doc_ids],
    ):
        out[where[doc_id]] = np.frombuffer(blob, dtype="<u4")
    return out


def _meta_key(key: str) -> str:
    return f"dedup.signatures_at.{key}"


def _missing(store: Store, key: str) -> set[int]:
    rows = store.conn.execute(
        "SELECT d.id FROM documents d WHERE NOT EXISTS (SELECT 1 FROM dedup_signatures s "
        "WHERE s.params = ? AND s.doc_id = d.id)",
        (key,),
    )
    return {int(r[0]) for r in rows}


def _stale(store: Store, key: str) -> set[int]:
    """Documents whose main text a curator corrected since their signatures were saved."""
    since = store.get_meta(_meta_key(key))
    if since is None:
        return set()
    rows = store.conn.execute(
        "SELECT DISTINCT doc_id FROM block_corrections WHERE created_at >= ?", (since,)
    )
    return {int(r[0]) for r in rows}


def _main_texts(store: Store, doc_ids: list[int]) -> list[str]:
    texts = store.texts(doc_ids)
    return [texts.get(d, ("", 0.0))[0] for d in doc_ids]
