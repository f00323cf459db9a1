"""Block table → one feature matrix per page (numpy), plus the readable subset shown to curators.

Three kinds of evidence, all normalised per page so that a long page and a short one read alike:

- the block's own text: words, link density, punctuation, stopwords, capitals, digits;
- where it sits: tag and class/id hints of the element and of its ancestors, depth, position in
  the page, the share of the page's text held by its parent/grandparent containers, whether it
  lies inside the container that holds most of the page's non-link text;
- its neighbours: the blocks before and after it, a window of blocks around it, and how many
  blocks on the page share its structural signature (menus and listings repeat themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from studio.segment.dom import BlockTable, depth_levels
from studio.segment.hints import HINT_WORDS, TAG_HINTS

# the commonest function words of the languages most pages are in: prose has many, menus few
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been
    being it its this that these those he she they we you i his her their our your not
    no so than then there here what which who whom when where why how all any both each
    more most other some such only own same too very can will just do does did has have
    had would should could may might must also into over after before about between
    through during under again further once der die das und ist nicht ein eine zu den
    mit von sich des auf für im dem auch es an als le la les et des un une est pas que
    qui dans pour sur au du ce il elle nous vous sont avec el los las y en que del por
    una con para es lo como más pero sus al se su il di che è per non una sono della con
    gli o os as um uma não com para se na do da em de het een en van ik je dat niet op
    te zijn""".split()  # noqa: SIM905
)
_NEIGHBOUR_WINDOW = 3

# own and ancestor hint bits, in a fixed order
_HINT_NAMES = [name for name, _, _ in HINT_WORDS]
_TAG_NAMES = list(TAG_HINTS)
_BIT_INDEX = np.array(list(range(len(_HINT_NAMES))) + [32 + i for i in range(len(_TAG_NAMES))])

