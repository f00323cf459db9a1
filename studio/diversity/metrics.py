"""The catalogue of diversity measures: what each is called, its family, which way is collapse.

No single measure catches every kind of collapse, so the studio computes one or more from each
family. ``collapse`` says which way a set moves when it narrows: ``-1`` when a lower value is
narrower (distinct-n, Vendi), ``+1`` when a higher value is (repetition, near-duplicates), and
``0`` for a measure that describes without taking a side (precision: how real the pages look).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    label: str
    family: str
    collapse: int
    help: str


FAMILIES = ("lexical", "semantic", "tails", "templates", "near-duplicates")

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("distinct_1", "distinct-1", "lexical", -1, "distinct words / words, per window"),
        Metric("distinct_2", "distinct-2", "lexical", -1, "distinct word pairs / pairs"),
        Metric("distinct_3", "distinct-3", "lexical", -1, "distinct word triples / triples"),
        Metric("entropy_2", "bigram entropy (bits)", "lexical", -1, "entropy of word pairs"),
        Metric(
            "compression_xz",
            "xz size / raw size",
            "lexical",
            -1,
            "xz sees repeats across the documents of a window; low means repetitive",
        ),
        Metric(
            "compression_gzip",
            "gzip size / raw size",
            "lexical",
            -1,
            "gzip's 32 KB window misses repeats between documents far apart: shown beside xz",
        ),
        Metric(
            "cross_doc_repetition",
            "cross-document repetition",
            "lexical",
            1,
            "share of word 5-grams that also occur in another document of the window",
        ),
        Metric(
            "vendi",
            "Vendi score",
            "semantic",
            -1,
            "effective number of distinct documents in a block (embeddings)",
        ),
        Metric(
            "mean_cosine_distance",
            "mean pairwise cosine distance",
            "semantic",
            -1,
            "average distance between two documents' embeddings",
        ),
        Metric(
            "nn_similarity",
            "nearest-neighbour similarity",
            "semantic",
            1,
            "mean cosine similarity of each document to its nearest other document",
        ),
        Metric(
            "cluster_entropy",
            "topic entropy",
            "semantic",
            -1,
            "how evenly the documents spread over the real pages' topics (1: evenly)",
        ),
        Metric(
            "topic_coverage",
            "topic coverage",
            "semantic",
            -1,
            "how much of the real pages' topic mix the documents match (1: the same mix)",
        ),
        Metric(
            "precision",
            "precision (realism)",
            "semantic",
            0,
            "share of documents inside the real pages' k-NN balls",
        ),
        Metric(
            "recall",
            "recall (coverage of real pages)",
            "semantic",
            -1,
            "share of real pages inside the documents' k-NN balls",
        ),
        Metric("ppl_p10", "perplexity p10", "tails", 0, "10th percentile, reference model"),
        Metric("ppl_p50", "perplexity median", "tails", 0, "median, reference model"),
        Metric(
            "ppl_p90",
            "perplexity p90",
            "tails",
            -1,
            "90th percentile: the surprising pages of a set",
        ),
        Metric(
            "ppl_spread",
            "perplexity spread",
            "tails",
            -1,
            "ln(p90 / p10) of the per-document perplexity",
        ),
        Metric(
            "rare_types",
            "rare word share",
            "tails",
            -1,
            "share of a document's distinct words that the real pages use at most 3 times",
        ),
        Metric(
            "repeated_openings",
            "repeated openings",
            "templates",
            1,
            "share of documents whose first sentence starts like another's in the block",
        ),
        Metric(
            "repeated_outlines",
            "repeated outlines",
            "templates",
            1,
            "share of documents whose outline (headings, lists, paragraphs) another shares",
        ),
        Metric(
            "near_duplicates",
            "near-duplicate rate",
            "near-duplicates",
            1,
            "share of documents with a MinHash near-duplicate in the same block",
        ),
    )
}
