"""HTML → a table of text blocks, with no Python loop over every element.

A *block* is a block-level element (``p``, ``li``, ``td``, ``div``, ...) together with the text
that belongs to it directly or through inline descendants (``a``, ``span``, ``b``, ...), but not
the text of block-level descendants, which are blocks of their own.

How: one XSLT pass (libxslt, in C) writes the page's text with private-use marker characters
where block elements and links start and end, in document order, and numpy turns the marker
stream into owners, parents and depths. No Python code recurses, so no nesting reaches Python's
recursion limit (libxml2 itself stops at 2048 levels, which is refused as not a page).
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

import numpy as np
from lxml import etree

from studio.segment.blocks import SegmentError
from studio.segment.hints import hint_mask, tag_mask
from studio.text import broken_utf8

# Elements that start a new block. Unknown and custom elements count as inline: they are
# usually wrappers (<my-card>) whose text reads with their parent.
BLOCK_TAGS = frozenset(
    """address article aside blockquote body html caption center dd details dialog dir div
    dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup li main
    menu nav ol p pre section summary table tbody thead tfoot tr td th ul legend
    noscript""".split()  # noqa: SIM905
)
# Never text a reader sees; removed (with their content, keeping the tail) before the walk.
# <noscript> stays: some sites (Discourse forums, for one) serve their whole content in it.
DROP_TAGS = (
    "script", "style", "template", "svg", "math", "iframe", "object", "embed",
    "canvas", "select", "textarea", "head", "title", "video", "audio", "map",
)  # fmt: skip

# features take ~600 bytes a block: this bounds a page's working memory to a few hundred MB
MAX_BLOCKS = 500_000
# libxml2 stops at 2048 levels with huge_tree (256 without); deeper than this is not a page.
MAX_DEPTH = 2048

_local = threading.local()


def _parser() -> etree.HTMLParser:
    """One parser per thread: lxml parsers (and their error logs) are not thread-safe."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            encoding="utf-8",
            remove_comments=True,
            remove_pis=True,
            no_network=True,
            collect_ids=False,
            # lifts libxml2's 10 MB text-node and 256-level depth limits (to 2048 levels)
            huge_tree=True,
        )
    return parser


