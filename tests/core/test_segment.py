"""The segmenter on small hand-written pages and on hostile input (shipped model, no mocks)."""

from __future__ import annotations

import time
from pathlib import Path

import lxml.html
import numpy as np
import pytest

from studio.segment import (
    BOILERPLATE,
    MODEL_VERSION,
    SIGNAL,
    Block,
    SegmentError,
    join_main_text,
    main_text,
    segment_html,
)
from studio.segment.blocks import join_texts, preformatted
from studio.segment.decode import choose_signal, label_confidence
from studio.segment.dom import MARKERS

ARTICLE = " ".join(
    [
        "The river town grew slowly through the nineteenth century, as barges carried grain and",
        "timber down to the coast. Its mills were built of local stone, and several of them still",
        "stand along the water, converted into flats and a small museum that explains how the",
        "wheels turned the grindstones. Visitors can follow a marked path from the station.",
    ]
)
SECOND = (
    "In winter the path floods in places, so it is worth checking the notices at the museum "
    "before setting out. The walk takes about two hours at an easy pace, and there is a cafe "
    "halfway along where the old lock keeper's cottage used to be."
)

PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><title>Mills of the river town</title>
<style>body {{ color: red }} .nav {{ display: flex }}</style>
<script>var secretScriptText = "never show this";</script>
</head>
<body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
  <button>Accept all cookies</button> <a href="/privacy">Privacy policy</a></div>
<header class="site-header"><a href="/" class="logo">River Town News</a>
<nav class="main-nav"><ul>
  <li><a href="/">Home</a></li><li><a href="/news">News</a></li>
  <li><a href="/sport">Sport</a></li><li><a href="/weather">Weather</a></li>
  <li><a href="/contact">Contact us</a></li>
</ul></nav></header>
<main><article class="post">
<h1>The mills of the river town</h1>
<p class="byline">By A. Writer, 3 March 2024</p>
<p>{ARTICLE}</p>
<p>{SECOND}</p>
</article>
<aside class="sidebar"><h3>Most read</h3><ul>
  <li><a href="/a">Council approves new bridge</a></li>
  <li><a href="/b">Ten best walks this spring</a></li>
  <li><a href="/c">School wins robotics prize</a></li>
</ul></aside></main>
<footer class="site-footer"><p>&copy; 2024 River Town News. All rights reserved.</p>
<ul><li><a href="/terms">Terms</a></li><li><a href="/privacy">Privacy</a></li></ul></footer>
</body></html>"""


def test_article_is_signal_and_navigation_is_not():
    text = main_text(PAGE)
    assert "barges carried grain" in text
    assert "lock keeper's cottage" in text
    for boilerplate in ("Contact us", "All rights reserved", "Accept all cookies", "Weather"):
        assert boilerplate not in text


def test_main_text_is_the_signal_blocks_joined():
    blocks = segment_html(PAGE)
    assert main_text(PAGE) == join_main_text(blocks)
    assert all(isinstance(b, Block) for b in blocks)


TUTORIAL = f"""<!DOCTYPE html><html><head><title>Loops in Python</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/docs">Docs</a></li></ul></nav>
<main><article><h1>Loops in Python</h1>
<p>{ARTICLE}</p>
<pre><code class="language-python">def sum_squares(n):\r
    total = 0   \r
    for i in range(n):
\tif i % 2 == 0:
            total += <b>i * i</b>

    return total
</code></pre>
<p>{SECOND}</p>
<ul><li>The lower mill ground wheat for the town's bakers until the flood of 1902.</li>
<li>The upper mill sawed timber brought down the river on barges each spring.</li>
<li>The fulling mill beat woollen cloth with wooden hammers driven by the wheel.</li></ul>
<table><tr><th>Mill</th><th>Built</th><th>Wheels</th></tr>
<tr><td>Lower mill on the river bend</td><td>1821</td><td>two</td></tr>
<tr><td>Upper mill by the old lock</td><td>1840</td><td>three</td></tr></table>
<p>{ARTICLE}</p>
</article></main>
<footer><p>&copy; 2024 River Town. All rights reserved.</p></footer></body></html>"""
CODE = """def sum_squares(n):
    total = 0
    for i in range(n):
