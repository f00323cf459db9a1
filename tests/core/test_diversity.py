"""The diversity measures one by one: known answers on small inputs, and hostile input."""

from __future__ import annotations

import numpy as np
import pytest

from studio.diversity import lexical, semantic, simulate
from studio.diversity.alarms import RULES, Rule, crossing
from studio.diversity.metrics import METRICS
from studio.diversity.neardup import near_duplicate_flags
from studio.diversity.reference import ReferenceModel, held_out
from studio.diversity.sets import SetError, group_sets, has_generation, real_ids
from studio.diversity.tokens import Tokens, Vocabulary, unique
from studio.store import DocumentQuery
from tests.core.test_diversity_scenarios import add_documents, add_rounds

SENTENCES = [
    "The heart pumps blood through arteries and veins to every organ of the body.",
    "Volcanoes form where molten rock rises through cracks in the crust of the earth.",
    "A fraction names a part of a whole, such as three quarters of a pizza.",
    "Plants turn light, water and carbon dioxide into sugar and oxygen every day.",
    "Binary search halves a sorted list again and again until it finds the item.",
    "Rivers carry sediment downstream and drop it where the water slows near the sea.",
]


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_tokens_subset_and_positions() -> None:
    tokens = Vocabulary().encode(["a b c", "", "d e", "f"])
    assert tokens.lengths().tolist() == [3, 0, 2, 1]
    sub = tokens.subset([2, 0])
    assert sub.ids.tolist() == [*tokens.doc(2).tolist(), *tokens.doc(0).tolist()]
    assert sub.offsets.tolist() == [0, 2, 5]
    assert tokens.subset([]).ids.size == 0


def test_vendi_counts_distinct_documents() -> None:
    same = np.tile(unit(np.ones((1, 8))), (10, 1))
    assert semantic.vendi(same) == pytest.approx(1.0)
    assert semantic.vendi(np.eye(8)) == pytest.approx(8.0)
    # the dual form (more documents than dimensions) gives the same answer
    X = unit(np.random.default_rng(0).standard_normal((300, 16)))
    K = X @ X.T / len(X)
    eig = np.clip(np.linalg.eigvalsh(K), 1e-12, None)
    eig /= eig.sum()
    assert semantic.vendi(X) == pytest.approx(np.exp(-(eig * np.log(eig)).sum()), rel=1e-6)


def test_mean_cosine_distance_matches_all_pairs() -> None:
    X = unit(np.random.default_rng(1).standard_normal((40, 12)))
    S = X @ X.T
    pairs = S[np.triu_indices(40, 1)]
    assert semantic.mean_cosine_distance(X) == pytest.approx(1 - pairs.mean())


def test_precision_and_recall_see_coverage() -> None:
    rng = np.random.default_rng(2)
    real = unit(rng.standard_normal((200, 8)))
    same = unit(rng.standard_normal((200, 8)))
    narrow = unit(real[:5].repeat(40, axis=0) + 0.01 * rng.standard_normal((200, 8)))
    p_same, r_same = semantic.precision_recall(real, same)
    p_narrow, r_narrow = semantic.precision_recall(real, narrow)
    assert p_same > 0.6 and r_same > 0.6
    assert p_narrow > 0.9 and r_narrow < 0.2  # real-looking, but covers a sliver


def test_topics_entropy_and_coverage() -> None:
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((4, 16)))
    X = unit(centres.repeat(50, axis=0) + 0.05 * rng.standard_normal((200, 16)))
    topics = semantic.Topics.fit(X, 4)
    labels = topics.assign(X)
    assert topics.entropy(labels) > 0.95 and topics.coverage(labels) == pytest.approx(1.0)
    one = topics.assign(X[:50])
    assert topics.entropy(one) < 0.05 and topics.coverage(one) == pytest.approx(0.25, abs=0.02)