_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.-]{1,40})""", re.I)
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"(\xb5/\xfd", "zstd-compressed data (decompress it first)"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


@dataclass(slots=True)
class BlockTable:
    """The raw material of a page's blocks, one row per block-level element (node).

    Nodes are in document (pre-)order, so a node's parent always has a smaller index. Only nodes
    with text of their own become blocks; the others are containers, kept for context features.
    """

    tree: etree._ElementTree
    elements: list
    tags: list[str]
    texts: list[str]  # the node's own text, raw ("" for containers)
    parent: np.ndarray  # int64, -1 for the root
    depth: np.ndarray  # int64
    own_hints: np.ndarray  # uint64 bits for the element's tag and class/id/role words
    hints: np.ndarray  # ... OR-ed over its ancestors
    raw_chars: np.ndarray  # float64 length of the raw own text
    link_chars: np.ndarray  # ... of it inside <a>
    n_links: np.ndarray  # <a> elements that start in the node's own text


def decode(html: str | bytes) -> str:
    """Bytes → text: BOM, then a <meta charset>, then UTF-8, then cp1252 for legacy pages."""
    return _decode(html)[0]


def _decode(html: str | bytes) -> tuple[str, bool]:
    """(text, whether the input was exactly the UTF-8 encoding of text)."""
    if isinstance(html, str):
        text, exact = html, False
    else:
        text, exact = _decode_bytes(html)
    _check_text(text)
    return text, exact


def _check_text(text: str) -> None:
    head = text[:4096]
    if head and len(_CONTROL.findall(head)) > 0.05 * len(head):
        raise SegmentError("not HTML: the input is mostly control characters (binary data?)")


def _decode_bytes(data: bytes) -> tuple[str, bool]:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise SegmentError(f"not HTML: the input is {what}")
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return data.decode(enc, errors="replace"), False
    head = data[:4096]
    if b"\x00" in head:
        raise SegmentError("not HTML: the input contains NUL bytes (binary data?)")
    m = _CHARSET.search(head)
    if m:
        try:
            enc = codecs.lookup(m.group(1).decode("ascii")).name
        except LookupError:
            enc = ""
        # pages that say latin-1 mean windows-1252 (as browsers read them)
        enc = "cp1252" if enc in ("latin-1", "iso8859-1", "ascii") else enc
        if enc and not enc.startswith("utf-16"):
            try:
                return data.decode(enc), enc == "utf-8"
            except UnicodeDecodeError:
                return data.decode(enc, errors="replace"), False
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        utf8 = broken_utf8(data)
        return (utf8[0] if utf8 else data.decode("cp1252", "replace")), False


def parse(html: str | bytes) -> etree._Element | None:
    """Parse a page; None when there is nothing to parse."""
    text, exact_utf8 = _decode(html)
    if not text or text.isspace():  # (not text.strip(): no copy of the page)
        return None
    if "<" not in text:
        raise SegmentError("not HTML: the input has no markup")
    # the bytes as given when they already are the UTF-8 the parser wants: no re-encoding
    data = html if exact_utf8 else text.encode("utf-8", errors="replace")
    # every marker character encodes as EE 80 8x: one bytes scan (none for ASCII pages)
    if not text.isascii() and _MARKER_UTF8 in data and MARKERS.search(text):
        data = MARKERS.sub("", text).encode("utf-8", errors="replace")
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:  # pragma: no cover - libxml2's HTML parser rarely raises
        raise SegmentError(f"not HTML: {e}") from e
    for err in parser.error_log:
        if err.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in err.message:
            raise SegmentError(f"elements nested deeper than {MAX_DEPTH} levels: not a page")
    if root is not None:
        # (a MathJax script is found by one scan of the bytes; looking at every script costs
        # a walk of the tree, and <math> costs nothing where there is none: lxml looks up the
        # name in the page's names first)
        formulas_as_tex(root, scripts=b"math/tex" in data)
    return root


# -- formulas ---------------------------------------------------------------------------------
# A formula is MathML (<math>, which DROP_TAGS would drop with its sentence's meaning) or a
# MathJax 2 <script type="math/tex">. Each becomes its TeX source in the text, $...$ (or $$...$$
# when it stands on its own), where the page gives it: Wikipedia's alttext, a TeX annotation
# (KaTeX, MathJax 3's assistive MathML), the script's text; a formula without TeX reads as its
# own text. KaTeX's rendered copy of a formula it also wrote as MathML (spans of glyphs, hidden
# from screen readers) is dropped, or the formula would be read twice.
# a formula longer than this (its TeX, or its text) is dropped, as formulas were before they
# were read: a page's words are what the segmenter learnt from, and a page-long matrix of TeX
# tokens is no sentence (one of 900 characters among four paragraphs could tip a paragraph
# beside it to boilerplate)
MAX_TEX = 300
# what XML text cannot hold (lxml refuses it), and the walk's own marker characters
_NOT_XML_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff\ue001-\ue004]")
_CDATA = re.compile(r"%?\s*<!\[CDATA\[|%?\s*\]\]>")
_TEX_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)"))
_STYLE = ("{\\displaystyle", "{\\textstyle")


def formulas_as_tex(root: etree._Element, *, scripts: bool = True) -> None:
    """Each formula element becomes an element holding only its text (a ``span`` in a
    sentence, a ``p`` of its own on its own line; emptied in place, its tail kept: no text is
    moved around the tree, so a page of a hundred thousand formulas costs no more than that).
    ``scripts``: whether to look for MathJax's (lower-case ``math/tex``) scripts."""
    alone: dict[etree._Element, bool] = {}  # per parent: whether it holds no loose text
    maths = list(root.iter("math"))
    for el in maths:
        tex = tex_source(el.get("alttext") or "")
        for note in list(el.iter("annotation", "annotation-xml")):  # never read as text
            if not tex and (note.get("encoding") or "").lower() in ("application/x-tex", "tex"):
                tex = tex_source(note.text or "")
            note.getparent().remove(note)
        own = "" if tex else " ".join("".join(el.itertext()).split())  # no TeX: its own text
        if len(tex or own) > MAX_TEX:
            _as_text(el, "span", "")
        elif tex:
            _as_formula(el, tex, el.get("display") == "block", alone)
        else:
            _as_text(el, "span", _NOT_XML_TEXT.sub(" ", own))
    for el in list(root.iter("script")) if scripts else ():
        kind = el.get("type") or ""
        if kind.startswith("math/tex"):
            tex = tex_source(el.text or "")
            if tex and len(tex) <= MAX_TEX:  # (a script left as it is is dropped, as before)
                _as_formula(el, tex, "mode=display" in kind, alone)
    for el in list(root.iter("span")) if maths else ():  # KaTeX's copy is beside a <math>
        if "katex-html" in (el.get("class") or "").split() and _has_mathml_copy(el):
            _as_text(el, "span", "")