\tif i % 2 == 0:
            total += i * i

    return total"""


def test_programs_keep_their_lines_and_indentation():
    """A <pre> block is kept as laid out (a program's indentation is its meaning), in the
    block, in the main text and in both ways of computing it; other blocks are single-spaced."""
    blocks = segment_html(TUTORIAL)
    (pre,) = [b for b in blocks if b.tag == "pre"]
    assert pre.text == CODE and pre.is_signal
    assert pre.n_words == len(CODE.split())
    text = main_text(TUTORIAL)
    assert text == join_main_text(blocks)
    assert f"\n\n{CODE}\n\n" in text
    assert all("\n" not in b.text for b in blocks if b.tag != "pre")


def test_table_rows_are_lines_of_cells():
    blocks = segment_html(TUTORIAL)
    kept = {b.text for b in blocks if b.is_signal}
    assert {"Lower mill on the river bend", "Upper mill by the old lock"} <= kept
    text = main_text(TUTORIAL)
    assert text == join_main_text(blocks)
    assert "Lower mill on the river bend | 1821" in text
    rows = [line for line in text.splitlines() if " | " in line]
    assert len(rows) == len(
        {b.locator.rsplit("/", 1)[0] for b in blocks if b.tag in ("td", "th") and b.is_signal}
    )


def test_list_items_are_lines_after_a_dash():
    text = main_text(TUTORIAL)
    assert text == join_main_text(segment_html(TUTORIAL))
    assert (
        f"{SECOND}\n\n- The lower mill ground wheat for the town's bakers until the flood of 1902."
        "\n- The upper mill sawed timber brought down the river on barges each spring.\n- The"
    ) in text


def test_joining_keeps_paragraphs_apart_and_cells_of_a_row_together():
    assert join_texts(["a", "b"], [None, None]) == "a\n\nb"
    places = [None, "li", "li", (7, 8), (7, 8)]
    assert join_texts("pijxy", places) == "p\n\n- i\n- j\n\nx | y"
    cells = [(1, 2), (1, 2), (1, 3), (4, 5)]  # two rows of one table, then another table
    assert join_texts("hxyzwp", [None, *cells, None]) == "h\n\nx | y\nz\n\nw\n\np"
    assert join_texts([], []) == ""


FORMULAS = f"""<html><body><nav><a href="/">Home</a> <a href="/wiki">Wiki</a></nav><main>
<h1>Derivative</h1>
<p>The derivative of <span class="mwe-math-element"><span style="display: none;"><math
 alttext="{{\\displaystyle x^{{2}}}}"><semantics><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow>
 <annotation encoding="application/x-tex">{{\\displaystyle x^{{2}}}}</annotation></semantics>
 </math></span><img src="x.svg" alt="x squared"></span> is <math><mn>2</mn><mi>x</mi></math>.
 {ARTICLE}</p>
<p>In MathJax 2 the same is <script type="math/tex">\\frac{{d}}{{dx}} x^2 = 2x</script> and
 on its own line:</p>
<script type="math/tex; mode=display">\\lim_{{h \\to 0}} \\frac{{(x+h)^2 - x^2}}{{h}} = 2x</script>
<p>KaTeX writes <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>e</mi>
 </mrow><annotation encoding="application/x-tex">e^{{i\\pi}}</annotation></semantics></math>
 </span><span class="katex-html" aria-hidden="true"><span class="base">GLYPHS</span></span>
 </span> for Euler. {SECOND}</p>
</main><footer>&copy; Wiki</footer></body></html>"""


def test_formulas_read_as_their_tex():
    """MathML and MathJax's TeX scripts reach the text as TeX (they were dropped, leaving
    "the derivative of is"); KaTeX's rendered copy is not read a second time."""
    text = main_text(FORMULAS)
    assert text == join_main_text(segment_html(FORMULAS))
    assert "The derivative of $x^{2}$ is 2x." in text  # Wikipedia's alttext; bare MathML
    assert "the same is $\\frac{d}{dx} x^2 = 2x$ and" in text
    assert "\n\n$$\\lim_{h \\to 0} \\frac{(x+h)^2 - x^2}{h} = 2x$$\n\n" in text  # own line
    assert "KaTeX writes $e^{i\\pi}$ for Euler." in text and "GLYPHS" not in text
    # the formula on its own line is a block of its own, where it stood
    blocks = segment_html(FORMULAS)
    at = next(i for i, b in enumerate(blocks) if b.text.startswith("$$"))
    assert blocks[at - 1].text.endswith("on its own line:")


