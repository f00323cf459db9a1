"""Near-duplicate clusters over a whole project: one document kept per cluster, the others marked
with the reason and the kept document.

Which one is kept: the curator's choice (:func:`keep_document`, remembered across runs), else
:data:`RULE`: the highest score of the newest classifier version that scored the corpus, then the
most main-text words, then the earliest document. A run replaces the previous run's clusters and
marks in one transaction; the same corpus and parameters give the same clusters, ids and marks.

Example::

    with project.store() as store:
        report = dedup_corpus(store, threshold=0.8)
    print(report.text)   # 1,495 documents: 37 clusters, 52 near-duplicates marked
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from studio.dedup.index import BANDS, ROWS, THRESHOLD, NearDuplicateIndex
from studio.dedup.minhash import NGRAM, SEED, jaccard
from studio.dedup.store import params_key, signatures_of
from studio.progress import Task
from studio.store import Store, now

RULE = "curator's choice, else highest classifier score, then most words, then earliest"


@dataclass(frozen=True, slots=True)
class DedupReport:
    documents: int
    clusters: int
    exact_clusters: int
    removed: int  # documents marked as near-duplicates, not kept
    removed_words: int
    params: dict[str, Any]
    rule: str = RULE
    notes: tuple[str, ...] = ()  # what the curator should know about this run's choices

    @property
    def text(self) -> str:
        return (
            f"{self.documents:,} documents: {self.clusters:,} clusters "
            f"({self.exact_clusters:,} of exact duplicates), {self.removed:,} near-duplicates "
            f"marked ({self.removed_words:,} words); kept: {self.rule}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def find_clusters(
    texts: Sequence[str],
    *,
    bands: int = BANDS,
    rows: int = ROWS,
    ngram: int = NGRAM,
    threshold: float = THRESHOLD,
    seed: int = SEED,
) -> list[list[int]]:
    """Groups of near-duplicate texts among ``texts`` (a generation batch), as lists of indices,
    each sorted; texts with no near-duplicate are in no group."""
    index = NearDuplicateIndex(bands, rows, ngram, threshold=threshold, seed=seed)
    index.add_many(list(range(len(texts))), texts)
    return _union(len(texts), [(i, j) for i, j, _ in index.pairs()])


def _union(n: int, pairs: Sequence[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(root(x), []).append(x)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def dedup_corpus(
    store: Store,
    *,
    bands: int = BANDS,
    rows: int = ROWS,
    ngram: int = NGRAM,
    threshold: float = THRESHOLD,
    seed: int = SEED,
    task: Task | None = None,
) -> DedupReport:
    """Cluster the project's documents and mark all but one of each cluster."""
    task = task or Task()
    index = NearDuplicateIndex.from_store(
        store, bands, rows, ngram, threshold=threshold, seed=seed, task=task
    )
    pairs = index.pairs(task)
    ids = index.keys
    sigs = index.signature_matrix
    hashes = _text_hashes(store, params_key(index.num_perm, ngram, seed))
    groups = [[ids[p] for p in g] for g in _union(len(ids), [(i, j) for i, j, _ in pairs])]
    pos = {doc_id: p for p, doc_id in enumerate(ids)}
    params = index.params
    rank = _ranking(store, [d for g in groups for d in g])
    chosen = _curator_choices(store)
    clusters, marks = [], []
    removed_words = 0
    for group in groups:
        kept, by = _kept(group, rank, chosen)
        exact = len({hashes.get(d) for d in group}) == 1
        sims = {d: _similarity(sigs[pos[d]], sigs[pos[kept]], hashes, d, kept) for d in group}
        cid = group[0]
        clusters.append(
            (cid, len(group), min(sims.values()), kept, by, "exact" if exact else "minhash")
        )
        for d in group:
            why = None if d == kept else reason(kept, sims[d], by)
            marks.append((d, cid, kept, why, sims[d], "exact" if sims[d] >= 1.0 else "minhash"))
            removed_words += 0 if d == kept else rank[d][1]
    task.check()
    ranked = ranking_scores(store)
    report = DedupReport(
        documents=len(ids),
        clusters=len(clusters),
        exact_clusters=sum(1 for c in clusters if c[5] == "exact"),
        removed=len(marks) - len(clusters),
        removed_words=removed_words,
        params=params,
        notes=_partial_scores(store, ranked),
    )
    _save(store, clusters, marks, params, report, ranked)
    return report