def tex_source(raw: str) -> str:
    """A formula's TeX as a page gives it, made one line of XML text: CDATA wrappers, ``$``
    (or ``\\[``...) delimiters and Wikipedia's ``{\\displaystyle ...}`` taken off."""
    tex = " ".join(_NOT_XML_TEXT.sub(" ", _CDATA.sub(" ", raw)).split())
    for left, right in _TEX_DELIMITERS:
        if len(tex) > len(left + right) and tex.startswith(left) and tex.endswith(right):
            tex = tex[len(left) : -len(right)].strip()
            break
    style = next((p for p in _STYLE if tex.startswith(p)), "")
    if style and _closing_brace(tex) == len(tex) - 1:
        tex = tex[len(style) : -1].strip()
    return tex


def _closing_brace(tex: str) -> int:
    """The index of the brace that closes the one ``tex`` opens with (-1: none)."""
    depth = 0
    for i, c in enumerate(tex):
        if c == "{" and (i == 0 or tex[i - 1] != "\\"):
            depth += 1
        elif c == "}" and tex[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _has_mathml_copy(rendered: etree._Element) -> bool:
    box = rendered.getparent()
    return box is not None and any(
        "katex-mathml" in (c.get("class") or "").split() for c in box if c is not rendered
    )


def _as_formula(
    el: etree._Element, tex: str, display: bool, alone: dict[etree._Element, bool]
) -> None:
    """A formula in a sentence stays in its sentence's text, as $TeX$ (or $$TeX$$ when it is
    shown on a line of its own); one that stands alone between blocks (nothing but space beside
    it in its element) is a paragraph of its own: as loose text of the element around it it
    would be read with that element's other loose text, out of place."""
    if not display:
        _as_text(el, "span", f"${tex}$")
    elif _stands_alone(el, alone):
        _as_text(el, "p", f"$${tex}$$")
    else:
        _as_text(el, "span", f" $${tex}$$ ")


def _stands_alone(el: etree._Element, alone: dict[etree._Element, bool]) -> bool:
    """Whether the element around ``el`` holds no loose text (asked once per element: the
    formulas made text keep their tails, so the answer stays)."""
    parent = el.getparent()
    if parent is None:
        return True
    if parent not in alone:
        alone[parent] = all(not (t or "").strip() for t in (parent.text, *(c.tail for c in parent)))
    return alone[parent]


def _as_text(el: etree._Element, tag: str, text: str) -> None:
    el.clear(keep_tail=True)  # children and attributes go, the text after it stays
    el.tag, el.text = tag, text or None


# Private-use characters mark where elements start and end in the page's text, so that one
# C-level pass yields the whole page and a loop over markers (not over every element) rebuilds
# the blocks. Input text is cleaned of these characters first.
_BLOCK_START, _BLOCK_END = "\ue001", "\ue002"
_LINK_START, _LINK_END = "\ue003", "\ue004"
_FIRST_MARKER = 0xE001
_MARKER_UTF8 = _BLOCK_START.encode()[:2]
MARKERS = re.compile("[\ue001-\ue004]")
_SPLIT = re.compile("([\ue001-\ue004])")


def walk(root: etree._Element) -> BlockTable:
    """Collect the block table of a parsed page.

    The tree is modified: dropped tags are removed.
    """
    etree.strip_elements(root, *DROP_TAGS, with_tail=False)
    body = root.find("body")
    if body is None:
        body = root
    elements = list(body.iter(*BLOCK_TAGS))
    if len(elements) > MAX_BLOCKS:
        raise SegmentError(f"more than {MAX_BLOCKS:,} block elements: not a page to read")
    if not elements or elements[0] is not body:
        elements.insert(0, body)
    tags = [el.tag for el in elements]
    own = _own_hints(tags, [el.items() for el in elements])
    marked = _marked_text(root)
    if (
        marked.count(_BLOCK_START) != len(elements)
        or marked.count(_BLOCK_END) != len(elements) - 1
        or marked.count(_LINK_START) != marked.count(_LINK_END)
    ):
        # marker characters the page wrote as character references (&#xE001;), which the
        # clean-up of the page's text before parsing cannot see: taken out of the tree's text
        for el in root.iter():
            if el.text and MARKERS.search(el.text):
                el.text = MARKERS.sub("", el.text)
            if el.tail and MARKERS.search(el.tail):
                el.tail = MARKERS.sub("", el.tail)
        marked = _marked_text(root)
    return _assemble(root, elements, tags, own, _SPLIT.split(marked))


def _marked_text(root: etree._Element) -> str:
    try:
        return str(_marker_transform()(root.getroottree()))
    except etree.XSLTApplyError as e:  # pragma: no cover - depth is bounded by the parser
        raise SegmentError(f"cannot read the page's structure: {e}") from e


# The marker stream, written by libxslt (elements in document order, as body.iter() has them):
# the top element (body, or the root when there is none) opens a block that is never closed;
# every block element below it opens and closes one; links open and close a link; <br> is a
# newline; text is copied as it is. (In one C pass: setting marker text on every element from
# Python and reading it back with string() cost ~20 % more of the walk.)
_BLOCK_MATCH = "|".join(sorted(BLOCK_TAGS))
_MARKER_XSL = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="utf-8"/>
<xsl:template match="/"><xsl:choose>
  <xsl:when test="*/body"><xsl:apply-templates select="*/body[1]" mode="top"/></xsl:when>
  <xsl:otherwise><xsl:apply-templates select="*" mode="top"/></xsl:otherwise>
</xsl:choose></xsl:template>
<xsl:template match="*" mode="top">{_BLOCK_START}<xsl:apply-templates/></xsl:template>
<xsl:template match="{_BLOCK_MATCH}">{_BLOCK_START}<xsl:apply-templates/>{_BLOCK_END}</xsl:template>
<xsl:template match="a">{_LINK_START}<xsl:apply-templates/>{_LINK_END}</xsl:template>
<xsl:template match="br"><xsl:text>&#10;</xsl:text></xsl:template>
</xsl:stylesheet>"""


def _marker_transform() -> etree.XSLT:
    """One compiled transform per thread, like the parser."""
    transform = getattr(_local, "transform", None)
    if transform is None:
        transform = _local.transform = etree.XSLT(etree.XML(_MARKER_XSL))
    return transform


def _own_hints(tags: list[str], items: list[list[tuple[str, str]]]) -> list[int]:
    # elements repeat their exact attributes (every <li class="menu-item">): memoise per page
    seen: dict[tuple, int] = {}
    out = []
    for tag, it in zip(tags, items, strict=True):
        if not it:
            out.append(tag_mask(tag))
            continue
        key = (tag, *it)
        mask = seen.get(key)
        if mask is None:
            mask = seen[key] = hint_mask(tag, it)
        out.append(mask)
    return out


def _assemble(root, elements, tags, own, parts) -> BlockTable:
    """Marker stream → per-node texts and counts, with numpy instead of a Python stack.

    After marker k, ``open_after[k]`` blocks are open; the text that follows belongs to the
    block that started last among those opened at that same depth.
    """
    n = len(elements)
    codes = np.frombuffer("".join(parts[1::2]).encode("utf-32-le"), dtype=np.uint32)
    codes = codes.astype(np.int64) - _FIRST_MARKER
    pieces = parts[2::2]
    k = len(codes)
    starts = np.flatnonzero(codes == 0)
    open_after = np.cumsum(codes == 0) - np.cumsum(codes == 1)
    span = k + 1
    start_keys = open_after[starts] * span + starts  # already sorted by (depth, position)?
    order = np.argsort(start_keys, kind="stable")
    at = np.searchsorted(start_keys[order], open_after * span + np.arange(k), side="right") - 1
    owner = order[at]
    in_link = (np.cumsum(codes == 2) - np.cumsum(codes == 3)) > 0
    lengths = np.fromiter(map(len, pieces), dtype=np.float64, count=k)

    parent = np.full(n, -1, dtype=np.int64)
    parent[1:] = owner[starts[1:] - 1]
    depth = open_after[starts] - 1
    raw_chars = np.bincount(owner, weights=lengths, minlength=n)
    link_chars = np.bincount(owner, weights=lengths * in_link, minlength=n)
    n_links = np.bincount(owner[codes == 2], minlength=n)

    by_owner = np.argsort(owner, kind="stable").tolist()
    bounds = np.searchsorted(owner[by_owner], np.arange(n + 1)).tolist()
    ordered = list(map(pieces.__getitem__, by_owner))
    texts = [""] * n
    for i in np.flatnonzero(raw_chars).tolist():
        texts[i] = "".join(ordered[bounds[i] : bounds[i + 1]])

    own_hints = np.array(own, dtype=np.uint64)
    hints = own_hints.copy()
    for level in depth_levels(depth) if n else ():
        hints[level] |= hints[parent[level]]
    return BlockTable(
        root.getroottree(), elements, tags, texts, parent, depth, own_hints, hints, raw_chars,
        link_chars, n_links,
    )  # fmt: skip


def depth_levels(depth: np.ndarray) -> list[np.ndarray]:
    """Node indices per depth 1, 2, ... (each in increasing order): one sort, not one scan each."""
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(1, int(depth.max()) + 2)).tolist()
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