def _in_a_page(html: str) -> str:
    return f"<html><body><p>{ARTICLE}</p><p>{SECOND} {html} and so on.</p></body></html>"


@pytest.mark.parametrize(
    ("formula", "read"),
    [
        ("<math alttext='a\x01b'></math>", "$a b$"),  # no XML text: was a ValueError
        ("<math alttext='a&#1;b'></math>", "$a b$"),
        ("<script type='math/tex'>a\x01b</script>", "$a b$"),
        ("<math alttext='&#xE001;x&#xE002;'></math>", "$x$"),  # the walk's own markers
        ("<MATH ALTTEXT='UP'><mi>U</mi></MATH>", "$UP$"),
        (
            "<math alttext=' '><annotation encoding='application/x-tex'>E=mc^2</annotation></math>",
            "$E=mc^2$",
        ),
        ("<math alttext='{\\displaystyle a}+{b}'></math>", "${\\displaystyle a}+{b}$"),
        ("<math alttext='$x$'></math>", "$x$"),
        ("<script type='math/tex'>% <![CDATA[\na<b\n%]]></script>", "$a<b$"),
        ("<math display='block' alttext='E=mc^2'></math> which", "$$E=mc^2$$ which"),  # in place
        (
            "<math alttext='" + "a+" * 200 + "b'><mi>z</mi></math>",
            "and so on",
        ),
        (
            "<math><mi>" + "z " * 200 + "</mi></math>",
            "and so on",
        ),  # its text: too long too  # too long: dropped
    ],
)
def test_formulas_the_way_pages_write_them(formula: str, read: str) -> None:
    page = _in_a_page(f"with {formula}")
    text = main_text(page)
    assert text == join_main_text(segment_html(page))
    assert f"with {read}" in text, text[-120:]


def test_katex_without_mathml_is_read_as_rendered() -> None:
    """KaTeX's rendered spans are dropped only beside the MathML copy they duplicate."""
    page = _in_a_page(
        "<span class='katex'><span class='katex-html'>E=m</span></span> and "
        "<math alttext='y'></math>"
    )
    assert "E=m and $y$" in main_text(page)


def test_marker_characters_written_as_references_do_not_break_the_walk():
    page = (
        f"<html><body><p>{ARTICLE} &#xE001; and &#xE002;&#xE003; x</p><p>{SECOND}</p></body></html>"
    )
    text = main_text(page)  # was a ValueError from the marker stream
    assert "and x" in text and SECOND in text and not MARKERS.search(text)
    link_only = f"<html><body><p>{ARTICLE} &#xE003; then more</p></body></html>"
    assert main_text(link_only) == f"{ARTICLE} then more"


def test_display_formulas_in_one_sentence_stay_there():
    """Each asks whether its element holds loose text; the answer is kept per element (asked
    for each of 20,000 formulas over one paragraph's children, it was quadratic)."""
    page = f"<html><body><p>{ARTICLE} " + "so <math display='block' alttext='x'></math> " * 20_000
    (block,) = segment_html(page + "end.</p></body></html>")  # (signal or not: the model's)
    assert block.text.count(" $$x$$ ") == 20_000 and block.text.endswith("so $$x$$ end.")


def test_cells_wrapped_in_inline_elements_read_the_same_both_ways():
    a, b, c, d = (
        "The lower mill ground wheat for the town's bakers until the flood of 1902.",
        "The upper mill sawed timber brought down the river on barges each spring.",
        "The fulling mill beat woollen cloth with wooden hammers driven by the wheel.",
        "The paper mill made rag paper for the county's printers for sixty years.",
    )
    page = (
        f"<html><body><p>{ARTICLE}</p><table><tr><td>{a}</td><code><td>{b}</td></code></tr>"
        f"</table><table><tr><my-cell><td>{c}</td></my-cell><my-cell><td>{d}</td></my-cell></tr>"
        f"</table><p>{SECOND}</p></body></html>"
    )
    text = main_text(page)
    assert text == join_main_text(segment_html(page))
    assert f"{a} | {b}\n\n{c} | {d}" in text


