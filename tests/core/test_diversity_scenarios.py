"""Three collapse scenarios over five rounds and a healthy run, from two corpora of real pages.

Each collapse must raise its own alarm by the last round; the healthy run must raise none. The
real pages and the pool the rounds are drawn from are disjoint, as real pages and a teacher's
output are. The pages are web pages (the WCXB dev split in ../shared, skipped where it is absent)
and, everywhere, the standard library's documentation (:func:`simulate.library_pages`): two
different kinds of real text, read by alarms that were tuned on neither. The helpers here also
fill a project for the CLI and UI tests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from studio.diversity import simulate
from studio.diversity.alarms import KINDS, TAIL, TEMPLATE, TOPIC
from studio.diversity.analysis import Documents, measure
from studio.diversity.reference import HOLDOUT, ReferenceModel
from studio.store import NewDocument, Store

N_REAL = 600
PAGE_WORDS = 400
LIBRARY_REAL = 0.45


def wcxb_pages(shared_dir: Path) -> list[str]:
    """Title + main text of every WCXB dev page with at least 80 words, cut to a page's size."""
    pages = []
    for path in sorted((shared_dir / "corpora" / "wcxb-dev" / "ground-truth").glob("*.json")):
        truth = json.loads(path.read_text("utf-8"))["ground_truth"]
        text = f"{truth.get('title') or ''}\n{truth.get('main_content') or ''}"
        if len(text.split()) >= 80:
            pages.append(simulate.trim(text, PAGE_WORDS))
    return pages


def split_pages(shared_dir: Path) -> tuple[list[str], list[str]]:
    return _split(wcxb_pages(shared_dir), N_REAL)


def split_library_pages() -> tuple[list[str], list[str]]:
    """Python's documentation pages (:func:`simulate.library_pages`): 45 % real, the rest the
    pool (a pool this large keeps the collapses as strong as the web pages' on 3.11 to 3.13)."""
    pages = list(simulate.library_pages())
    return _split(pages, int(LIBRARY_REAL * len(pages)))


def _split(pages: list[str], n_real: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(0).permutation(len(pages))
    return [pages[i] for i in order[:n_real]], [pages[i] for i in order[n_real:]]


# -- filling a project ----------------------------------------------------------------------------


def add_documents(store: Store, texts: list[str], kind: str, label: str) -> list[int]:
    import_id = store.begin_import()
    source = store.add_source(import_id, f"{label}://pages", None, None, kind)
    ids = []
    with store.transaction():
        for i, text in enumerate(texts):
            digest = hashlib.sha256(f"{label}/{i}/{text}".encode()).hexdigest()
            n = len(text.split())
            doc = NewDocument(
                source_id=source,
                content_hash=digest,
                kind=kind,
                raw=text,
                main_text=text,
                n_words=n,
                signal_words=n,
                title=text.splitlines()[0][:80] if text else None,
            )
            ids.append(store.insert_document(doc))
    store.finish_source(source, status="imported", imported=len(ids))
    store.finish_import(import_id, "done")
    return ids


def _fill_row(store: Store, table: str, values: dict) -> int:
    """Insert a row giving every NOT NULL column without a default a plain value, so the test
    does not depend on the generation tables' extra columns (a referenced row is made too)."""
    conn = store.conn
    refs = {r["from"]: r["table"] for r in conn.execute(f"PRAGMA foreign_key_list({table})")}
    row = dict(values)
    for col in conn.execute(f"PRAGMA table_info({table})"):
        name = col["name"]
        if name in row or col["pk"] or not col["notnull"] or col["dflt_value"] is not None:
            continue
        if name in refs:
            row[name] = _fill_row(store, refs[name], {})
        else:
            kind = (col["type"] or "").upper()
            row[name] = 0 if ("INT" in kind or "REAL" in kind) else "test"
    for name, target in refs.items():
        if name in row and row[name] is not None and target != "documents":
            exists = conn.execute(f"SELECT 1 FROM {target} WHERE rowid = ?", (row[name],))
            if exists.fetchone() is None:
                row[name] = _fill_row(store, target, {})
    cols = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
    return int(cur.lastrowid or 0)


def add_rounds(store: Store, rounds: list[list[str]], cell: str = "Science | lesson") -> None:
    """Accepted generated pages, round by round, as the generation loop stores them."""
    exists = store.conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'gen_pages'"
    ).fetchone()
    if exists is None:  # a studio without the generation tables yet: the contract's columns
        store.conn.execute(
            "CREATE TABLE gen_pages (id INTEGER PRIMARY KEY, batch_id INTEGER, round INTEGER, "
            "cell TEXT, teacher TEXT, status TEXT, reasons TEXT, doc_id INTEGER)"
        )
    for r, texts in enumerate(rounds, start=1):
        ids = add_documents(store, texts, "synthetic", f"round{r}")
        for i, doc_id in enumerate(ids):
            _fill_row(
                store,
                "gen_pages",
                {
                    "round": r,
                    "cell": f"{cell} {i % 3}",
                    "teacher": "test-teacher",
                    "status": "accepted",
                    "doc_id": doc_id,
                },
            )


