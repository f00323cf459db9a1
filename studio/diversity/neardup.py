"""Near-duplicate rate within blocks of documents, from the studio's MinHash signatures.

The same banding as :class:`studio.dedup.NearDuplicateIndex` (14 bands x 8 rows), done for all
blocks at once with numpy: documents that share a band bucket in the same block are candidates,
and a candidate pair counts when its signatures estimate a Jaccard similarity of at least
``studio.dedup.THRESHOLD``.
"""

from __future__ import annotations

import numpy as np

GROUP_PAIRS = 32  # in a bigger bucket each document is compared with the bucket's first only


def near_duplicate_flags(signatures: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Per document: True when another document of its block is a near-duplicate of it."""
    from studio.dedup import BANDS, ROWS, THRESHOLD
    from studio.dedup.minhash import EMPTY

    n = len(signatures)
    flags = np.zeros(n, dtype=bool)
    if n < 2:
        return flags
    empty = (signatures == EMPTY).all(axis=1)
    pairs: set[tuple[int, int]] = set()
    weights = np.random.default_rng(7).integers(1, 1 << 62, ROWS, dtype=np.uint64) | np.uint64(1)
    for b in range(min(BANDS, signatures.shape[1] // ROWS)):
        band = signatures[:, b * ROWS : (b + 1) * ROWS].astype(np.uint64)
        with np.errstate(over="ignore"):
            key = (band * weights).sum(axis=1) ^ (blocks.astype(np.uint64) << np.uint64(40))
        key = np.where(empty, np.arange(n, dtype=np.uint64) ^ np.uint64(1 << 63), key)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for s, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            members = order[s : s + size].tolist()
            if size <= GROUP_PAIRS:
                pairs.update((a, c) for i, a in enumerate(members) for c in members[i + 1 :])
            else:
                pairs.update((members[0], c) for c in members[1:])
    if pairs:
        left, right = np.array(sorted(pairs)).T
        similar = (signatures[left] == signatures[right]).mean(axis=1) >= THRESHOLD
        flags[left[similar]] = True
        flags[right[similar]] = True
    return flags