def test_preformatted_text_in_linear_time_and_without_control_characters():
    assert preformatted(" " * 200_000 + "x") == " " * 200_000 + "x"  # the old pattern: minutes
    assert preformatted("a\x0bb\x0cc\u2028d\x85e \u00a0\r\n\r\nf  ") == "a b c\nd\ne\n\nf"


def test_blocks_carry_label_confidence_tag_and_features():
    blocks = segment_html(PAGE.encode("utf-8"), url="https://example.org/mills")
    assert blocks
    for b in blocks:
        assert b.label in ("signal", "boilerplate")
        assert 0.5 <= b.confidence <= 1.0
        assert b.tag
        assert 10 <= len(b.features) <= 40
        assert {"words", "link_density", "stopword_ratio", "block_position"} <= set(b.features)
        assert all(isinstance(v, float) for v in b.features.values())
    nav = next(b for b in blocks if b.text == "Weather")
    assert nav.features.get("in:nav") == 1.0
    assert nav.features["link_density"] == 1.0


def test_locators_are_stable_and_resolve_to_the_block_element():
    first = segment_html(PAGE)
    again = segment_html(PAGE)
    assert [b.locator for b in first] == [b.locator for b in again]
    assert len({b.locator for b in first}) == len(first)
    tree = lxml.html.fromstring(PAGE).getroottree()
    for b in first:
        found = tree.xpath(b.locator)
        assert len(found) == 1, b.locator
        assert found[0].tag == b.tag
        assert b.text.split()[0] in found[0].text_content()


def test_script_and_style_never_reach_a_block():
    for b in segment_html(PAGE):
        assert "secretScriptText" not in b.text
        assert "display: flex" not in b.text


def test_model_version_is_set():
    assert MODEL_VERSION and MODEL_VERSION != "unversioned"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes(range(256)) * 64, "NUL bytes"),
        (b"\x1f\x8b\x08\x00" + bytes(2000), "gzip"),
        (b"%PDF-1.7\n" + bytes(range(1, 256)) * 20, "PDF"),
        (b"\x89PNG\r\n\x1a\n" + bytes(500), "PNG"),
    ],
)
def test_binary_input_raises_a_clear_error(data, reason):
    with pytest.raises(SegmentError, match=reason):
        segment_html(data)


def test_text_without_markup_is_not_html():
    with pytest.raises(SegmentError, match="no markup"):
        segment_html("just some words, no tags at all")


@pytest.mark.parametrize("page", ["", "   \n ", b"", "<html><body></body></html>", "<p> </p>"])
def test_empty_pages_give_no_blocks(page):
    assert segment_html(page) == []
    assert main_text(page) == ""


def test_deep_nesting_is_refused_fast_without_recursion_error():
    deep = "<html><body>" + "<div>" * 100_000 + "deep text" + "</div>" * 100_000 + "</body></html>"
    start = time.perf_counter()
    with pytest.raises(SegmentError, match="nested deeper"):
        segment_html(deep)
    assert time.perf_counter() - start < 5


def test_nesting_within_the_limit_segments():
    page = (
        "<html><body>" + "<div>" * 1500 + f"<p>{ARTICLE}</p>" + "</div>" * 1500 + "</body></html>"
    )
    blocks = segment_html(page)
    assert any("barges carried grain" in b.text for b in blocks)


def test_invalid_utf8_bytes_are_replaced_not_fatal():
    page = PAGE.replace("museum", "musée").encode("utf-8").replace(b"slowly", b"slow\xff\xfely")
    text = main_text(page)
    assert "musée" in text
    assert "barges carried grain" in text
    assert "\ufffd" in text


def test_undeclared_legacy_bytes_read_as_cp1252():
    page = f"<html><body><p>Caf\xe9 cr\xe8me. {ARTICLE}</p></body></html>".encode("cp1252")
    assert "Café crème" in main_text(page)


