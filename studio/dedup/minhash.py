"""MinHash signatures of many texts at once: words -> word n-gram shingles -> ``num_perm`` minima.

A word is a run of letters, digits and other non-ASCII characters, lower-cased (``str.lower``);
ASCII punctuation, spacing and control characters separate words. So "Hello, World!" and
"hello world" are the same two words (and "naïve" one word). A shingle is ``ngram`` consecutive
words of one text; a text with fewer words is one shingle of all of them; a text with no word has
no shingle and the signature :data:`EMPTY` (never a near-duplicate of anything).

Speed: tokenising and hashing run as a few numpy passes over the bytes of a whole batch (no Python
object per word), and the minima are taken by rensa (Rust) from the flat array of shingle hashes.
``studio bench dedup`` measures it beside datasketch. Signatures are deterministic: the same
texts, parameters and seed give the same values in every process and on every machine.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence

import numpy as np

NUM_PERM = 112  # 14 bands x 8 rows, as FineWeb's deduplication
NGRAM = 5
SEED = 1
EMPTY = np.uint32(0xFFFFFFFF)  # every value of a signature without shingles
BATCH_BYTES = 8 << 20  # texts are hashed in batches of about this many bytes (memory stays flat)
VECTOR_WORD = 64  # longer words (rare: URLs, base64) are hashed one by one in Python
SHINGLES = "w1"  # this module's words and shingle hashes; change it when they change

_U64 = np.uint64
# bytes -> lower-case word byte, or space for a separator; NUL marks the end of a text
_FOLD = bytes(
    c
    if (48 <= c <= 57 or 97 <= c <= 122 or c >= 128 or c == 0)
    else (c + 32 if 65 <= c <= 90 else 32)
    for c in range(256)
)
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=_U64)
_WORD_MUL = _U64(0x9E3779B97F4A7C15)
# one odd multiplier per position in a shingle (up to 64 words a shingle)
_POS_MUL = np.random.default_rng(0x5EED).integers(1, 1 << 63, 64, dtype=_U64) | _U64(1)


def method() -> str:
    """Names the shingle hashing and the min-hash family: stored with every signature and result,
    so signatures made another way are never compared with these."""
    import rensa

    return f"minhash-{SHINGLES}-rensa{rensa.RMinHash.ALGORITHM_VERSION}"


def signatures(
    texts: Sequence[str], *, num_perm: int = NUM_PERM, ngram: int = NGRAM, seed: int = SEED
) -> np.ndarray:
    """The MinHash signature of each text: a ``(len(texts), num_perm)`` uint32 array."""
    if num_perm < 1 or ngram < 1 or ngram > len(_POS_MUL):
        raise ValueError(f"num_perm must be >= 1 and ngram in 1..{len(_POS_MUL)}")
    out = np.empty((len(texts), num_perm), dtype=np.uint32)
    start = 0
    for stop in batch_stops(texts):
        hashes, offsets = shingle_hashes(texts[start:stop], ngram=ngram)
        out[start:stop] = min_hashes(hashes, offsets, num_perm=num_perm, seed=seed)
        start = stop
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The Jaccard similarity two signatures estimate (0 when either text had no shingle)."""
    if is_empty(a) or is_empty(b):
        return 0.0
    return float(np.count_nonzero(a == b)) / a.shape[-1]


def is_empty(sig: np.ndarray) -> np.ndarray | bool:
    """Whether a signature (or each row of a signature matrix) stands for a text with no word."""
    return (sig == EMPTY).all(axis=-1)


def batch_stops(texts: Sequence[str]) -> list[int]:
    """End indices of consecutive batches of about :data:`BATCH_BYTES` characters."""
    stops, size = [], 0
    for i, t in enumerate(texts):
        size += len(t)
        if size >= BATCH_BYTES:
            stops.append(i + 1)
            size = 0
    if not stops or stops[-1] != len(texts):
        stops.append(len(texts))
    return stops


def shingle_hashes(texts: Sequence[str], *, ngram: int = NGRAM) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hashes of every text's shingles, flat, and ``offsets`` (``len(texts) + 1``):
    text ``i``'s hashes are ``hashes[offsets[i]:offsets[i + 1]]``."""
    data, n_texts = _encode(texts)
    starts, ends = _word_bounds(data)
    words = _word_hashes(data, starts, ends)
    # a text ends at each NUL: the words before the i-th NUL belong to text i
    before = np.searchsorted(starts, np.flatnonzero(data == 0)[:n_texts])
    counts = np.diff(before, prepend=0)
    return _shingles(words, counts, ngram)


