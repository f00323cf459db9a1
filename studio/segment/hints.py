"""What an element's tag and its class/id/role say about it, as bits of one integer.

Hint words are read from ``class``, ``id``, ``role`` and ``itemprop``: the name of the thing a
web developer was building is often the best evidence of what it is (``site-footer``,
``share-buttons``, ``entry-content``). Words are matched at the start of a token, so ``nav``
matches ``navbar`` and ``nav-menu`` but not ``canvas``; ``ad`` must be a whole token.
"""

from __future__ import annotations

import re

# (name, word prefixes, whole words); order fixes the bit numbers. Each word of a class/id value
# is looked up alone and joined with the next word, so "main-content" matches "maincontent".
HINT_WORDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("nav", ("nav", "menu", "topnav", "subnav", "megamenu", "dropdown"), ("toc",)),
    ("footer", ("footer", "foot", "copyright", "legal", "colophon"), ()),
    ("header", ("header", "masthead", "topbar", "branding", "logo", "sitetitle"), ()),
    ("sidebar", ("sidebar", "aside", "widget", "rail", "secondary"), ("side",)),
    ("comment", ("comment", "repl", "respond", "discussion", "disqus", "review"), ()),
    ("share", ("share", "sharing", "social", "follow", "addthis"), ()),
    ("related", ("related", "recommend", "trending", "popular", "suggest", "recirc", "teaser"),
     ("more", "also")),
    ("cookie", ("cookie", "consent", "gdpr", "ccpa", "onetrust"), ("cmp",)),
    ("ad", ("advert", "adsense", "sponsor", "promo", "outbrain", "taboola", "banner"),
     ("ad", "ads", "dfp", "adslot", "adunit")),
    ("content", ("article", "post", "entry", "content", "main", "story", "body", "text", "prose",
                 "rich", "markdown", "blog"), ()),
    ("meta", ("author", "byline", "meta", "date", "time", "published", "posted", "tag", "categor",
              "label", "badge"), ()),
    ("subscribe", ("newsletter", "subscri", "signup", "modal", "popup", "overlay", "dialog"),
     ("cta",)),
    ("breadcrumb", ("breadcrumb", "crumb"), ()),
    ("pagination", ("pagination", "pager", "paging", "pagenumbers"), ()),
    ("hidden", ("hidden", "hide", "sronly", "visually", "screenreader", "skip", "offscreen",
                "invisible"), ()),
    ("form", ("search", "login", "signin", "form", "auth", "account", "cart", "checkout"), ()),
    ("product", ("product", "description", "desc", "detail", "spec", "price"), ()),
    ("title", ("title", "headline", "heading"), ("h1",)),
    ("card", ("card", "item", "tile", "grid", "list", "feed", "thumb"), ()),
    ("strong_main", ("articlebody", "maincontent", "postbody", "entrycontent", "postcontent",
                     "articlecontent", "storybody"), ()),
)  # fmt: skip
HINT_BITS = {name: i for i, (name, _, _) in enumerate(HINT_WORDS)}
_STRONG_MAIN = 1 << HINT_BITS["strong_main"] | 1 << HINT_BITS["content"]
# one anchored alternation over all prefixes, the specific main-content names first
_PREFIX = re.compile(
    "|".join(
        f"(?P<{name}>{'|'.join(prefixes)})"
        for name, prefixes, _ in sorted(HINT_WORDS, key=lambda w: w[0] != "strong_main")
    )
)
_HIDDEN = 1 << HINT_BITS["hidden"]
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")
_WHOLE = {w: 1 << i for i, (_, _, whole) in enumerate(HINT_WORDS) for w in whole}
_ROLES = {
    "navigation": "nav", "menu": "nav", "menubar": "nav", "contentinfo": "footer",
    "banner": "header", "complementary": "sidebar", "main": "strong_main", "article": "content",
    "search": "form", "dialog": "subscribe", "alert": "subscribe",
}  # fmt: skip