def test_declared_legacy_charset_is_honoured():
    page = (
        '<html><head><meta charset="windows-1252"></head><body>'
        f"<p>Caf\xe9 cr\xe8me. {ARTICLE}</p></body></html>"
    ).encode("cp1252")
    assert "Café crème" in main_text(page)


def test_a_two_megabyte_single_line_page_works():
    para = f"<p>{ARTICLE} {SECOND}</p>"
    links = "".join(f'<li><a href="/{i}">Link {i}</a></li>' for i in range(200))
    body = (f"<div class='post'>{para * 4}</div><ul class='menu'>{links}</ul>") * 500
    page = f"<html><body>{body}</body></html>"
    assert "\n" not in page and len(page) > 2_000_000
    start = time.perf_counter()
    blocks = segment_html(page)
    assert time.perf_counter() - start < 20
    assert sum(b.is_signal for b in blocks) > 0
    assert any(b.is_signal and "barges" in b.text for b in blocks)


def test_one_huge_text_node_is_kept():
    page = "<html><body><p>" + "word " * 2_500_000 + "</p></body></html>"  # 12.5 MB in one node
    blocks = segment_html(page)
    assert len(blocks) == 1 and blocks[0].n_words == 2_500_000


def test_marker_characters_in_the_page_do_not_confuse_the_walk():
    page = f"<html><body><p>odd \ue001\ue002 chars</p><p>{ARTICLE}</p></body></html>"
    texts = [b.text for b in segment_html(page)]
    assert texts[0] == "odd chars"


def test_noscript_content_is_read():
    page = f"<html><body><noscript><div><p>{ARTICLE}</p></div></noscript></body></html>"
    assert "barges carried grain" in main_text(page)


def test_labels_are_signal_or_boilerplate_constants():
    assert {b.label for b in segment_html(PAGE)} <= {SIGNAL, "boilerplate"}


def test_segmenting_from_threads_gives_the_same_blocks():
    from concurrent.futures import ThreadPoolExecutor

    pages = [PAGE, PAGE.replace("river", "canal"), PAGE.encode("utf-8")] * 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(main_text, pages))
    assert results == [main_text(p) for p in pages]


def test_tree_ensemble_matches_a_hand_evaluated_dump():
    import numpy as np

    from studio.segment.model import from_lightgbm_dump

    # tree 0: x0 <= 0.5 ? leaf -1.0 : (x1 <= 2.0 ? 0.5 : 2.0)   (a leaf above the full depth)
    # tree 1: a single leaf 0.25
    dump = {
        "tree_info": [
            {
                "tree_structure": {
                    "split_feature": 0,
                    "threshold": 0.5,
                    "decision_type": "<=",
                    "left_child": {"leaf_value": -1.0},
                    "right_child": {
                        "split_feature": 1,
                        "threshold": 2.0,
                        "decision_type": "<=",
                        "left_child": {"leaf_value": 0.5},
                        "right_child": {"leaf_value": 2.0},
                    },
                }
            },
            {"tree_structure": {"leaf_value": 0.25}},
        ]
    }
    model = from_lightgbm_dump(dump, depth=3)
    X = np.array([[0.0, 9.0], [0.5, 0.0], [0.6, 2.0], [0.6, 2.5], [1.0, -1.0]], dtype=np.float32)
    expected = np.array([-1.0, -1.0, 0.5, 2.0, 0.5]) + 0.25
    np.testing.assert_allclose(model.raw_score(X), expected)
    np.testing.assert_allclose(model.predict(X), 1 / (1 + np.exp(-expected)))


def test_model_file_loads_without_pickle():
    import numpy as np

    from studio.paths import model

    with np.load(model("segmenter", "model.npz"), allow_pickle=False) as z:
        assert {"feature", "threshold", "leaf", "shape", "bias"} <= set(z.files)
    assert model("segmenter", "model.npz").stat().st_size < 5_000_000