TEXT_FEATURES = [
    "log_words", "log_chars", "link_density", "avg_word_len", "punct_per_word",
    "sentences_per_word", "ends_terminal", "stopword_ratio", "capitalised_ratio", "digit_ratio",
    "comma_per_word", "copyright", "separators_per_word", "starts_upper", "links_per_word",
    "is_div", "is_td", "heading_level", "duplicate_text",
]  # fmt: skip
PAGE_FEATURES = [
    "depth", "rel_depth", "block_position", "char_position", "page_share", "log_page_words",
    "log_blocks", "size_rank", "chars_vs_max", "after_h1", "in_main50", "in_main80",
    "main50_depth_gap", "signature_freq", "signature_share", "signature_link_density",
    "same_tag_siblings",
]  # fmt: skip
CONTEXT_FEATURES = (
    [
        f"{who}_{what}"
        for who in ("parent", "grandparent", "ancestor3")
        for what in ("share", "link_density", "log_blocks", "own_share")
    ]
    + [
        f"{side}_{what}"
        for side in ("prev", "next")
        for what in ("log_words", "link_density", "same_parent", "stopword_ratio")
    ]
    + ["window_link_density", "window_log_words", "window_stopword_ratio", "window_terminal"]
)
# prose: blocks that read like running text; the zone from the first to the last of them is
# where main content usually lies, and containers rich in prose usually hold it
ZONE_FEATURES = [
    f"{who}_{what}"
    for who in ("parent", "grandparent", "ancestor3")
    for what in ("prose_share", "stopword_ratio")
] + [
    f"ancestor{k}_{what}" for k in (4, 5, 6) for what in ("share", "link_density", "prose_share")
] + [
    "since_first_prose", "until_last_prose", "in_prose_zone", "prose_blocks_before",
    "prose_blocks_after", "page_link_density", "page_prose_share", "page_has_article",
    "main50_share", "main50_prose_share",
]  # fmt: skip
HINT_FEATURES = [f"own_{n}" for n in _HINT_NAMES + ["tag_" + t for t in _TAG_NAMES]] + [
    f"in_{n}" for n in _HINT_NAMES + ["tag_" + t for t in _TAG_NAMES]
]
FEATURE_NAMES: list[str] = (
    TEXT_FEATURES + PAGE_FEATURES + CONTEXT_FEATURES + ZONE_FEATURES + HINT_FEATURES
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# shown to the curator; everything else is still in the model
READABLE = [
    ("words", None), ("link_density", "link_density"), ("stopword_ratio", "stopword_ratio"),
    ("punct_per_word", "punct_per_word"), ("avg_word_len", "avg_word_len"),
    ("block_position", "block_position"), ("page_share", "page_share"), ("depth", "depth"),
    ("parent_share", "parent_share"), ("parent_link_density", "parent_link_density"),
    ("in_main_container", "in_main50"), ("signature_freq", "signature_freq"),
    ("window_link_density", "window_link_density"),
]  # fmt: skip


@dataclass(slots=True)
class PageFeatures:
    """The blocks of one page: their node ids in the table, texts and feature matrix."""

    nodes: np.ndarray  # node index of each block
    texts: list[str]
    words: np.ndarray  # word count per block
    chars: np.ndarray  # characters per block
    X: np.ndarray  # float32, (blocks, features)


def block_texts(t: BlockTable) -> tuple[list[int], list[str]]:
    """Nodes with text and their whitespace-normalised text."""
    nodes, texts = [], []
    raws = t.texts
    for i in np.flatnonzero(t.raw_chars).tolist():
        text = " ".join(raws[i].split())
        if text:
            nodes.append(i)
            texts.append(text)
    return nodes, texts


def page_features(t: BlockTable) -> PageFeatures | None:
    nodes_l, texts = block_texts(t)
    if not nodes_l:
        return None
    nodes = np.asarray(nodes_l, dtype=np.int64)
    text_X, words, stop = _text_features(texts)
    n_nodes = len(t.tags)
    n = len(nodes)
    parent = t.parent
    depth = t.depth.astype(np.float64)
    raw = t.raw_chars[nodes]
    link = np.minimum(t.link_chars[nodes], raw)
    chars = np.array([len(s) for s in texts], dtype=np.float64)
    link_density = link / np.maximum(raw, 1.0)
    text_X[:, TEXT_FEATURES.index("link_density")] = link_density
    text_X[:, TEXT_FEATURES.index("links_per_word")] = t.n_links[nodes] / np.maximum(words, 1)
    tags = [t.tags[i] for i in nodes_l]
    text_X[:, TEXT_FEATURES.index("is_div")] = [tg == "div" for tg in tags]
    text_X[:, TEXT_FEATURES.index("is_td")] = [tg in ("td", "th") for tg in tags]
    text_X[:, TEXT_FEATURES.index("heading_level")] = [
        int(tg[1]) if len(tg) == 2 and tg[0] == "h" and tg[1].isdigit() else 0 for tg in tags
    ]
    counts: dict[str, int] = {}
    for s in texts:
        counts[s] = counts.get(s, 0) + 1
    text_X[:, TEXT_FEATURES.index("duplicate_text")] = [counts[s] - 1 for s in texts]

    # subtree sums over the block-node tree, deepest level first
    levels = depth_levels(t.depth)
    prose = (words >= 12) & (stop >= 0.15) & (link_density < 0.3)
    node_vals = np.zeros((n_nodes, 6))
    node_vals[nodes, 0] = chars
    node_vals[nodes, 1] = link_density * chars
    node_vals[nodes, 2] = 1.0
    node_vals[:, 3] = 1.0
    node_vals[nodes, 4] = prose * chars
    node_vals[nodes, 5] = stop * chars
    sub = subtree_sums(node_vals, parent, levels)
    sub_chars, sub_link, sub_blocks, size = sub[:, 0], sub[:, 1], sub[:, 2], sub[:, 3]
    sub_prose, sub_stop = sub[:, 4], sub[:, 5]
    size = size.astype(np.int64)
    par = parent.tolist()
    total_chars = max(chars.sum(), 1.0)
    total_words = max(words.sum(), 1.0)

    page = np.zeros((n, len(PAGE_FEATURES)))
    P = {name: i for i, name in enumerate(PAGE_FEATURES)}
    bdepth = depth[nodes]
    page[:, P["depth"]] = bdepth
    page[:, P["rel_depth"]] = bdepth / max(depth.max(), 1.0)
    page[:, P["block_position"]] = np.arange(n) / max(n - 1, 1)
    page[:, P["char_position"]] = (np.cumsum(chars) - chars) / total_chars
    page[:, P["page_share"]] = chars / total_chars
    page[:, P["log_page_words"]] = np.log1p(total_words)
    page[:, P["log_blocks"]] = np.log1p(n)
    order = np.argsort(-chars, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    page[:, P["size_rank"]] = rank / max(n - 1, 1)
    page[:, P["chars_vs_max"]] = chars / chars.max()
    h1 = [k for k, tg in enumerate(tags) if tg == "h1"]
    page[:, P["after_h1"]] = (np.arange(n) - h1[0]) / max(n - 1, 1) if h1 else -2.0

    nonlink = sub_chars - sub_link
    total_nonlink = max(nonlink[0] if n_nodes else 0.0, (chars - link_density * chars).sum(), 1.0)
    main50 = 0
    for name, share in (("in_main50", 0.5), ("in_main80", 0.8)):
        cand = np.flatnonzero(nonlink >= share * total_nonlink)
        if len(cand):
            m = cand[np.argmax(depth[cand])]
            inside = (nodes >= m) & (nodes < m + size[m])
            page[:, P[name]] = inside
            if name == "in_main50":
                page[:, P["main50_depth_gap"]] = np.where(inside, bdepth - depth[m], -1.0)
                main50 = m
        elif name == "in_main50":
            page[:, P["main50_depth_gap"]] = -1.0

    # structural signature: own tag + hint bits, parent's and grandparent's tags
    own_hints = t.own_hints.tolist()
    gp = [par[p] if p >= 0 else -1 for p in (par[i] for i in nodes_l)]
    sigs = [
        (tags[k], own_hints[i], t.tags[par[i]] if par[i] >= 0 else "", t.tags[g] if g >= 0 else "")
        for k, (i, g) in enumerate(zip(nodes_l, gp, strict=True))
    ]
    sig_id: dict[tuple, int] = {}
    sig_idx = np.array([sig_id.setdefault(s, len(sig_id)) for s in sigs])
    sig_count = np.bincount(sig_idx).astype(np.float64)
    sig_chars = np.bincount(sig_idx, weights=chars)
    sig_link = np.bincount(sig_idx, weights=link_density * chars)
    page[:, P["signature_freq"]] = np.log1p(sig_count[sig_idx] - 1)
    page[:, P["signature_share"]] = sig_chars[sig_idx] / total_chars
    page[:, P["signature_link_density"]] = sig_link[sig_idx] / np.maximum(sig_chars[sig_idx], 1)
    # siblings of the same tag under the same parent (menu items, list items, table cells)
    ptag = [(par[i], t.tags[i]) for i in range(n_nodes)]
    pt_count: dict[tuple, int] = {}
    for key in ptag:
        pt_count[key] = pt_count.get(key, 0) + 1
    page[:, P["same_tag_siblings"]] = np.log1p([pt_count[ptag[i]] - 1 for i in nodes_l])

    ctx = np.zeros((n, len(CONTEXT_FEATURES)))
    anc = parent[nodes]
    col = 0
    for _ in range(3):
        ok = anc >= 0
        a = np.where(ok, anc, 0)
        ctx[:, col] = np.where(ok, sub_chars[a] / total_chars, 0.0)
        ctx[:, col + 1] = np.where(ok, sub_link[a] / np.maximum(sub_chars[a], 1), 0.0)
        ctx[:, col + 2] = np.where(ok, np.log1p(sub_blocks[a]), 0.0)
        ctx[:, col + 3] = np.where(ok, chars / np.maximum(sub_chars[a], 1), 1.0)
        col += 4
        anc = np.where(ok, parent[a], -1)
    logw = np.log1p(words)
    bparent = parent[nodes]
    # previous block (the first has none: zeros), then next block (the last has none)
    for here, there in ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))):
        ctx[here, col] = logw[there]
        ctx[here, col + 1] = link_density[there]
        ctx[here, col + 2] = bparent[there] == bparent[here]
        ctx[here, col + 3] = stop[there]
        col += 4
    terminal = text_X[:, TEXT_FEATURES.index("ends_terminal")]
    window = np.column_stack([link_density, logw, stop, terminal])
    ctx[:, col : col + 4] = _window_mean(window, _NEIGHBOUR_WINDOW)
    col += 4

    zone = np.zeros((n, len(ZONE_FEATURES)))
    anc = parent[nodes]
    col = 0
    for level in range(1, 7):
        ok = anc >= 0
        a = np.where(ok, anc, 0)
        denom = np.maximum(sub_chars[a], 1)
        if level <= 3:
            zone[:, col] = np.where(ok, sub_prose[a] / denom, 0.0)
            zone[:, col + 1] = np.where(ok, sub_stop[a] / denom, 0.0)
            col += 2
        else:
            zone[:, col] = np.where(ok, sub_chars[a] / total_chars, 0.0)
            zone[:, col + 1] = np.where(ok, sub_link[a] / denom, 0.0)
            zone[:, col + 2] = np.where(ok, sub_prose[a] / denom, 0.0)
            col += 3
        anc = np.where(ok, parent[a], -1)
    idx = np.arange(n)
    prose_idx = np.flatnonzero(prose)
    if len(prose_idx):
        first, last = prose_idx[0], prose_idx[-1]
        zone[:, col] = (idx - first) / max(n - 1, 1)
        zone[:, col + 1] = (last - idx) / max(n - 1, 1)
        zone[:, col + 2] = (idx >= first) & (idx <= last)
    else:
        zone[:, col : col + 2] = -1.0
    before = np.cumsum(prose) - prose
    zone[:, col + 3] = before / max(len(prose_idx), 1)
    zone[:, col + 4] = (len(prose_idx) - before - prose) / max(len(prose_idx), 1)
    zone[:, col + 5] = (link_density * chars).sum() / total_chars
    zone[:, col + 6] = (prose * chars).sum() / total_chars
    zone[:, col + 7] = "article" in t.tags
    zone[:, col + 8] = sub_chars[main50] / total_chars
    zone[:, col + 9] = sub_prose[main50] / max(sub_chars[main50], 1.0)

    masks = t.own_hints[nodes]
    amasks = t.hints[nodes]
    # filled in place, column group by group: no float64 copy of the whole matrix
    X = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    col = 0
    for group in (text_X, page, ctx, zone):
        X[:, col : col + group.shape[1]] = group
        col += group.shape[1]
    for mask in (masks, amasks):
        as_bytes = np.ascontiguousarray(mask, dtype="<u8").view(np.uint8).reshape(n, 8)
        bits = np.unpackbits(as_bytes, axis=1, bitorder="little")  # column j: bit j
        X[:, col : col + len(_BIT_INDEX)] = bits[:, _BIT_INDEX]
        col += len(_BIT_INDEX)

    return PageFeatures(nodes, texts, words, chars, X)