def _encode(texts: Sequence[str]) -> tuple[np.ndarray, int]:
    """All texts as one byte array, folded: ``SP text0 NUL text1 NUL ... NUL SP``."""
    joined = "\0".join(texts)
    if joined.count("\0") != max(len(texts) - 1, 0):  # a text holds NULs: take them out
        joined = "\0".join(t.replace("\0", " ") for t in texts)
    raw = (" " + joined.lower() + "\0 ").encode("utf-8", "surrogatepass")
    return np.frombuffer(raw.translate(_FOLD), dtype=np.uint8), len(texts)


def _word_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_word = data > 32  # folded: separators are 32, ends of texts 0
    edges = np.flatnonzero(is_word[1:] != is_word[:-1]) + 1  # the data starts and ends with SP
    return edges[0::2], edges[1::2]


def _word_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each word's bytes, eight bytes at a time."""
    lengths = ends - starts
    padded = np.concatenate([data, np.zeros(8, np.uint8)])
    # the eight bytes from every byte offset, as one little-endian uint64 (unaligned reads)
    at = np.ndarray((len(data) + 1,), dtype="<u8", buffer=padded, strides=(1,))
    h = (at[starts] & _MASKS[np.minimum(lengths, 8)]) ^ (lengths.astype(_U64) * _WORD_MUL)
    h *= _WORD_MUL
    h ^= h >> _U64(29)
    todo = np.flatnonzero(lengths > 8)  # the rest of longer words, eight bytes at a time
    for offset in range(8, VECTOR_WORD, 8):
        if not len(todo):
            break
        chunk = at[starts[todo] + offset] & _MASKS[np.minimum(lengths[todo] - offset, 8)]
        mixed = (h[todo] ^ chunk) * _WORD_MUL
        h[todo] = mixed ^ (mixed >> _U64(29))
        todo = todo[lengths[todo] > offset + 8]
    for i in np.flatnonzero(lengths > VECTOR_WORD):
        digest = hashlib.blake2b(data[starts[i] : ends[i]].tobytes(), digest_size=8).digest()
        h[i] = np.frombuffer(digest, dtype="<u8")[0]
    return _mix(h)


def _shingles(words: np.ndarray, counts: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """Combine each run of ``ngram`` word hashes of one text into a shingle hash."""
    first = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=first[1:])
    per_text = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(per_text, out=offsets[1:])
    # full n-grams: positions whose last word is in the same text as the first
    n_full = max(len(words) - ngram + 1, 0)
    acc = np.zeros(n_full, _U64)
    for k in range(ngram):
        acc += words[k : k + n_full] * _POS_MUL[k]
    # a shingle starting in a text's last ngram - 1 words would run into the next text
    full = np.ones(n_full, bool)
    crossing = (first[1:, None] - np.arange(1, ngram)).ravel()
    full[crossing[(crossing >= 0) & (crossing < n_full)]] = False
    out = np.empty(int(offsets[-1]), _U64)
    long_texts = counts >= ngram
    out_full = np.ones(int(offsets[-1]), bool)
    short = np.flatnonzero(~long_texts & (counts > 0))
    out_full[offsets[short]] = False
    out[out_full] = acc[full]
    if len(short):  # a text shorter than one shingle: all its words are one shingle
        h = np.zeros(len(short), _U64)
        for k in range(ngram - 1):
            has = counts[short] > k
            h[has] += words[first[short][has] + k] * _POS_MUL[k]
        out[offsets[short]] = h
    return _mix(out), offsets


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: every output bit depends on every input bit."""
    x = x ^ (x >> _U64(30))
    x *= _U64(0xBF58476D1CE4E5B9)
    x ^= x >> _U64(27)
    x *= _U64(0x94D049BB133111EB)
    x ^= x >> _U64(31)
    return x


def min_hashes(
    hashes: np.ndarray, offsets: np.ndarray, *, num_perm: int = NUM_PERM, seed: int = SEED
) -> np.ndarray:
    """The ``num_perm`` minima of each text's shingle hashes (rensa's RMinHash family)."""
    import rensa

    n = len(offsets) - 1
    if n == 0:
        return np.empty((0, num_perm), np.uint32)
    if offsets[-1] == 0:
        return np.full((n, num_perm), EMPTY, np.uint32)
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        hashes, offsets.astype(_U64), num_perm, seed
    )
    # rensa hands rows back as Python lists: this copy costs about as much as the hashing
    rows = matrix.to_rows()
    out = np.fromiter(itertools.chain.from_iterable(rows), np.uint32, n * num_perm)
    out = out.reshape(n, num_perm)
    out[offsets[1:] == offsets[:-1]] = EMPTY  # a text with no shingle
    return out