def test_curators_corrections_become_training_pages(tmp_path: Path) -> None:
    """A block a curator flipped in the studio is labelled their way when the segmenter is
    retrained with --corrections PROJECT; the blocks they left alone keep the model's labels."""
    from studio.documents import relabel_block
    from studio.ingest.pipeline import import_paths
    from studio.project import Project
    from studio.segment.train import project_pages

    sample = Path(__file__).resolve().parents[2] / "resources" / "sample" / "photosynthesis.html"
    project = Project.open(tmp_path / "p")
    with project.store() as store:
        import_paths(store, [sample])
        blocks = segment_html(sample.read_bytes())
        flipped = next(i for i, b in enumerate(blocks) if b.is_signal)
        relabel_block(store, 1, blocks[flipped].locator, "boilerplate", annotator="ana")
    (page,) = project_pages(project.root)
    assert page.page_type == "curated" and len(page.y) == len(blocks)
    assert page.y[flipped] == 0
    others = [i for i in range(len(blocks)) if i != flipped]
    assert [page.y[i] for i in others] == [float(blocks[i].is_signal) for i in others]
    assert blocks[flipped].text not in page.main_content


def test_a_block_is_relabelled_only_on_the_page_the_curator_was_shown(tmp_path: Path) -> None:
    """Another process may change a stored page while it is open: the flip then stores
    nothing and says why, rather than landing on whatever block sits at the locator now."""
    import zlib

    from studio.documents import PageChanged, load_page, relabel_block
    from studio.ingest.pipeline import import_paths
    from studio.project import Project

    sample = Path(__file__).resolve().parents[2] / "resources" / "sample" / "photosynthesis.html"
    with Project.open(tmp_path / "p").store() as store:
        import_paths(store, [sample])
        block = next(b for b in load_page(store, 1).blocks if b.is_signal)
        other = sample.read_text("utf-8").replace(block.text[:20], "Something else entirely")
        store.conn.execute(
            "UPDATE document_raw SET raw = ? WHERE doc_id = 1", (zlib.compress(other.encode()),)
        )
        with pytest.raises(PageChanged, match="no longer reads as shown"):
            relabel_block(store, 1, block.locator, "boilerplate", shown=block.text)
        with pytest.raises(PageChanged, match="has no block at /html/nowhere now"):
            relabel_block(store, 1, "/html/nowhere", "boilerplate")
        store.conn.execute("UPDATE document_raw SET raw = ? WHERE doc_id = 1", (b"garbage",))
        page = load_page(store, 1)  # opens, and says why there is nothing to show
        assert page.blocks == [] and "stored page of document 1 cannot be read" in (
            page.segment_error or ""
        )
        with pytest.raises(PageChanged, match="cannot relabel a block of document 1"):
            relabel_block(store, 1, block.locator, "boilerplate", shown=block.text)
        assert store.corrections(1) == {}


def test_walk_reads_text_links_breaks_and_dropped_tags_as_a_reader_would():
    from studio.segment import dom

    page = (
        "<html><body>Lead text <b>bold <i>nested</i></b><div>one<br>two <a href='/x'>link"
        " <span>inside</span></a> tail<script>var hidden = 1;</script> after script"
        "<p>para <a href='/y'>second</a></p> div tail</div><svg><text>drawn</text></svg>"
        "end</body></html>"
    )
    table = dom.walk(dom.parse(page))
    texts = dict(zip(table.tags, table.texts, strict=True))
    assert table.tags == ["body", "div", "p"]
    assert table.parent.tolist() == [-1, 0, 1] and table.depth.tolist() == [0, 1, 2]
    assert texts["body"] == "Lead text bold nestedend"
    assert texts["div"] == "one\ntwo link inside tail after script div tail"
    assert texts["p"] == "para second"
    assert table.link_chars.tolist() == [0.0, len("link inside"), len("second")]
    assert table.n_links.tolist() == [0, 1, 1]


def test_a_page_without_a_body_is_read_from_its_root():
    from studio.segment import dom

    table = dom.walk(dom.parse("<html><head><title>Only a title</title></head></html>"))
    assert table.tags == ["html"] and table.texts == [""]


