"""Near-duplicate detection: MinHash LSH over word shingles, clusters and kept documents.

``minhash`` (signatures of many texts at once), ``index`` (the LSH index: add texts, query one),
``store`` (the project's cached signatures) and ``corpus`` (clusters over the whole project, the
kept document of each, the curator's overrides). Used against the corpus (``studio dedup``),
within a generation batch (:func:`find_clusters`) and as a check on each new synthetic page
(:meth:`NearDuplicateIndex.query`).

Example::

    from studio.dedup import NearDuplicateIndex, signatures

    index = NearDuplicateIndex.from_store(store)      # every document, under its id
    index.query(page)                                 # [(doc_id, estimated Jaccard), ...]
"""

from studio.dedup.corpus import find_clusters
from studio.dedup.index import BANDS, ROWS, THRESHOLD, NearDuplicateIndex, text_hash
from studio.dedup.minhash import NGRAM, NUM_PERM, SEED, jaccard, signatures

__all__ = [
    "BANDS",
    "NGRAM",
    "NUM_PERM",
    "ROWS",
    "SEED",
    "THRESHOLD",
    "NearDuplicateIndex",
    "find_clusters",
    "jaccard",
    "signatures",
    "text_hash",
]