def test_reference_model_is_a_distribution_and_round_trips(tmp_path) -> None:
    model = ReferenceModel.fit(SENTENCES * 3)
    V = model.size
    context = [model.vocab["the"], model.vocab["heart"]]
    total = sum(model.probabilities(np.array([*context, w]))[2] for w in range(V))
    assert total == pytest.approx(1.0, abs=1e-6)
    model.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl"))
    again = ReferenceModel.load(tmp_path)
    assert again is not None and again.words == model.words
    vocab = Vocabulary()
    tokens = vocab.encode([SENTENCES[0], "zebra quantum flux capacitor"])
    mapped = Tokens(model.map_ids(vocab.words())[tokens.ids], tokens.offsets)
    ppl = again.log_perplexity(mapped)
    assert np.isfinite(ppl).all() and ppl[1] > ppl[0]  # unseen words surprise the model
    assert held_out([4, 5, 8]).tolist() == [True, False, True]
    assert not list(tmp_path.glob("*.tmp"))
    arrays = tmp_path / "reference.npz"
    whole = arrays.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"PK\x03\x04" + whole[100:300]):
        arrays.write_bytes(damaged)  # cut short by a kill mid-save, or by a full disk
        assert ReferenceModel.load(tmp_path) is None
    arrays.write_bytes(whole)
    assert ReferenceModel.load(tmp_path) is not None
    for meta in ("{not json", "[1, 2]"):
        (tmp_path / "reference.json").write_text(meta, "utf-8")
        assert ReferenceModel.load(tmp_path) is None  # a damaged model is refitted, not trusted


def test_window_measures_see_repetition() -> None:
    vocab = Vocabulary()
    varied = vocab.encode(SENTENCES * 2)
    repeated = vocab.encode([SENTENCES[0]] * 12)
    words = np.asarray(vocab.words(), dtype=object)
    a = lexical.window_measures(varied, 100, words)
    b = lexical.window_measures(repeated, 100, words)
    assert a["distinct_2"][0] > b["distinct_2"][0]
    assert b["cross_doc_repetition"][0] > 0.9 > a["cross_doc_repetition"][0]
    assert b["compression_xz"][0] < a["compression_xz"][0]
    assert lexical.window_measures(varied, 10_000, words) == {}  # fewer words than a window


def test_openings_outlines_and_shared_spans() -> None:
    template = "In this lesson, we will explore {} and see why it matters in everyday life."
    pages = [
        f"# {t}\n\n{template.format(t)}\n\n## Summary\n\n{s}"
        for t, s in zip(["volcanoes", "fractions", "rivers", "plants"], SENTENCES, strict=False)
    ]
    openings = [lexical.opening(p) for p in pages]
    assert openings[0] == "in this lesson we will"
    assert lexical.repeated_share(openings, np.zeros(4, dtype=np.int64))[0] == 1.0
    assert lexical.outline(pages[0]) == "# volcanoes | P | # summary | P"
    assert lexical.outline("just one paragraph of text here.") == ""
    tokens = Vocabulary().encode(pages)
    shared = lexical.shared_spans(tokens)
    own = tokens.doc(0)[~shared[: tokens.offsets[1]]]
    assert 0 < len(own) < len(tokens.doc(0))  # the template went, the page's words stayed


def test_near_duplicates_within_blocks_only() -> None:
    from studio.dedup import signatures

    texts = [SENTENCES[0] * 5, SENTENCES[0] * 5 + " one more word", SENTENCES[1] * 5, ""]
    sigs = signatures(texts)
    flags = near_duplicate_flags(sigs, np.zeros(4, dtype=np.int64))
    assert flags.tolist() == [True, True, False, False]
    apart = near_duplicate_flags(sigs, np.array([0, 1, 0, 1]))
    assert not apart.any()


def test_crossing_needs_the_band_and_the_change() -> None:
    band = {"p5": 0.8, "p50": 0.9, "p95": 0.95}
    assert not crossing(Rule("cluster_entropy", "topic loss", 0.10, True), 0.85, band)
    rule = Rule("cluster_entropy", "topic loss", 0.10, True)
    assert crossing(rule, 0.70, band)
    assert not crossing(rule, 0.79, band | {"p5": 0.85, "p50": 0.86})  # beyond, by under 10 %
    assert not crossing(rule, float("nan"), band)
    share = Rule("repeated_openings", "template collapse", 0.15, False)
    assert not crossing(share, 0.05, {"p5": 0.0, "p50": 0.0, "p95": 0.0})
    assert crossing(share, 0.30, {"p5": 0.0, "p50": 0.0, "p95": 0.0})
    assert {r.metric for r in RULES} <= set(METRICS)