def reason(kept: int, similarity: float, by: str) -> str:
    """Why a member of a cluster is dropped, as the export and the UI show it."""
    what = (
        "exact duplicate"
        if similarity >= 1.0
        else f"near-duplicate (estimated Jaccard {similarity:.2f})"
    )
    return f"{what} of document {kept}" + (", kept by a curator" if by == "curator" else "")


def _similarity(a: np.ndarray, b: np.ndarray, hashes: dict[int, str], d: int, kept: int) -> float:
    if d == kept or (hashes.get(d) is not None and hashes.get(d) == hashes.get(kept)):
        return 1.0
    return min(jaccard(a, b), 0.999)  # equal signatures but different texts: not "exact"


def _kept(
    group: list[int], rank: dict[int, tuple[float, int]], chosen: set[int]
) -> tuple[int, str]:
    picks = [d for d in group if d in chosen]
    pool, by = (picks, "curator") if picks else (group, "rule")
    # highest score, then most words, then earliest (smallest id)
    return min(pool, key=lambda d: (-rank[d][0], -rank[d][1], d)), by


def _ranking(store: Store, doc_ids: list[int]) -> dict[int, tuple[float, int]]:
    """doc_id -> (classifier score or -inf, main-text words)."""
    out: dict[int, tuple[float, int]] = {}
    version = store.latest_scored_version()
    for i in range(0, len(doc_ids), 500):
        chunk = doc_ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for doc_id, score, words in store.conn.execute(
            f"SELECT d.id, c.score, d.signal_words FROM documents d LEFT JOIN classifier_scores c "
            f"ON c.doc_id = d.id AND c.version = ? WHERE d.id IN ({marks})",
            [version, *chunk],
        ):
            out[doc_id] = (float("-inf") if score is None else float(score), int(words))
    return out


def ranking_scores(store: Store) -> dict[str, Any] | None:
    """The scores that choose keepers now: the newest scored version and how many it scored."""
    version = store.latest_scored_version()
    if version is None:
        return None
    scored = store.conn.execute(
        "SELECT count(*) FROM classifier_scores WHERE version = ?", (version,)
    ).fetchone()[0]
    return {"version": version, "scored": scored}


def _partial_scores(store: Store, ranked: dict[str, Any] | None) -> tuple[str, ...]:
    """A note when the scores that choose each cluster's keeper (``ranked``) cover part of the
    corpus (a scoring run stopped part-way, or running now): pages without one lose to pages
    with one, so the choice is not the one the full scores would make."""
    if ranked is None:
        return ()
    version, scored = ranked["version"], ranked["scored"]
    total = store.totals()["documents"]
    if scored >= total:
        return ()
    return (
        f"classifier {version} has scored {scored:,} of {total:,} documents: in a cluster, "
        "pages it has not scored lose to pages it has; run `studio score`, then dedup again",
    )


def _curator_choices(store: Store) -> set[int]:
    return {int(r[0]) for r in store.conn.execute("SELECT doc_id FROM dedup_keep")}


def _text_hashes(store: Store, key: str) -> dict[int, str]:
    rows = store.conn.execute(
        "SELECT doc_id, text_hash FROM dedup_signatures WHERE params = ?", (key,)
    )
    return {int(d): h for d, h in rows}


def _save(
    store: Store,
    clusters: list[tuple],
    marks: list[tuple],
    params: dict,
    report: DedupReport,
    ranked: dict[str, Any] | None,
) -> None:
    p = json.dumps(params, sort_keys=True)
    with store.transaction():
        store.conn.execute("DELETE FROM dedup_marks")
        store.conn.execute("DELETE FROM dedup_clusters")
        store.conn.executemany(
            "INSERT INTO dedup_clusters(id, size, similarity, kept_doc_id, kept_by, method, "
            "params) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*c, p) for c in clusters],
        )
        store.conn.executemany(
            "INSERT INTO dedup_marks(doc_id, cluster_id, kept_doc_id, reason, similarity, "
            "method, params) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*m, p) for m in marks],
        )
        # the run also records the scores its keepers were chosen on, so that an export can
        # tell when they have changed since
        run = json.dumps({**params, "ranked_by": ranked}, sort_keys=True)
        store.conn.execute(
            "INSERT INTO dedup_runs(created_at, params, documents, clusters, removed) "
            "VALUES (?, ?, ?, ?, ?)",
            (now(), run, report.documents, report.clusters, report.removed),
        )