# -- the scenarios ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["library", pytest.param("wcxb", marks=pytest.mark.shared)])
def pages(request) -> tuple[list[str], list[str]]:
    if request.param == "wcxb":
        return split_pages(request.getfixturevalue("shared_dir"))
    return split_library_pages()


@pytest.fixture(scope="module")
def embedder():
    from studio.classify.features import StaticFeatures

    return StaticFeatures()


@pytest.fixture(scope="module")
def real_side(pages, embedder):
    real, _pool = pages
    ids = np.arange(len(real))
    fitted = ids % HOLDOUT != 0
    model = ReferenceModel.fit([real[i] for i in np.flatnonzero(fitted)])
    return embedder.embed(real), fitted, model


def run_scenario(name: str, pages, real_side, embedder):
    real, pool = pages
    X_real, fitted, model = real_side
    rounds = simulate.rounds(pool, name, per_round=100, seed=3)
    texts = real + [t for r in rounds for t in r]
    n = len(texts)
    X = np.vstack([X_real, embedder.embed(texts[len(real) :])])
    ids = np.arange(n)
    docs = Documents(ids, texts, X, ids < len(real), np.r_[fitted, np.zeros(n - len(real), bool)])
    sets, start = [], len(real)
    for r, round_texts in enumerate(rounds, start=1):
        sets.append((f"round {r}", np.arange(start, start + len(round_texts)), float(r)))
        start += len(round_texts)
    return measure(docs, sets, np.arange(len(real)), model, by="round", embed=embedder.embed)


def kinds_by_round(report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s.name: set() for s in report.sets}
    for alarm in report.alarms:
        out[alarm.set].add(alarm.kind)
    return out


@pytest.mark.slow
def test_a_healthy_run_raises_no_alarm(pages, real_side, embedder) -> None:
    report = run_scenario("healthy", pages, real_side, embedder)
    assert report.alarms == [], [a.message for a in report.alarms]
    # every measure was computed for every round, beside the real band
    for s in report.sets:
        assert s.blocks == 1 and s.windows >= 1
        assert set(report.band) <= set(s.metrics) | {"compression_gzip"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "kind"),
    [("topic-loss", TOPIC), ("template-collapse", TEMPLATE), ("tail-loss", TAIL)],
)
def test_each_collapse_raises_its_own_alarm(scenario, kind, pages, real_side, embedder) -> None:
    report = run_scenario(scenario, pages, real_side, embedder)
    by_round = kinds_by_round(report)
    assert kind in by_round["round 5"], (scenario, by_round)
    # the collapse grows: the first round, closest to a healthy run, raises fewer kinds of alarm
    assert len(by_round["round 1"]) <= len(by_round["round 5"])
    alarm = next(a for a in report.alarms if a.set == "round 5" and a.kind == kind)
    assert alarm.documents, "an alarm shows the documents behind it"
    assert alarm.kind in KINDS and kind in alarm.message
    if kind == TEMPLATE:
        # the template measures see it; the tail measures read the pages' own words
        assert TAIL not in by_round["round 5"]
        assert "share the opening" in alarm.message