def subtree_sums(values: np.ndarray, parent: np.ndarray, levels: list[np.ndarray]) -> np.ndarray:
    """Per node, the sum of ``values`` over its subtree (values: (nodes, k))."""
    out = values.copy()
    for level in reversed(levels):
        np.add.at(out, parent[level], out[level])
    return out


# character classes for the text features, by code point (< 256; everything above counts as a
# letter, which is what it mostly is in the pages' languages)
_LUT_SIZE = 257  # code points 0..255, and one slot (256) for everything above, all False
_PUNCT_LUT = np.zeros(_LUT_SIZE, dtype=np.int32)
_PUNCT_LUT[[ord(c) for c in ".,;:!?"]] = 1
_SEP_LUT = np.zeros(_LUT_SIZE, dtype=np.int32)
_SEP_LUT[[ord(c) for c in "|·/»>"]] = 1
_UPPER_LUT = np.zeros(_LUT_SIZE, dtype=bool)
_UPPER_LUT[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ"]] = True
_WORD_LUT = np.zeros(_LUT_SIZE, dtype=bool)
_WORD_LUT[[ord(c) for c in "0123456789_abcdefghijklmnopqrstuvwxyz"]] = True
_WORD_LUT[[ord(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZªµºÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâ"]] = (
    True
)
_WORD_LUT[[ord(c) for c in "ãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ"]] = True
_TERMINAL_LUT = np.zeros(_LUT_SIZE, dtype=bool)
_TERMINAL_LUT[[ord(c) for c in '.!?:;")']] = True
_SENTENCE_LUT = np.zeros(_LUT_SIZE, dtype=bool)
_SENTENCE_LUT[[ord(c) for c in ".!?"]] = True
_STOP_TOKENS = frozenset(
    [w for w in STOPWORDS]
    + [w + p for w in STOPWORDS for p in ",.;:!?)\"'"]
    + [p + w for w in STOPWORDS for p in "(\"'"]
)
_BLOCK_SEP = "\n zqxblock \n"  # a word no page has, between blocks, to find them in the tokens


# per-character work runs over groups of blocks of at most this many characters, and a block
# longer than _BLOCK_CAP is measured on its start (its ratios) and its length (its counts), so
# memory stays a few bytes per character of a bounded slice, however big the page
_GROUP_CHARS = 1_000_000
_BLOCK_CAP = 100_000


def _text_features(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text features of all blocks of a page: (features, words, stopword ratio)."""
    lengths = [len(t) for t in texts]
    if max(lengths) > _BLOCK_CAP:
        capped = [t[:_BLOCK_CAP] if len(t) > _BLOCK_CAP else t for t in texts]
    else:
        capped = texts
    if sum(lengths) <= _GROUP_CHARS:
        out, words, stop = _text_features_group(capped)
    else:
        parts, start, size = [], 0, 0
        for k, n in enumerate(lengths):
            size += min(n, _BLOCK_CAP)
            if size >= _GROUP_CHARS:
                parts.append(_text_features_group(capped[start : k + 1]))
                start, size = k + 1, 0
        if start < len(texts):
            parts.append(_text_features_group(capped[start:]))
        out, words, stop = (np.concatenate(x) for x in zip(*parts, strict=True))
    if capped is not texts:
        full = np.asarray(lengths, dtype=np.float64)
        scale = full / np.array([len(t) for t in capped], dtype=np.float64)
        words = words * scale
        out[:, 0] = np.log1p(words)
        out[:, 1] = np.log1p(full)
    return out, words, stop


def _text_features_group(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text features of blocks at once, over the code points of their joined text."""
    n = len(texts)
    joined = _BLOCK_SEP.join(texts)
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = np.cumsum(lengths[:-1] + len(_BLOCK_SEP))
    ends = starts + lengths
    # per-char values, counted per block (the separators fall into the previous block's slice,
    # so they are made neutral: spaces, newlines and a lowercase word)
    small = np.minimum(cp, 256).astype(np.uint16)
    upper = _UPPER_LUT[small] | ((cp >= 0x391) & (cp <= 0x3A9)) | ((cp >= 0x410) & (cp <= 0x42F))
    word = _WORD_LUT[small] | (
        (cp > 255) & ~((cp >= 0x2000) & (cp <= 0x206F)) & ~((cp >= 0x3000) & (cp <= 0x303F))
    )
    prev_word = np.empty_like(word)
    prev_word[0] = False
    prev_word[1:] = word[:-1]
    cap_start = upper & ~prev_word
    nxt = np.empty_like(cp)
    nxt[:-1] = cp[1:]
    nxt[-1] = 32
    sentence = _SENTENCE_LUT[small] & ((nxt == 32) | (nxt == 10))
    digits = (cp >= 48) & (cp <= 57)
    sep = _SEP_LUT[small] + (cp == 0x2022)
    word_start = word & ~prev_word
    # whitespace tokens (block texts are whitespace-normalised: only spaces, and the separator's
    # newlines), counted per block to find each block's tokens in the split below
    blank = (cp == 32) | (cp == 10)
    token_start = ~blank
    token_start[1:] &= blank[:-1]
    # per block, how many characters of each kind: positions of the (sparse) hits, cut at the
    # block starts (exact integer counts, cheaper than summing dense columns)
    cuts = np.append(starts, len(cp))
    columns = (cp == 32, _PUNCT_LUT[small], sentence, cap_start, digits, cp == 44, sep,
               cp == 0xA9, word_start, token_start)  # fmt: skip
    sums = np.empty((n, len(columns)))
    for k, hits in enumerate(columns):
        sums[:, k] = np.diff(np.searchsorted(np.flatnonzero(hits), cuts))
    # the separator after each block ("\n zqxblock \n") brings two spaces and one word
    sums[:-1, 0] -= 2
    sums[:-1, 8] -= 1
    spaces, punct, sentences, caps, n_digits, commas, seps, copyright_sign, words, _ = sums.T

    # the stopword set also holds its words with punctuation attached
    toks = joined.lower().split()
    is_stop = np.fromiter(map(_STOP_TOKENS.__contains__, toks), dtype=bool, count=len(toks))
    token_cuts = np.zeros(n + 1, dtype=np.int64)
    token_cuts[1:] = np.cumsum(sums[:, 9].astype(np.int64))
    stops = np.diff(np.searchsorted(np.flatnonzero(is_stop), token_cuts)).astype(np.float64)
    nw = np.maximum(words, 1.0)
    last = small[ends - 1]
    low_tail = [t[-200:].lower() for t in texts] if copyright_sign.sum() == 0 else None
    copyright = copyright_sign > 0
    if low_tail is not None:
        copyright = np.array(["opyright" in t or "ights reserved" in t for t in low_tail])

    out = np.zeros((n, len(TEXT_FEATURES)))
    out[:, 0] = np.log1p(words)
    out[:, 1] = np.log1p(lengths)
    out[:, 3] = (lengths - spaces) / nw
    out[:, 4] = punct / nw
    out[:, 5] = sentences / nw
    out[:, 6] = _TERMINAL_LUT[last] | (cp[ends - 1] == 0x3002)
    out[:, 7] = stops / nw
    out[:, 8] = caps / nw
    out[:, 9] = n_digits / np.maximum(lengths, 1)
    out[:, 10] = commas / nw
    out[:, 11] = copyright
    out[:, 12] = seps / nw
    out[:, 13] = upper[starts]
    return out, words, stops / nw


def _window_mean(values: np.ndarray, w: int) -> np.ndarray:
    """Mean of values[i-w .. i+w] (rows; values: (n, k)), clipped at the page's ends."""
    c = np.zeros((len(values) + 1, values.shape[1]))
    np.cumsum(values, axis=0, out=c[1:])
    n = len(values)
    i = np.arange(n)
    lo = np.maximum(i - w, 0)
    hi = np.minimum(i + w + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)[:, None]


def readable(pf: PageFeatures) -> list[dict[str, float]]:
    """The curator's tooltip per block: a dozen named values behind its label."""
    names = [name for name, _ in READABLE[1:]]
    cols = [FEATURE_INDEX[feat] for _, feat in READABLE[1:]]
    rows = np.round(pf.X[:, cols].astype(np.float64), 3).tolist()
    return [
        {"words": w, **dict(zip(names, row, strict=True))}
        for w, row in zip(pf.words.tolist(), rows, strict=True)
    ]