def test_sets_with_and_without_generated_pages(store) -> None:
    add_documents(store, SENTENCES, "text", "web")
    assert real_ids(store) and not has_generation(store)
    with pytest.raises(SetError, match="no accepted generated pages"):
        group_sets(store, "round")
    assert [s.name for s in group_sets(store, "kind")] == ["text"]
    with pytest.raises(SetError, match="no classifier version"):
        group_sets(store, "band")
    with pytest.raises(SetError, match="unknown grouping"):
        group_sets(store, "colour")
    add_rounds(store, [SENTENCES[:3], SENTENCES[3:]])
    rounds = group_sets(store, "round")
    assert [(s.name, s.x, len(s.doc_ids)) for s in rounds] == [
        ("round 1", 1.0, 3),
        ("round 2", 2.0, 3),
    ]
    assert len(real_ids(store)) == len(SENTENCES)  # synthetic pages are not real pages
    cells = group_sets(store, "cell")
    assert sum(len(s.doc_ids) for s in cells) == 6
    # a page rejected later leaves its round
    store.conn.execute("UPDATE gen_pages SET status = 'rejected' WHERE round = 2")
    assert [s.name for s in group_sets(store, "round")] == ["round 1"]
    found = group_sets(store, "query", query=DocumentQuery(search="volcanoes"))
    assert len(found) == 1 and len(found[0].doc_ids) == 2  # the real page and round 1's copy


def test_a_reference_model_that_cannot_be_saved_still_serves(tmp_path, caplog) -> None:
    from studio.diversity.project import REFERENCE_DIR, reference_model
    from studio.project import Project

    project = Project.open(tmp_path / "p")
    (project.dir("models") / REFERENCE_DIR).write_text("in the way")  # as a read-only folder is
    with project.store() as store:
        add_documents(store, SENTENCES, "text", "web")
        model = reference_model(project, store)
    assert model.size > len(SENTENCES) and "was not saved" in caplog.text
    assert (project.dir("models") / REFERENCE_DIR).read_text() == "in the way"


# -- the fast paths give numpy's answers exactly ---------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 7, 5_000])
def test_unique_is_numpys_unique(n: int) -> None:
    rng = np.random.default_rng(n)
    for keys in (rng.integers(0, max(2, n // 3), n).astype(np.uint64), rng.integers(-5, 5, n)):
        want = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        got = unique(keys, index=True, inverse=True, counts=True)
        for a, b in zip(want, got, strict=True):
            assert a.dtype.kind == b.dtype.kind and np.array_equal(a, b)
        assert np.array_equal(unique(keys)[0], np.unique(keys))


def test_topic_sums_add_in_the_order_add_at_does() -> None:
    from studio.diversity.semantic import _sums_by_label

    rng = np.random.default_rng(4)
    X = rng.standard_normal((3_000, 16))
    labels = rng.integers(0, 5, 3_000)  # label 5 of 6 stays empty
    want = np.zeros((6, 16))
    np.add.at(want, labels, X)
    assert np.array_equal(
        _sums_by_label(X.T.copy(), labels, 6), want
    )  # bit for bit, not approximately


def test_reference_lookups_align_with_every_position() -> None:
    """Many documents scored at once give each word the probability it has on its own."""
    from studio.diversity.reference import _with_markers

    model = ReferenceModel.fit(SENTENCES * 2)
    vocab = Vocabulary()
    tokens = vocab.encode([*SENTENCES[:3], "unheard words here", "", SENTENCES[4]])
    mapped = Tokens(model.map_ids(vocab.words())[tokens.ids], tokens.offsets)
    ids = _with_markers(mapped)
    together = model.probabilities(ids)
    alone = [model.probabilities(ids[i - 2 : i + 1])[2] for i in range(2, len(ids))]
    assert together[2:].tolist() == pytest.approx(alone, rel=1e-12)
    assert model.probabilities(np.zeros(0, dtype=np.int64)).size == 0


def test_outline_reads_only_the_words_it_needs() -> None:
    many = " ".join(["word"] * 5_000)  # a long paragraph without a full stop is a paragraph
    assert lexical.outline(f"Short title\n{many}\n## Next part\nA line that ends well.") == (
        "# short title | P | # next part | P"
    )
    assert lexical.opening(f"# Title\nfew words\n{many}") == "word word word word word"


# -- real pages wherever Python runs -------------------------------------------------------------


@pytest.mark.slow  # the first call parses the standard library's sources (about 5 s)
def test_library_pages_are_prose_pages() -> None:
    pages = simulate.library_pages()
    assert len(pages) >= 500 and len(set(pages)) > 0.95 * len(pages)
    for page in pages[::25]:
        title, *paragraphs = page.splitlines()
        assert title and paragraphs and ">>>" not in page
        assert 100 <= sum(len(p.split()) for p in paragraphs) < 600
    assert any(p.startswith("Python reference:") for p in pages)  # the language reference
    assert any(p.startswith("email.") for p in pages)  # and the library's docstrings
    assert simulate._prose("x = compute(a, b)\nreturn x[0] + 1 if x else None") == ""
    assert simulate._prose(">>> print(1)\n1") == ""
    assert simulate._prose("Return the sum of the two numbers,\nrounded down.") == (
        "Return the sum of the two numbers, rounded down."
    )
