"""Check a project's documents against benchmarks and keep the hits: the export gate drops every
document with one, and the Duplicates tab shows each span beside the benchmark item.

A run replaces the earlier hits of the benchmarks it checked (in one transaction, at the end: a
cancelled run leaves the earlier ones as they were) and logs itself in ``decontam_runs``.

Example::

    index = BenchmarkIndex.load(["gsm8k", "humaneval"])
    with project.store() as store:
        print(decontaminate(store, index).text)   # 1,495 documents: 3 contaminated (gsm8k: 3)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from studio.decontam.index import BenchmarkIndex, Hit
from studio.progress import Task
from studio.store import Store, now

BATCH = 500
# spans stored per document (the export gate needs one; the side-by-side view a few): a page that
# quotes a whole benchmark would otherwise store thousands of rows, each with its item's text
MAX_STORED_HITS = 50


@dataclass(frozen=True, slots=True)
class DecontamReport:
    benchmarks: list[str]
    n: int
    items: int
    documents: int
    contaminated: int  # documents with at least one hit
    hits: int
    by_benchmark: dict[str, int] = field(default_factory=dict)  # contaminated documents
    skipped: dict[str, int] = field(default_factory=dict)  # benchmark lines that were no item
    skipped_why: dict[str, list[str]] = field(default_factory=dict)  # their reasons (capped)

    @property
    def skipped_text(self) -> list[str]:
        """One line per benchmark file with lines skipped: how many, and the first reasons."""
        out = []
        for name, count in self.skipped.items():
            shown = self.skipped_why.get(name, [])[:3]
            more = f"; … and {count - len(shown):,} more" if count > len(shown) else ""
            out.append(f"{name}: {count:,} line(s) skipped: {'; '.join(shown)}{more}")
        return out

    @property
    def text(self) -> str:
        per = ", ".join(f"{b}: {k:,}" for b, k in self.by_benchmark.items())
        return (
            f"{self.documents:,} documents against {self.items:,} items of "
            f"{', '.join(self.benchmarks)} ({self.n}-grams): {self.contaminated:,} contaminated"
            + (f" ({per})" if per else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def decontaminate(
    store: Store, index: BenchmarkIndex, *, task: Task | None = None
) -> DecontamReport:
    """Find every document's hits against the index's benchmarks and store them."""
    task = task or Task()
    total = store.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    found: list[tuple[int, Hit]] = []  # the spans stored: at most MAX_STORED_HITS a document
    hits_per: Counter[str] = Counter()  # every span, by benchmark
    per_bench: dict[str, set[int]] = {b.name: set() for b in index.benchmarks}
    after, done = 0, 0
    while True:
        task.check()
        rows = store.conn.execute(
            "SELECT d.id, t.main_text FROM documents d LEFT JOIN document_text t "
            "ON t.doc_id = d.id WHERE d.id > ? ORDER BY d.id LIMIT ?",
            (after, BATCH),
        ).fetchall()
        if not rows:
            break
        for doc_id, text in rows:
            hits = index.hits(text or "")
            for h in hits:
                hits_per[h.benchmark] += 1
                per_bench[h.benchmark].add(doc_id)
            found.extend((doc_id, h) for h in hits[:MAX_STORED_HITS])
        after, done = rows[-1][0], done + len(rows)
        task.progress(done, total, "checking documents")
    report = DecontamReport(
        benchmarks=[b.name for b in index.benchmarks],
        n=index.n,
        items=index.items,
        documents=done,
        contaminated=len({doc_id for doc_id, _ in found}),
        hits=sum(hits_per.values()),
        by_benchmark={b: len(d) for b, d in per_bench.items() if d},
        skipped={b.name: b.skipped for b in index.benchmarks if b.skipped},
        skipped_why={b.name: b.errors for b in index.benchmarks if b.skipped},
    )
    _save(store, index, found, per_bench, hits_per, done)
    return report


def _save(
    store: Store,
    index: BenchmarkIndex,
    found: list[tuple[int, Hit]],
    per_bench: dict[str, set[int]],
    hits_per: Counter[str],
    documents: int,
) -> None:
    created = now()
    with store.transaction():
        for bench in index.benchmarks:
            store.conn.execute("DELETE FROM decontam_hits WHERE benchmark = ?", (bench.name,))
            store.conn.execute(
                "INSERT INTO decontam_runs(created_at, benchmark, source, n, items, documents, "
                "contaminated, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    created,
                    bench.name,
                    bench.source,
                    index.n,
                    len(bench.items),
                    documents,
                    len(per_bench[bench.name]),
                    hits_per[bench.name],
                ),
            )
        store.conn.executemany(
            "INSERT INTO decontam_hits(doc_id, benchmark, item_id, n, ngram, doc_start, doc_end, "
            "item_start, item_end, item_text, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    doc_id,
                    h.benchmark,
                    h.item_id,
                    index.n,
                    h.ngram,
                    *h.text_span,
                    *h.item_span,
                    h.item_text,
                    created,
                )
                for doc_id, h in found
            ],
        )


# -- reading the hits ------------------------------------------------------------------------------


def stored_hits(
    store: Store, *, benchmark: str | None = None, doc_id: int | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Stored hits (each with the document's title), by document then position."""
    where, args = [], []
    if benchmark is not None:
        where.append("h.benchmark = ?")
        args.append(benchmark)
    if doc_id is not None:
        where.append("h.doc_id = ?")
        args.append(doc_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.conn.execute(
        f"SELECT h.*, d.title FROM decontam_hits h JOIN documents d ON d.id = h.doc_id {clause} "
        f"ORDER BY h.doc_id, h.doc_start, h.id LIMIT ?",
        [*args, limit],
    )
    return [dict(r) for r in rows]


def contaminated_summary(store: Store) -> dict[str, int]:
    """benchmark -> documents with a hit."""
    rows = store.conn.execute(
        "SELECT benchmark, count(DISTINCT doc_id) FROM decontam_hits GROUP BY benchmark "
        "ORDER BY benchmark"
    )
    return {r[0]: int(r[1]) for r in rows}