def test_deep_nesting_within_the_limit_segments_in_a_worker_thread():
    from concurrent.futures import ThreadPoolExecutor

    depth = 2000
    page = (
        "<html><body>" + "<div>" * depth + f"<p>{ARTICLE}</p>" + "</div>" * depth + "</body></html>"
    )
    with ThreadPoolExecutor(1) as pool:
        in_thread = pool.submit(segment_html, page).result()
    assert [b.text for b in in_thread] == [b.text for b in segment_html(page)]
    assert any("barges carried grain" in b.text for b in in_thread)


def test_decoding_keeps_the_prefix_with_the_best_expected_f1():
    p = np.array([0.95, 0.7, 0.2, 0.1])
    words = np.array([120.0, 40.0, 8.0, 3.0])
    keep, threshold = choose_signal(p, words)
    assert keep.tolist() == [True, True, False, False]
    assert threshold == pytest.approx(0.7)
    confidence = label_confidence(p, threshold)
    assert confidence[1] == pytest.approx(0.5) and (confidence[keep] >= 0.5).all()


def test_decoding_keeps_nothing_when_no_block_is_likely_signal():
    """A shell page: every block doubtful. The chance that none is signal (0.8 * 0.75 * 0.9 =
    0.54) beats the best expected F1 of keeping some (0.37): the page gets no main text, and its
    likeliest block sits on the edge."""
    p = np.array([0.2, 0.25, 0.1])
    words = np.array([10.0, 20.0, 5.0])
    keep, threshold = choose_signal(p, words)
    assert not keep.any()
    confidence = label_confidence(p, threshold)
    assert (confidence < 0.5).all() and confidence[1] == pytest.approx(0.5, abs=1e-4)
    # one likely block among the same doubtful ones is kept
    keep, _ = choose_signal(np.array([0.2, 0.25, 0.1, 0.8]), np.array([10.0, 20.0, 5.0, 60.0]))
    assert keep.tolist() == [False, False, False, True]


# a shop page that builds its content with JavaScript: the static HTML is the frame only
SHELL = """<!doctype html><html lang="en"><head><title>Wool Jackets | Example Outfitters</title>
<script src="/static/app.4f1c.js" defer></script></head>
<body><a class="skip-link" href="#main">Skip to content</a>
<header class="site-header">
 <div class="cart-drawer"><span>Cart (0)</span><p>Subtotal</p><p>$0 USD</p>
  <p>Shipping calculated at checkout</p>
  <a href="/cart">Checkout</a> <a href="/cart">View Cart</a></div>
 <nav class="main-nav"><ul><li><a href="/shop">Shop</a></li>
  <li><a href="/trade-in">Trade In</a></li><li><a href="/stories">Stories</a></li>
  <li><a href="/stores">Stores</a></li></ul></nav>
 <form class="search" role="search"><label>What are you looking for?</label>
  <input name="q"></form></header>
<main id="main"><div id="root" class="product-grid"><div class="spinner">Loading...</div></div>
</main>
<footer class="site-footer">
 <div class="newsletter"><h3>Subscribe</h3><p>Offers, repair tips, events and stories. By
  opting in, you agree to receive our newsletter; you can unsubscribe at any time.</p></div>
 <div class="help"><h3>Need Help?</h3><ul><li><a href="/status">Order Status</a></li>
  <li><a href="/faq">FAQs</a></li><li><a href="/contact">Contact Us</a></li>
  <li><a href="/returns">Returns &amp; Exchanges</a></li></ul></div>
 <div class="legal"><ul><li><a href="/privacy">Privacy Policy</a></li>
  <li><a href="/terms">Terms of Use</a></li>
  <li><a href="/dnsmpi">Do not sell or share my personal information</a></li></ul>
  <p>&copy; 2025 Example Outfitters, Inc. All Rights Reserved.</p></div></footer>
</body></html>"""


def test_a_javascript_shell_has_no_main_text():
    blocks = segment_html(SHELL)
    assert len(blocks) > 15
    assert all(b.label == BOILERPLATE for b in blocks)
    assert main_text(SHELL) == ""
    # the likeliest block sits on the page's edge; the footer is sure
    assert min(b.confidence for b in blocks) == pytest.approx(0.5, abs=0.01)
    assert next(b for b in blocks if "All Rights Reserved" in b.text).confidence > 0.9
