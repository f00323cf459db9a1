"""Near-duplicates: MinHash signatures checked against a plain-Python reading of their definition
and against rensa itself, the LSH index, and clusters over a real project (SQLite file)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from studio.bench.dedup import mutated_pairs, synthetic_texts
from studio.dedup import NearDuplicateIndex, jaccard, signatures, text_hash
from studio.dedup import minhash as mh
from studio.dedup.corpus import (
    cluster_members,
    clusters,
    dedup_corpus,
    find_clusters,
    keep_document,
    summary,
)
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import NewDocument, Store

M64 = (1 << 64) - 1


# -- a plain-Python reading of the documented hashing ----------------------------------------------


def ref_words(text: str) -> list[bytes]:
    """Words as minhash.py documents them: lower-cased, runs of [0-9a-z] or bytes >= 0x80."""
    data = text.replace("\0", " ").lower().encode("utf-8", "surrogatepass")
    out, cur = [], bytearray()
    for c in data:
        if 48 <= c <= 57 or 97 <= c <= 122 or c >= 128 or 65 <= c <= 90:
            cur.append(c + 32 if 65 <= c <= 90 else c)
        elif cur:
            out.append(bytes(cur))
            cur = bytearray()
    if cur:
        out.append(bytes(cur))
    return out


def ref_mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def ref_word_hash(w: bytes) -> int:
    mul = int(mh._WORD_MUL)
    if len(w) > mh.VECTOR_WORD:
        return ref_mix(int.from_bytes(hashlib.blake2b(w, digest_size=8).digest(), "little"))
    h = (len(w) * mul) & M64
    for k in range(0, len(w), 8):
        chunk = int.from_bytes(w[k : k + 8], "little")
        h = ((h ^ chunk) * mul) & M64
        h ^= h >> 29
    return ref_mix(h)


def ref_shingles(text: str, n: int = 5) -> list[int]:
    hs = [ref_word_hash(w) for w in ref_words(text)]
    pos = [int(x) for x in mh._POS_MUL]
    if not hs:
        return []
    if len(hs) < n:
        return [ref_mix(sum(h * pos[k] for k, h in enumerate(hs)) & M64)]
    return [
        ref_mix(sum(hs[i + k] * pos[k] for k in range(n)) & M64) for i in range(len(hs) - n + 1)
    ]


HOSTILE = [
    "The quick brown fox jumps over the lazy dog, again and again.",
    "Hello, World! HELLO world? hello---WORLD.",
    "",
    "   \n\t  ",
    "!!! ??? ... ---",
    "one",
    "two words",
    "exactly five words in here",
    "Grüße aus Köln: ÄÖÜ äöü ß — ΕΛΛΗΝΙΚΆ ελληνικά, 中文文本没有空格 🙂🙂 emoji",
    "nul\0inside\0the text and more words after it",
    "a lone surrogate \ud800 in the middle of several words",
    "x" * 7 + " " + "y" * 8 + " " + "z" * 9 + " " + "w" * 16 + " " + "v" * 17 + " end of it",
    "a" * 63 + " " + "b" * 64 + " " + "c" * 65 + " " + "d" * 200 + " tail words here too",
    "under_scores and CamelCase and digits 12345 and 3.14159 and v2",
]


def test_shingle_hashes_follow_their_definition_on_hostile_texts() -> None:
    hashes, offsets = mh.shingle_hashes(HOSTILE)
    assert len(offsets) == len(HOSTILE) + 1
    for i, text in enumerate(HOSTILE):
        got = hashes[offsets[i] : offsets[i + 1]].tolist()
        assert got == ref_shingles(text), text


def test_signatures_are_rensa_minhashes_of_the_shingles() -> None:
    import rensa

    texts = [t for t in HOSTILE if ref_words(t)]
    ref = rensa.RMinHash.digest_matrix_from_token_hash_sets(
        [ref_shingles(t) for t in texts], 112, 7
    )
    assert np.array_equal(signatures(texts, seed=7), np.array(ref.to_rows(), dtype=np.uint32))


def test_texts_without_words_have_the_empty_signature_and_match_nothing() -> None:
    sigs = signatures(["", "  ", "?!", "real words here"])
    assert mh.is_empty(sigs).tolist() == [True, True, True, False]
    assert jaccard(sigs[0], sigs[1]) == 0.0
    assert signatures([]).shape == (0, 112)


def test_case_punctuation_and_spacing_do_not_matter() -> None:
    a, b, c = signatures(["Hello, World! How are you today?", "hello world how ARE you today", "x"])
    assert jaccard(a, b) == 1.0 and jaccard(a, c) == 0.0


def test_signatures_do_not_depend_on_the_process_or_the_batching(monkeypatch) -> None:
    texts = synthetic_texts(300, 120)
    here = signatures(texts, num_perm=64, ngram=3, seed=5)
    code = (
        "import sys, numpy as np\n"
        "from studio.bench.dedup import synthetic_texts\n"
        "from studio.dedup import signatures\n"
        "sys.stdout.write(signatures(synthetic_texts(300, 120), num_perm=64, ngram=3, seed=5)"
        ".tobytes().hex())"
    )
    env_seed = {"PYTHONHASHSEED": "12345"}
    import os

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, **env_seed},
    )  # fmt: skip
    assert bytes.fromhex(out.stdout) == here.tobytes()
    monkeypatch.setattr(mh, "BATCH_BYTES", 5000)  # many small batches
    assert np.array_equal(signatures(texts, num_perm=64, ngram=3, seed=5), here)


def test_estimated_jaccard_is_close_to_the_exact_one() -> None:
    pairs = mutated_pairs(synthetic_texts(300, 300, seed=3), 300)
    sigs = signatures([t for p in pairs for t in p])
    errors = []
    for k, (a, b) in enumerate(pairs):
        sa, sb = set(ref_shingles(a)), set(ref_shingles(b))
        errors.append(abs(jaccard(sigs[2 * k], sigs[2 * k + 1]) - len(sa & sb) / len(sa | sb)))
    # 112 hashes: the standard error of one estimate is at most sqrt(0.25 / 112) = 0.047
    assert np.mean(errors) < 0.04 and max(errors) < 0.2


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        signatures(["a"], num_perm=0)
    with pytest.raises(ValueError):
        NearDuplicateIndex(bands=0)
    with pytest.raises(ValueError):
        NearDuplicateIndex(threshold=1.5)
    with pytest.raises(ValueError):
        NearDuplicateIndex().add_many([1, 2], ["only one text"])


# -- the index -------------------------------------------------------------------------------------


def edit(text: str, share: float, seed: int = 0) -> str:
    """The text with a share of its words replaced by new ones."""
    rng = np.random.default_rng(seed)
    ws = text.split()
    for i in rng.choice(len(ws), int(share * len(ws)), replace=False).tolist():
        ws[i] = f"new{rng.integers(1 << 30)}"
    return " ".join(ws)


@pytest.fixture(scope="module")
def pages() -> list[str]:
    return synthetic_texts(400, 250, seed=11)


def test_query_finds_near_and_exact_duplicates_and_nothing_else(pages: list[str]) -> None:
    index = NearDuplicateIndex()
    index.add_many(list(range(100, 100 + len(pages))), pages)
    assert index.query(edit(pages[3], 0.01)) and index.query(edit(pages[3], 0.01))[0][0] == 103
    [(key, sim)] = index.query("  \n".join(pages[7].split(" ")))  # spacing changed only
    assert (key, sim) == (107, 1.0)
    assert index.query(synthetic_texts(1, 250, seed=99)[0]) == []
    assert index.query("") == [] and index.query("short") == []
    found = index.query_many([pages[0], edit(pages[0], 0.5)])
    assert found[0] == [(100, 1.0)] and found[1] == []  # half the words changed: J far below


def test_lsh_recall_and_precision_follow_the_bands(pages: list[str]) -> None:
    index = NearDuplicateIndex()
    index.add_many(list(range(len(pages))), pages)
    close = [edit(p, 0.015, seed=i) for i, p in enumerate(pages[:200])]  # J about 0.86-0.9
    far = [edit(p, 0.2, seed=i) for i, p in enumerate(pages[200:])]  # J about 0.3
    hits_close = [i in dict(r) for i, r in enumerate(index.query_many(close))]
    hits_far = [r for r in index.query_many(far) if r]
    assert sum(hits_close) >= 0.95 * len(close)  # 14 x 8 bands find 95 % of pairs at J = 0.85
    assert hits_far == []


def test_adding_one_by_one_and_in_bulk_answer_the_same(pages: list[str]) -> None:
    bulk, single = NearDuplicateIndex(), NearDuplicateIndex()
    bulk.add_many(list(range(300)), pages[:300])
    for i, p in enumerate(pages[:300]):
        single.add(i, p)
    probes = [edit(p, 0.01, seed=5) for p in pages[:40]] + pages[300:320]
    assert bulk.query_many(probes) == single.query_many(probes)
    single.add_many(list(range(300, 2000)), synthetic_texts(1700, 50, seed=4))  # folds in
    assert single.query(pages[10])[0] == (10, 1.0)


def test_find_clusters_groups_a_generation_batch(pages: list[str]) -> None:
    batch = [pages[0], edit(pages[0], 0.01, 1), pages[1], edit(pages[0], 0.01, 2), pages[2],
             pages[1] + "  ", ""]  # fmt: skip
    assert find_clusters(batch) == [[0, 1, 3], [2, 5]]
    assert find_clusters([]) == [] and find_clusters(["", ""]) == []


# -- a project -------------------------------------------------------------------------------------


def add_docs(store: Store, texts: list[str], *, words: list[int] | None = None) -> list[int]:
    src = store.add_source(store.begin_import(), "/corpus/pages.jsonl", 1, 1.0, "jsonl")
    ids = []
    for i, text in enumerate(texts):
        n = len(text.split())
        w = words[i] if words else n
        doc = NewDocument(src, f"h{i}-{hash(text)}", "text", text, text, n, w, url=f"u{i}")
        doc_id = store.insert_document(doc)
        assert doc_id is not None
        ids.append(doc_id)
    return ids


def corpus(pages: list[str]) -> list[str]:
    """Documents 1-3: one page in three versions; 4 and 5: another, spacing apart; then 15
    unrelated pages."""
    a, b = pages[50], pages[51]
    return [a, edit(a, 0.01, 1), edit(a, 0.01, 2), b, b.replace(" ", "\n"), *pages[60:75]]


def test_dedup_keeps_one_per_cluster_by_the_rule_and_is_idempotent(
    store: Store, pages: list[str]
) -> None:
    ids = add_docs(store, corpus(pages), words=[100, 300, 200, 50, 50, *[10] * 15])
    report = dedup_corpus(store)
    assert (report.documents, report.clusters, report.exact_clusters, report.removed) == (
        20, 2, 1, 3,
    )  # fmt: skip
    found = clusters(store)
    # no classifier yet: the most words wins (doc 2: 300), then the earliest (doc 4 over 5)
    assert [(c["id"], c["size"], c["kept_doc_id"], c["method"]) for c in found] == [
        (ids[0], 3, ids[1], "minhash"),
        (ids[3], 2, ids[3], "exact"),
    ]
    members = cluster_members(store, ids[0])
    assert [m["doc_id"] for m in members][0] == ids[1] and members[0]["reason"] is None
    assert all(f"of document {ids[1]}" in m["reason"] for m in members[1:])
    assert all(0.7 <= m["similarity"] < 1.0 for m in members[1:])
    [exact] = [m for m in cluster_members(store, ids[3]) if not m["kept"]]
    assert exact["reason"] == f"exact duplicate of document {ids[3]}"
    before = store.conn.execute("SELECT * FROM dedup_marks ORDER BY doc_id").fetchall()
    again = dedup_corpus(store)
    assert again.to_dict() == report.to_dict()
    assert store.conn.execute("SELECT * FROM dedup_marks ORDER BY doc_id").fetchall() == before
    assert summary(store)["removed"] == 3
    assert json.loads(store.conn.execute("SELECT params FROM dedup_runs").fetchone()[0])[
        "bands"] == 14  # fmt: skip


def test_the_highest_classifier_score_is_kept_first(store: Store, pages: list[str]) -> None:
    ids = add_docs(store, corpus(pages))
    store.conn.execute(
        "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold, "
        "metrics, label_hash, n_labels, path) VALUES ('v1', 'now', 'hand', 'ridge', 3, '{}', "
        "'h', 0, 'x')"
    )
    store.add_scores("v1", [(d, 1.0, False) for d in ids])
    store.add_scores("v1", [(ids[2], 4.5, True)])
    assert dedup_corpus(store).notes == ()  # every page scored
    assert clusters(store)[0]["kept_doc_id"] == ids[2]


def test_keepers_chosen_on_part_of_the_scores_are_said_to_be(store: Store, pages: list[str]):
    """A scoring run stopped part-way: a page it never scored loses its cluster to one it did,
    whatever its score would have been."""
    ids = add_docs(store, corpus(pages))
    store.conn.execute(
        "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold, "
        "metrics, label_hash, n_labels, path) VALUES ('v1', 'now', 'hand', 'ridge', 3, '{}', "
        "'h', 0, 'x')"
    )
    store.add_scores("v1", [(d, 1.0, False) for d in ids[:5]])
    [note] = dedup_corpus(store).notes
    assert note.startswith(f"classifier v1 has scored 5 of {len(ids):,} documents")
    assert "run `studio score`, then dedup again" in note


def test_a_curator_overrides_the_kept_document_and_reruns_remember(
    store: Store, pages: list[str]
) -> None:
    ids = add_docs(store, corpus(pages))
    dedup_corpus(store)
    keep_document(store, ids[2])
    [c] = [c for c in clusters(store) if c["id"] == ids[0]]
    assert (c["kept_doc_id"], c["kept_by"]) == (ids[2], "curator")
    marks = {m["doc_id"]: m for m in cluster_members(store, ids[0])}
    assert marks[ids[2]]["reason"] is None
    assert marks[ids[0]]["reason"].endswith(f"of document {ids[2]}, kept by a curator")
    dedup_corpus(store)
    assert [c["kept_doc_id"] for c in clusters(store) if c["id"] == ids[0]] == [ids[2]]
    keep_document(store, ids[0])  # changing one's mind: only one choice per cluster
    dedup_corpus(store)
    assert [c["kept_doc_id"] for c in clusters(store) if c["id"] == ids[0]] == [ids[0]]
    with pytest.raises(LookupError):
        keep_document(store, ids[10])  # in no cluster


def test_signatures_are_cached_and_redone_after_a_correction(
    project: Project, store: Store, pages: list[str]
) -> None:
    ids = add_docs(store, corpus(pages))
    first = NearDuplicateIndex.from_store(store)
    cached = store.conn.execute("SELECT count(*) FROM dedup_signatures").fetchone()[0]
    assert cached == len(ids) and len(first) == len(ids) and first.keys == ids
    assert first.query(pages[50])[0] == (ids[0], 1.0)
    # a curator's block correction replaces a main text: its signature is made again
    store.correct_block(
        ids[0], locator="p1", text="x", label="boilerplate", model_label="signal",
        features=None, annotator="ana", main_text=pages[99], signal_words=250,
    )  # fmt: skip
    second = NearDuplicateIndex.from_store(store)
    assert second.query(pages[99])[0] == (ids[0], 1.0)
    assert all(k != ids[0] for k, _ in second.query(pages[50]))
    # a read-only connection computes what is missing without writing
    add_docs(store, [pages[200]])
    with project.store(readonly=True) as ro:
        third = NearDuplicateIndex.from_store(ro)
    assert third.query(pages[200])[0][1] == 1.0
    assert store.conn.execute("SELECT count(*) FROM dedup_signatures").fetchone()[0] == cached


def test_a_cancelled_run_leaves_the_earlier_marks(store: Store, pages: list[str]) -> None:
    add_docs(store, corpus(pages))
    dedup_corpus(store)
    before = store.conn.execute("SELECT * FROM dedup_marks ORDER BY doc_id").fetchall()
    add_docs(store, [pages[50] + " more words at the end"])
    task = Task()
    task.cancel()
    with pytest.raises(Cancelled):
        dedup_corpus(store, threshold=0.5, task=task)
    assert store.conn.execute("SELECT * FROM dedup_marks ORDER BY doc_id").fetchall() == before


def test_hostile_documents_go_through(store: Store) -> None:
    huge = " ".join(f"w{i % 5000}" for i in range(400_000))  # ~2.7 MB, one document
    texts = ["", "\0\0\0", "\ufffd replaced \ufffd bytes", "ok " * 3, huge, huge + " end",
             "a" * 100_000]  # fmt: skip
    add_docs(store, texts)
    report = dedup_corpus(store)
    assert report.documents == len(texts)
    assert [c["size"] for c in clusters(store)] == [2]  # the two huge ones, nothing else
    assert text_hash("a  b\n") == text_hash("a b")


def test_an_empty_project_has_nothing_to_mark(store: Store) -> None:
    report = dedup_corpus(store)
    assert (report.documents, report.clusters, report.removed) == (0, 0, 0)
    assert clusters(store) == [] and summary(store)["last_run"]["documents"] == 0
    assert NearDuplicateIndex.from_store(store).query("any text at all here") == []