# -- a curator's choice ----------------------------------------------------------------------------


def keep_document(store: Store, doc_id: int) -> None:
    """Keep ``doc_id`` in its cluster instead of the one kept now (remembered across runs); the
    other members are marked as its near-duplicates."""
    row = store.conn.execute(
        "SELECT m.cluster_id, c.params FROM dedup_marks m JOIN dedup_clusters c "
        "ON c.id = m.cluster_id WHERE m.doc_id = ?",
        (doc_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"document {doc_id} is in no near-duplicate cluster")
    cid, params = int(row[0]), json.loads(row[1])
    members = [
        int(r[0])
        for r in store.conn.execute(
            "SELECT doc_id FROM dedup_marks WHERE cluster_id = ? ORDER BY doc_id", (cid,)
        )
    ]
    num_perm = int(params["bands"]) * int(params["rows"])
    key = params_key(num_perm, int(params["ngram"]), int(params["seed"]))
    sigs = signatures_of(store, key, num_perm, members)
    hashes = _text_hashes_of(store, key, members)
    kept_sig = sigs[members.index(doc_id)]
    sims = {d: _similarity(sigs[i], kept_sig, hashes, d, doc_id) for i, d in enumerate(members)}
    with store.transaction():
        marks = ",".join("?" * len(members))
        store.conn.execute(f"DELETE FROM dedup_keep WHERE doc_id IN ({marks})", members)
        store.conn.execute(
            "INSERT INTO dedup_keep(doc_id, created_at) VALUES (?, ?)", (doc_id, now())
        )
        store.conn.executemany(
            "UPDATE dedup_marks SET kept_doc_id = ?, reason = ?, similarity = ?, method = ? "
            "WHERE doc_id = ?",
            [
                (
                    doc_id,
                    None if d == doc_id else reason(doc_id, s, "curator"),
                    s,
                    "exact" if s >= 1.0 else "minhash",
                    d,
                )
                for d, s in sims.items()
            ],
        )
        store.conn.execute(
            "UPDATE dedup_clusters SET kept_doc_id = ?, kept_by = 'curator', similarity = ? "
            "WHERE id = ?",
            (doc_id, min(sims.values()), cid),
        )


def _text_hashes_of(store: Store, key: str, doc_ids: list[int]) -> dict[int, str]:
    marks = ",".join("?" * len(doc_ids))
    rows = store.conn.execute(
        f"SELECT doc_id, text_hash FROM dedup_signatures WHERE params = ? AND doc_id IN ({marks})",
        [key, *doc_ids],
    )
    return {int(d): h for d, h in rows}


# -- reading the clusters --------------------------------------------------------------------------


def clusters(store: Store, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The latest run's clusters, largest first: id, size, similarity, kept doc and its title."""
    rows = store.conn.execute(
        "SELECT c.id, c.size, c.similarity, c.kept_doc_id, c.kept_by, c.method, d.title, d.url "
        "FROM dedup_clusters c JOIN documents d ON d.id = c.kept_doc_id "
        "ORDER BY c.size DESC, c.id LIMIT ?",
        (-1 if limit is None else limit,),
    )
    return [dict(r) for r in rows]


def cluster_members(store: Store, cluster_id: int) -> list[dict[str, Any]]:
    """A cluster's documents, the kept one first, then by similarity to it."""
    rows = store.conn.execute(
        "SELECT m.doc_id, m.kept_doc_id, m.reason, m.similarity, m.method, d.title, d.url, "
        "d.signal_words, (m.doc_id = m.kept_doc_id) AS kept FROM dedup_marks m "
        "JOIN documents d ON d.id = m.doc_id WHERE m.cluster_id = ? "
        "ORDER BY kept DESC, m.similarity DESC, m.doc_id",
        (cluster_id,),
    )
    return [dict(r) for r in rows]


def summary(store: Store) -> dict[str, Any]:
    """What the latest run found: clusters, documents marked, and the run's parameters."""
    clusters_n, removed = store.conn.execute(
        "SELECT (SELECT count(*) FROM dedup_clusters), "
        "(SELECT count(*) FROM dedup_marks WHERE doc_id != kept_doc_id)"
    ).fetchone()
    run = store.conn.execute("SELECT * FROM dedup_runs ORDER BY id DESC LIMIT 1").fetchone()
    return {
        "clusters": clusters_n,
        "removed": removed,
        "last_run": dict(run) if run else None,
    }