# Tags that say something about everything inside them; bit 32 + index.
TAG_HINTS: tuple[str, ...] = (
    "nav", "footer", "header", "aside", "article", "main", "form", "li", "table", "h",
    "blockquote", "pre", "figure", "dd", "address", "details", "section", "p", "noscript",
)  # fmt: skip
TAG_BITS = {name: 32 + i for i, name in enumerate(TAG_HINTS)}
_TAG_MASK = {t: 1 << (32 + i) for i, t in enumerate(TAG_HINTS)}
for _t in ("td", "th", "tr", "tbody", "thead", "tfoot", "caption"):
    _TAG_MASK[_t] = _TAG_MASK["table"]
for _t in ("h1", "h2", "h3", "h4", "h5", "h6", "hgroup"):
    _TAG_MASK[_t] = _TAG_MASK["h"]
_TAG_MASK["dt"] = _TAG_MASK["dd"]
_TAG_MASK["figcaption"] = _TAG_MASK["figure"]
_TAG_MASK["summary"] = _TAG_MASK["details"]

_CAMEL = re.compile(r"([a-z])([A-Z])")
_TOKEN = re.compile(r"[a-z0-9]+")
_cache: dict[str, int] = {}
_CACHE_MAX = 200_000


def clear_caches() -> None:
    """Forget the memoised class/id words (benchmarks: time pages as if seen for the first time)."""
    _cache.clear()
    _token_cache.clear()


def tag_mask(tag: str) -> int:
    """Bits for the tag alone (an element without attributes)."""
    return _TAG_MASK.get(tag, 0)


def hint_mask(tag: str, attrs: list[tuple[str, str]]) -> int:
    """Bits for the tag and for its attributes, given as ``element.items()``.

    Words come from class, id, role and itemprop; an element hidden by ``hidden``,
    ``aria-hidden="true"`` or an inline ``display: none`` style gets the "hidden" bit.
    """
    mask = _TAG_MASK.get(tag, 0)
    for name, value in attrs:
        if name == "class" or name == "id":
            if value:
                mask |= _words_mask(value)
        elif name == "role":
            role = value.strip().lower()
            mask |= 1 << HINT_BITS[_ROLES[role]] if role in _ROLES else _words_mask(value)
        elif name == "itemprop":
            mask |= _words_mask(value)
            if value.strip().lower() in ("articlebody", "text", "reviewbody"):
                mask |= _STRONG_MAIN
        elif name == "style":
            if ("none" in value or "hidden" in value) and _HIDDEN_STYLE.search(value):
                mask |= _HIDDEN
        elif name == "hidden" or (name == "aria-hidden" and value == "true"):
            mask |= _HIDDEN
    return mask


_token_cache: dict[str, int] = {}
# first words of the two-word names above ("sign up", "main content", "sr only", ...)
_FIRST_OF_TWO = frozenset(
    """main post entry article story sign site page sr screen""".split()  # noqa: SIM905
)


def _words_mask(value: str) -> int:
    # cached per attribute value: class strings repeat across a page and across pages
    mask = _cache.get(value)
    if mask is None:
        if len(_cache) > _CACHE_MAX:
            _cache.clear()
            _token_cache.clear()
        # split camelCase, then lowercase; underscores and dashes separate words (BEM names)
        low = value[:300]
        if not low.islower():
            low = _CAMEL.sub(r"\1 \2", low).lower()
        words = _TOKEN.findall(low)
        mask = 0
        known = _token_cache.get
        for w in words:
            m = known(w)
            if m is None:
                # a number (ids: "post-1234") matches no hint word, alone or joined to the
                # word before it (no hint word has a digit but "h1"): not worth a cache entry
                m = 0 if w.isdigit() else _token_mask(w)
            mask |= m
        if not _FIRST_OF_TWO.isdisjoint(words):
            for k in range(len(words) - 1):
                if words[k] in _FIRST_OF_TWO:
                    mask |= _token_mask(words[k] + words[k + 1])
        _cache[value] = mask
    return mask


def _token_mask(word: str) -> int:
    mask = _token_cache.get(word)
    if mask is None:
        mask = _WHOLE.get(word, 0)
        m = _PREFIX.match(word)
        if m is not None:
            mask |= _STRONG_MAIN if m.lastgroup == "strong_main" else 1 << HINT_BITS[m.lastgroup]
        _token_cache[word] = mask
    return mask
