"""Readers: every format with its provenance, sniffing by content, hostile files, streaming."""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import re
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from studio.ingest import (
    HTML,
    TEXT,
    IngestError,
    IngestOptions,
    RawDocument,
    RecordError,
    iter_input_files,
    read_file,
    sniff_format,
)
from studio.progress import Cancelled, Task
from tests.fixtures.corpus import lesson_text, page_html, write_mixed_corpus
from tests.fixtures.hostile import write_hostile_files

Items = list[RawDocument | RecordError]


def read_all(path: Path, options: IngestOptions | None = None) -> Items:
    return list(read_file(path, options))


def docs(items: Items) -> list[RawDocument]:
    return [item for item in items if isinstance(item, RawDocument)]


def errors(items: Items) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def documents_and_peak(path: Path) -> tuple[int, int]:
    """How many documents ``read_file`` yields, and the peak of Python's allocations meanwhile."""
    tracemalloc.start()
    try:
        count = sum(isinstance(item, RawDocument) for item in read_file(path))
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_mixed_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_hostile_files(tmp_path_factory.mktemp("hostile"))


# --- finding files ----------------------------------------------------------------------------


def test_folders_expand_sorted_skipping_hidden_and_symlink_loops(tmp_path: Path) -> None:
    for name in ("b.html", "a/z.txt", "a/c.txt", ".hidden.txt", ".git/config", "a/.cache/x.txt"):
        write(tmp_path / "in" / name, b"x")
    os.symlink(tmp_path / "in", tmp_path / "in" / "a" / "loop")
    explicit_hidden = write(tmp_path / ".given.txt", b"x")
    found = list(iter_input_files([tmp_path / "in", explicit_hidden, tmp_path / "in" / "b.html"]))
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["in/a/c.txt", "in/a/z.txt", "in/b.html", ".given.txt"]


def test_a_missing_file_is_yielded_and_fails_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "gone.html"
    assert list(iter_input_files([missing])) == [missing]
    with pytest.raises(IngestError, match="cannot read file: No such file"):
        read_all(missing)


# --- every format, with provenance ------------------------------------------------------------


def test_mixed_corpus_formats_by_content(corpus: dict[str, Path]) -> None:
    expected = {
        "html": "html",
        "html_gz": "html",
        "warc": "warc",
        "arc": "arc",
        "jsonl": "jsonl",
        "jsonl_gz": "jsonl",
        "jsonl_zst": "jsonl",
        "parquet": "parquet",
        "txt": "text",
        "md": "text",
        "zip": "zip",
        "tar_gz": "tar",
        "sub_html": "html",
        "sub_txt": "text",
    }
    assert {key: sniff_format(path) for key, path in corpus.items()} == expected


def test_every_file_of_the_corpus_reads_without_errors(corpus: dict[str, Path]) -> None:
    found = list(iter_input_files([corpus["html"].parent]))
    assert sorted(found) == sorted(corpus.values())
    counts = {key: len(read_all(path)) for key, path in corpus.items()}
    assert all(not errors(read_all(path)) for path in corpus.values())
    assert counts["warc"] == 2 and counts["arc"] == 2 and counts["zip"] == 4
    assert sum(counts.values()) >= 20


def test_html_pages_plain_and_gzip(corpus: dict[str, Path]) -> None:
    [page] = read_all(corpus["html"])
    assert page.kind == HTML and page.title == "How Photosynthesis Works | Open Study Notes"
    assert page.content == page_html("photosynthesis") and page.locator == {} and not page.warnings
    [gz] = read_all(corpus["html_gz"])
    assert gz.content == page_html("pythagoras")


def test_warc_yields_html_responses_with_seekable_offsets(corpus: dict[str, Path]) -> None:
    pages = read_all(corpus["warc"])
    assert [p.url for p in pages] == [
        "https://learn.example.com/lessons/binary-search",
        "https://learn.example.com/lessons/water-cycle",
    ]
    assert [p.fetch_date for p in pages] == ["2024-05-17T12:00:00Z", "2024-05-17T12:00:01Z"]
    assert pages[0].locator["record_id"] == "<urn:uuid:00000000-0000-4000-8000-000000000001>"
    assert pages[1].content == page_html("water-cycle")
    data = corpus["warc"].read_bytes()
    for page in pages:
        record = zlib.decompressobj(31).decompress(data[page.locator["offset"] :])
        assert record.startswith(b"WARC/1") and page.url.encode() in record


def test_arc_yields_responses_with_iso_dates(corpus: dict[str, Path]) -> None:
    pages = read_all(corpus["arc"])
    assert [p.url for p in pages] == [
        "http://science.example.net/cell-division",
        "http://science.example.net/newton",
    ]
    assert pages[0].fetch_date == "2024-05-17T12:01:00Z"
    assert pages[1].content == page_html("newton") and pages[1].kind == HTML
    data = corpus["arc"].read_bytes()
    member = zlib.decompressobj(31).decompress(data[pages[1].locator["offset"] :])
    assert member.startswith(b"http://science.example.net/newton ")


def test_jsonl_plain_gzip_and_zstd(corpus: dict[str, Path]) -> None:
    notes = read_all(corpus["jsonl"])
    assert [n.locator for n in notes] == [{"line": 1}, {"line": 2}, {"line": 3}]
    assert notes[2].kind == TEXT and notes[2].content == lesson_text("newton")
    assert notes[0].url == "https://notes.example.org/circles"
    pages = read_all(corpus["jsonl_gz"])
    assert [p.kind for p in pages] == [HTML, HTML]
    assert pages[0].title == "The Water Cycle | Learning Hub"
    zst = read_all(corpus["jsonl_zst"])
    assert [z.content for z in zst] == [lesson_text("binary-search"), lesson_text("volcans")]


def test_parquet_rows(corpus: dict[str, Path]) -> None:
    rows = read_all(corpus["parquet"])
    assert [r.locator for r in rows] == [{"row": 0}, {"row": 1}, {"row": 2}]
    assert rows[0].title == "The Water Cycle" and rows[0].url == "https://notes.example.org/water"
    assert rows[1].content == lesson_text("cell-division") and rows[1].kind == TEXT


def test_text_and_markdown(corpus: dict[str, Path]) -> None:
    [txt] = read_all(corpus["txt"])
    assert txt.kind == TEXT and txt.content.startswith("Prime numbers")
    [md] = read_all(corpus["md"])
    assert md.title == "Adding Fractions with Different Denominators"


def test_archives_name_their_members(corpus: dict[str, Path]) -> None:
    zipped = read_all(corpus["zip"])
    assert [z.locator for z in zipped] == [
        {"member": "pages/photosynthesis.html"},
        {"member": "pages/newton.md"},
        {"member": "data/notes.jsonl", "line": 1},
        {"member": "data/notes.jsonl", "line": 2},
    ]
    # the exact duplicate the corpus promises
    assert zipped[0].content == read_all(corpus["html"])[0].content
    tarred = read_all(corpus["tar_gz"])
    assert [t.locator["member"] for t in tarred] == [
        "site/fractions.html",
        "site/states-of-matter.txt",
    ]
    assert [t.kind for t in tarred] == [HTML, TEXT]


def test_nested_archives_and_compressed_members(tmp_path: Path) -> None:
    page = page_html("newton").encode()
    inner_tar = _tar(
        {"a.html": page, "notes.jsonl.gz": gzip.compress(b'{"text": "hello there"}\n')}
    )
    table = pa.table({"text": ["a parquet row"]})
    parquet = io.BytesIO()
    pq.write_table(table, parquet)
    outer = write(
        tmp_path / "outer.zip",
        _zip({"inner.tar": inner_tar, "rows.parquet": parquet.getvalue(), "x/b.html": page}),
    )
    items = read_all(outer)
    assert not errors(items)
    assert [i.locator for i in items] == [
        {"member": "inner.tar!a.html"},
        {"member": "inner.tar!notes.jsonl.gz", "line": 1},
        {"member": "rows.parquet", "row": 0},
        {"member": "x/b.html"},
    ]


def test_archives_nest_only_so_deep(tmp_path: Path) -> None:
    data = page_html("newton").encode()
    for level in range(4):
        data = _zip({f"level{level}.zip" if level else "page.html": data})
    items = read_all(write(tmp_path / "deep.zip", data))
    [error] = errors(items)
    assert error.reason == "archive nested more than 3 levels deep; skipped"
    assert error.locator == {"member": "level3.zip!level2.zip!level1.zip"}
    assert docs(read_all(tmp_path / "deep.zip", IngestOptions(max_archive_depth=4)))


# --- sniffing by content ----------------------------------------------------------------------


def test_content_wins_over_the_name(tmp_path: Path) -> None:
    page = page_html("water-cycle").encode()
    html_as_txt = write(tmp_path / "page.txt", page)
    assert sniff_format(html_as_txt) == "html"
    assert read_all(html_as_txt)[0].kind == HTML
    gz_jsonl = write(tmp_path / "export.data", gzip.compress(b'{"text": "hello"}\n' * 3))
    assert sniff_format(gz_jsonl) == "jsonl"
    assert [d.content for d in read_all(gz_jsonl)] == ["hello"] * 3
    assert sniff_format(write(tmp_path / "archive.bin", _zip({"a.html": page}))) == "zip"
    assert sniff_format(write(tmp_path / "lines.txt", b'{"text": "x"}\n')) == "jsonl"
    assert sniff_format(write(tmp_path / "notes", b"just some notes\n")) == "text"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("table.csv", b"a,b\n1,2\n", "a file named .csv holds text that is not HTML"),
        ("data.parquet", b"not parquet at all", "does not start with Parquet's PAR1 magic bytes"),
        ("image.txt", b"\x89PNG\r\n\x1a\n" + bytes(100), "binary content (NUL bytes)"),
        ("ctl.md", bytes(range(1, 32)) * 10, "control characters in a file named .md"),
        ("list.json", b'["a", "b"]', "a file named .json that holds neither JSON lines"),
        ("a.html.gz", b"\x1f\x8b\x08\x00garbage", "truncated or corrupt gzip stream"),
        ("b.html.gz", b"\x1f\x8b\x08\x00" + bytes(6) + b"garbage", "corrupt gzip data at the"),
        ("empty.txt.gz", gzip.compress(b""), "empty file"),
    ],
)
def test_unsupported_content_is_refused(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(IngestError, match=re.escape(reason)):
        sniff_format(path)
    with pytest.raises(IngestError, match=re.escape(reason)):
        read_all(path)


# --- charsets ---------------------------------------------------------------------------------


def test_html_charsets(tmp_path: Path) -> None:
    russian = "<html><head><meta charset='windows-1251'><title>Привет</title></head></html>"
    assert read_all(write(tmp_path / "ru.html", russian.encode("cp1251")))[0].title == "Привет"
    equiv = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
        "</head><body><p>\x93quoted\x94 caf\xe9</p></body></html>"
    ).encode("latin-1")
    [page] = read_all(write(tmp_path / "equiv.html", equiv))
    assert "“quoted” café" in page.content and not page.warnings  # latin-1 means windows-1252
    utf16 = "<html><body><p>naïve</p></body></html>".encode("utf-16")
    assert "naïve" in read_all(write(tmp_path / "bom.html", utf16))[0].content
    [legacy] = read_all(write(tmp_path / "old.html", b"<html><body>caf\xe9</body></html>"))
    assert "café" in legacy.content
    assert legacy.warnings == ["no charset declared and not valid UTF-8; decoded as windows-1252"]
    # one stray byte in a UTF-8 page: the page stays UTF-8 (not 'cafÃ©' all through)
    stray = "<html><body><p>café, crème, naïve</p>".encode() + b"<p>x\xffy</p></body></html>"
    [utf8] = read_all(write(tmp_path / "stray.html", stray))
    assert "café, crème, naïve" in utf8.content and "x\ufffdy" in utf8.content
    assert utf8.warnings == ["1 byte sequence not valid UTF-8, replaced by U+FFFD"]


def test_text_must_be_utf8(tmp_path: Path) -> None:
    assert read_all(write(tmp_path / "bom.txt", "\ufeffhello".encode()))[0].content == "hello"
    with pytest.raises(IngestError, match="invalid UTF-8 at byte 3"):
        read_all(write(tmp_path / "latin.txt", b"caf\xe9"))


# --- JSON lines -------------------------------------------------------------------------------


def test_jsonl_records_and_their_errors(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "plain", "html": "<p>preferred</p>", "url": "u", "date": "2024"}),
        "",
        json.dumps({"title": "no body"}),
        "[1, 2]",
        json.dumps({"text": "x" * 5000}),
        json.dumps({"text": 42}),
        json.dumps({"content": "crlf line"}) + "\r",
    ]
    path = write(tmp_path / "mixed.jsonl", "\n".join(lines).encode())
    items = read_all(path, IngestOptions(max_document_bytes=1000))
    first = items[0]
    assert isinstance(first, RawDocument) and first.kind == HTML
    assert (first.content, first.url, first.fetch_date) == ("<p>preferred</p>", "u", "2024")
    assert [e.reason for e in errors(items)] == [
        "line 3: no text field (looked for text, content, raw_content, body, html, raw_html)",
        "line 4: a JSON list, not an object",
        "line 5: document of 5,012 bytes is larger than the 1,000 bytes limit",
        "line 6: field 'text' holds int, not text",
    ]
    assert items[-1].locator == {"line": 7} and items[-1].content == "crlf line"
    deep = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"  # failed the whole file, untold
    path = write(tmp_path / "deep.jsonl", f'{deep}\n{{"text": "after"}}\n'.encode())
    items = read_all(path)
    assert [e.reason for e in errors(items)] == ["line 1: JSON nested too deeply to read"]
    assert [d.content for d in docs(items)] == ["after"]


def test_a_json_array_of_records_and_its_errors(tmp_path: Path) -> None:
    """A .json file holding an array of records (as many tools export a dataset) imports as
    JSON lines do, item by item; a pretty-printed one too."""
    records = [
        {"text": "first", "url": "https://a.edu/1", "date": "2024"},
        {"title": "no body"},
        [1, 2],
        {"html": "<p>second</p>"},
        {"text": "x" * 5000},
    ]
    for name, data in (
        ("export.json", json.dumps(records)),
        ("pretty.json", json.dumps(records, indent=2)),
        ("bom.json", "\ufeff" + json.dumps(records)),
    ):
        path = write(tmp_path / name, data.encode())
        assert sniff_format(path) == "json"
        items = read_all(path, IngestOptions(max_document_bytes=1000))
        assert [(d.content, d.locator) for d in docs(items)] == [
            ("first", {"item": 1}),
            ("<p>second</p>", {"item": 4}),
        ]
        assert docs(items)[0].url == "https://a.edu/1"
        assert [e.reason for e in errors(items)] == [
            "item 2: no text field (looked for text, content, raw_content, body, html, raw_html)",
            "item 3: a JSON list, not an object",
            "item 5: document of 5,000 bytes is larger than the 1,000 bytes limit",
        ]
    gz = write(tmp_path / "export.json.gz", gzip.compress(json.dumps(records[:1]).encode()))
    assert [d.content for d in docs(read_all(gz))] == ["first"]
    assert read_all(write(tmp_path / "empty.json", b"[ ]")) == []


def test_pretty_printed_json_objects_import_whole(tmp_path: Path) -> None:
    """One record written with json.dump(indent=2), or several after one another as ``jq .``
    prints them, is one document each: read as JSON lines, every line of it failed."""
    first = {"text": "first page", "url": "https://a.edu/1"}
    second = {"html": "<p>second</p>"}
    one = write(tmp_path / "record.json", json.dumps(first, indent=2).encode())
    assert sniff_format(one) == "json"
    items = read_all(one)
    assert [(d.content, d.url, d.locator) for d in docs(items)] == [
        ("first page", "https://a.edu/1", {"item": 1})
    ]
    assert errors(items) == []
    stream = "\n".join(json.dumps(r, indent=4) for r in (first, {"title": "no body"}, second))
    items = read_all(write(tmp_path / "jq.json", stream.encode()))
    assert [d.content for d in docs(items)] == ["first page", "<p>second</p>"]
    assert [e.reason for e in errors(items)] == [
        "item 2: no text field (looked for text, content, raw_content, body, html, raw_html)"
    ]
    cut = json.dumps(first, indent=2) + "\n" + json.dumps(second, indent=2)[:-3]
    items = read_all(write(tmp_path / "cut.json", cut.encode()))
    assert [d.content for d in docs(items)] == ["first page"]
    assert [e.reason for e in errors(items)] == [
        "item 2: the JSON ends early (the file is cut short)"
    ]
    # a JSON lines file keeps its reader: a broken line fails alone, the lines after it import
    lines = write(tmp_path / "lines.json", b'{"text": "a"}\n{"text": b}\n{"text": "c"}\n')
    assert sniff_format(lines) == "jsonl"
    assert [d.content for d in docs(read_all(lines))] == ["a", "c"]


@pytest.mark.parametrize(
    ("data", "kept", "reason"),
    [
        (b'[{"text": "a"}, {"text": "b"', ["a"], "item 2: the JSON ends early"),
        (b'[{"text": "a"}, {"text": "b"}', ["a", "b"], "item 3: the JSON ends early"),
        (b'[{"text": "a"}, {"text": "b"},', ["a", "b"], "item 3: the JSON ends early"),
        (b'[{"text": "a"} {"text": "b"}]', ["a"], "item 2: expected ',' or ']' after item 1"),
        (b'[{"text": "a"}, {"text": b}]', ["a"], "item 2: invalid JSON (Expecting value)"),
        (
            b'[{"text": "a"}, {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
            ["a"],
            "item 2: JSON nested too deeply to read",
        ),
        # malformed early in a long file: said at once, not read on to the size limit
        (
            b'[{"text": "a"}, {"text": b}, ' + b'{"text": "c"}, ' * 200_000 + b"]",
            ["a"],
            "item 2: invalid JSON (Expecting value)",
        ),
        (b'[{"text": "a"}, {"text": "\xff"}, {"text": "c"}]', ["a", "c"], "item 2: invalid UTF-8"),
        (b'[{"text": "a"}, {"text": "' + b"y" * 3000 + b'"}]', ["a"], "item 2: document of 3,000"),
        (
            b'[{"text": "a"}, {"text": "' + b"y" * 1_500_000 + b'"}, {"text": "c"}]',
            ["a"],
            "item 2: larger than 1,000 bytes: the rest was not read",
        ),
    ],
)
def test_a_broken_json_array_keeps_the_items_before_the_break(
    tmp_path: Path, data: bytes, kept: list[str], reason: str
) -> None:
    items = read_all(write(tmp_path / "broken.json", data), IngestOptions(max_document_bytes=1000))
    assert [d.content for d in docs(items)] == kept
    [error] = errors(items)
    assert error.reason.startswith(reason), error.reason


def test_memory_stays_flat_on_a_large_json_array(tmp_path: Path) -> None:
    item = json.dumps({"text": "streaming " * 25_000})  # ~250 KB an item
    path = tmp_path / "large.json"
    with path.open("w") as out:
        out.write("[\n" + ",\n".join([item] * 400) + "\n]\n")
    count, peak = documents_and_peak(path)
    assert count == 400
    assert peak < 16_000_000, f"peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"


def test_custom_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.jsonl", b'{"body_md": "# Hi", "source": "https://x"}\n')
    options = IngestOptions(text_fields=("body_md",), url_fields=("source",))
    [doc] = read_all(path, options)
    assert (doc.content, doc.url) == ("# Hi", "https://x")


def test_a_list_or_an_object_is_not_taken_as_an_address_or_a_title(tmp_path: Path) -> None:
    lines = [
        {"text": "a", "url": ["https://x.edu/learn"], "title": {"en": "T"}},
        {"text": "b", "url": ["https://x.edu/learn"], "link": "https://y.org/"},
        {"text": "c", "url": 123, "title": 7},
    ]
    path = write(tmp_path / "typed.jsonl", "\n".join(map(json.dumps, lines)).encode())
    docs = read_all(path, IngestOptions(url_fields=("url", "link")))
    assert [(d.url, d.title) for d in docs] == [
        (None, None),
        ("https://y.org/", None),
        ("123", "7"),
    ]


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_reads_only_the_columns_it_needs(tmp_path: Path, monkeypatch) -> None:
    table = pa.table(
        {
            "html": [b"<p>bytes column</p>", None],
            "text": ["unused", "fallback text"],
            "embedding": [[0.1] * 8, [0.2] * 8],
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    asked: list[list[str]] = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        asked.append(kwargs["columns"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    rows = read_all(path)
    assert asked == [["html", "text"]]
    assert [(r.kind, r.content) for r in rows] == [
        (HTML, "<p>bytes column</p>"),
        (TEXT, "fallback text"),
    ]


def test_parquet_without_a_text_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "n.parquet")
    with pytest.raises(
        IngestError, match=r"no text column \(looked for text, .*\); the file has a, b"
    ):
        read_all(tmp_path / "n.parquet")


# --- WARC details -----------------------------------------------------------------------------


def _warc(records: list[tuple[str, str, bytes]], *, gzip_records: bool = True) -> bytes:
    """(uri, content type or status line, body) → WARC bytes with one response per entry."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=gzip_records)
    for uri, content_type, body in records:
        status = "404 Not Found" if content_type == "404" else "200 OK"
        headers = [("Content-Type", "text/html" if content_type == "404" else content_type)]
        http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
        writer.write_record(
            writer.create_warc_record(uri, "response", payload=io.BytesIO(body), http_headers=http)
        )
    return out.getvalue()


def test_warc_skips_what_is_not_an_html_page(tmp_path: Path) -> None:
    page = page_html("newton").encode()
    data = _warc(
        [
            ("https://a/img.png", "image/png", b"\x89PNG" + bytes(64)),
            ("https://a/missing", "404", b"<html><body>not found</body></html>"),
            ("https://a/unlabelled", "", page),
            ("https://a/blob", "application/octet-stream", b"%PDF-1.4 not a page"),
            (
                "https://a/cp1251",
                "text/html; charset=windows-1251",
                "<p>Привет</p>".encode("cp1251"),
            ),
        ]
    )
    pages = read_all(write(tmp_path / "mixed.warc.gz", data))
    assert [p.url for p in pages] == ["https://a/unlabelled", "https://a/cp1251"]
    assert pages[1].content == "<p>Привет</p>"


def test_warc_with_a_broken_member_goes_on(tmp_path: Path) -> None:
    good = _warc([("https://a/1", "text/html", b"<p>one</p>")])
    broken = gzip.compress(b"WARX/1.0\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n", mtime=0)
    last = _warc([("https://a/2", "text/html", b"<p>two</p>")])
    items = read_all(write(tmp_path / "b.warc.gz", good + broken + last))
    assert [type(i).__name__ for i in items] == ["RawDocument", "RecordError", "RawDocument"]
    assert items[1].locator == {"offset": len(good)}
    assert items[1].reason.startswith(f"record at byte {len(good):,}: broken record headers")


def test_plain_warc_resyncs_after_garbage(tmp_path: Path) -> None:
    first = _warc([("https://a/1", "text/html", b"<p>one</p>")], gzip_records=False)
    second = _warc([("https://a/2", "text/html", b"<p>two</p>")], gzip_records=False)
    garbage = b"this line is not a record header\r\nnor this one\r\n\r\n"
    items = read_all(write(tmp_path / "p.warc", first + garbage + second))
    assert [type(i).__name__ for i in items] == ["RawDocument", "RecordError", "RawDocument"]
    assert "Invalid WARC record, first line: this line is not a record" in items[1].reason
    assert items[2].locator["offset"] == len(first) + len(garbage)


def test_truncated_warcs_fail_as_a_whole(tmp_path: Path) -> None:
    data = _warc([("https://a/1", "text/html", b"<p>one</p>" * 500)] * 2)
    with pytest.raises(IngestError, match=r"truncated gzip stream after [\d,]+ bytes"):
        read_all(write(tmp_path / "cut.warc.gz", data[:-100]))
    plain = _warc([("https://a/1", "text/html", b"<p>one</p>" * 500)], gzip_records=False)
    with pytest.raises(IngestError, match="record at byte 0 stops before its declared length"):
        read_all(write(tmp_path / "cut.warc", plain[:-500]))


def test_a_warc_record_past_the_document_limit_is_one_error(tmp_path: Path) -> None:
    data = _warc(
        [("https://a/big", "text/html", b"x" * 5000), ("https://a/ok", "text/html", b"ok")]
    )
    items = read_all(write(tmp_path / "big.warc.gz", data), IngestOptions(max_document_bytes=1000))
    assert items[0].reason == (
        "record at byte 0: document of more than 1,000 bytes is larger than the 1,000 bytes limit"
    )
    assert items[1].content == "ok"


# --- hostile files ----------------------------------------------------------------------------


def test_truncated_gzip(hostile: dict[str, Path]) -> None:
    with pytest.raises(IngestError, match=r"^truncated gzip stream after [\d,]+ bytes$"):
        read_all(hostile["truncated_gzip"])


def test_zip_bomb_is_refused_and_the_rest_is_read(hostile: dict[str, Path]) -> None:
    assert hostile["zip_bomb"].stat().st_size < 2_000_000
    bomb, good = read_all(hostile["zip_bomb"])
    assert bomb == RecordError(
        "zip member 'bomb.html' expands past 200× its compressed size (decompression bomb); "
        "skipped",
        {"member": "bomb.html"},
    )
    assert isinstance(good, RawDocument) and good.locator == {"member": "good.html"}


def test_a_bomb_whose_header_lies_is_stopped_while_streaming(tmp_path: Path) -> None:
    letters = b'{"text": "' + b"a" * (8 << 20) + b'"}\n'
    zeros = gzip.compress(letters, mtime=0)
    archive = write(tmp_path / "b.zip", _zip({"zeros.jsonl.gz": zeros}))
    [error] = read_all(archive)
    assert error.reason == (
        "gzip data in 'zeros.jsonl.gz' expands past 200× its compressed size "
        "(decompression bomb); skipped"
    )
    tarball = write(tmp_path / "b.tar.gz", gzip.compress(_tar({"z.txt": letters})))
    with pytest.raises(IngestError, match="expands past 200× its compressed size"):
        read_all(tarball)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("binary_html", "binary content (NUL bytes) in a file named .html"),
        ("invalid_utf8_txt", "invalid UTF-8 at byte 1,024"),
        ("huge_html", "document of 52,428,800 bytes is larger than the 16 MiB limit"),
        ("empty", "empty file"),
        ("garbage_parquet", "not a readable Parquet file"),
    ],
)
def test_hostile_file_fails_with_a_clear_reason(
    hostile: dict[str, Path], key: str, reason: str
) -> None:
    with pytest.raises(IngestError) as failure:
        read_all(hostile[key])
    assert str(failure.value).startswith(reason)


def test_invalid_utf8_jsonl_loses_only_its_bad_lines(hostile: dict[str, Path]) -> None:
    items = read_all(hostile["invalid_utf8_jsonl"])
    assert [d.locator["line"] for d in docs(items)] == [1, 3]
    assert [e.reason for e in errors(items)] == [
        "line 2: invalid UTF-8 at byte 13",
        "line 4: invalid JSON (Expecting ',' delimiter at column 26)",
    ]


def test_deep_nesting_is_just_a_document_to_the_reader(hostile: dict[str, Path]) -> None:
    [page] = read_all(hostile["deep_html"])
    assert page.kind == HTML and page.content.count("<div>") == 100_000


def test_unsafe_archive_paths_are_refused(hostile: dict[str, Path], tmp_path: Path) -> None:
    items = read_all(hostile["unsafe_zip"])
    assert [e.reason for e in errors(items)] == [
        "archive member '../evil.html' has an unsafe path; skipped",
        "archive member '/etc/passwd.html' has an unsafe path; skipped",
    ]
    assert [d.locator for d in docs(items)] == [{"member": "good.html"}]
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w") as archive:
        for name in ("../../up.txt", "ok.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            archive.addfile(info, io.BytesIO(b"hi"))
        link = tarfile.TarInfo("link.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    items = read_all(write(tmp_path / "t.tar", tarball.getvalue()))
    assert [e.reason for e in errors(items)] == [
        "archive member '../../up.txt' has an unsafe path; skipped",
        "archive member 'link.txt' is a link; skipped",
    ]
    assert [d.content for d in docs(items)] == ["hi"]


def test_broken_warc_headers_cost_one_record(hostile: dict[str, Path]) -> None:
    broken, good = read_all(hostile["broken_warc"])
    assert broken == RecordError(
        "record at byte 0: no valid Content-Length ('twelve')", {"offset": 0}
    )
    assert good.url == "https://good.example.org/binary-search"
    data = hostile["broken_warc"].read_bytes()
    assert data[good.locator["offset"] :].startswith(b"WARC/1.")


def test_hostile_files_stop_neither_the_process_nor_the_next_file(
    hostile: dict[str, Path], corpus: dict[str, Path], tmp_path: Path
) -> None:
    outcomes = {}
    for key, path in hostile.items():
        try:
            outcomes[key] = [type(i).__name__ for i in read_file(path)]
        except IngestError as exc:
            outcomes[key] = str(exc)
    assert all(outcomes.values())
    assert docs(read_all(corpus["html"]))
    # the same files inside one archive: each bad member is one error, the good ones are read
    small = {k: p for k, p in hostile.items() if k != "huge_html"}
    tarball = write(
        tmp_path / "all.tar.gz",
        gzip.compress(_tar({p.name: p.read_bytes() for p in small.values()})),
    )
    items = read_all(tarball)
    failed = {e.locator["member"].split("!")[0] for e in errors(items)}
    assert failed == {p.name for k, p in small.items() if k != "deep_html"}
    assert {d.locator["member"] for d in docs(items)} >= {
        "deep-nesting.html",
        "bomb.zip!good.html",
        "unsafe-paths.zip!good.html",
        "broken-headers.warc",
    }


def test_damaged_files_fail_only_with_ingest_errors(
    corpus: dict[str, Path], tmp_path: Path
) -> None:
    """Flipped, cut, inserted and zeroed bytes: a reader may refuse, but never crash."""
    rng = random.Random(7)
    for key, path in corpus.items():
        data = path.read_bytes()
        for _ in range(25):
            damaged = bytearray(data)
            at = rng.randrange(len(damaged))
            match rng.randrange(4):
                case 0:
                    damaged[at] ^= 1 << rng.randrange(8)
                case 1:
                    del damaged[at:]
                case 2:
                    damaged[at:at] = rng.randbytes(20)
                case _:
                    damaged[at : at + 40] = bytes(40)
            target = write(tmp_path / path.name, bytes(damaged) or b"x")
            try:
                for item in read_file(target):
                    assert isinstance(item, RawDocument | RecordError)
            except IngestError as exc:
                assert str(exc), key


# --- streaming, progress, cancellation --------------------------------------------------------


def test_memory_stays_flat_on_a_large_jsonl(tmp_path: Path) -> None:
    line = (json.dumps({"text": "streaming " * 25_000}) + "\n").encode()  # ~250 KB a line
    path = tmp_path / "large.jsonl"
    with path.open("wb") as out:
        for _ in range(800):
            out.write(line)
    size = path.stat().st_size
    assert size > 190_000_000
    count, peak = documents_and_peak(path)
    assert count == 800
    assert peak < 16_000_000, f"peak {peak:,} bytes for a {size:,}-byte file"


def test_memory_stays_flat_on_a_large_warc(tmp_path: Path) -> None:
    body = page_html("newton").encode() * 200  # ~470 KB a page
    records = [(f"https://a/{i}", "text/html", body) for i in range(120)]
    path = write(tmp_path / "large.warc.gz", _warc(records))
    count, peak = documents_and_peak(path)
    assert count == 120
    assert peak < 8_000_000, f"peak {peak:,} for {len(body) * 120:,} bytes of pages"


def test_progress_and_cancellation(tmp_path: Path) -> None:
    path = write(tmp_path / "many.jsonl", b'{"text": "a line"}\n' * 50_000)
    reports: list[tuple[int, int]] = []
    task = Task(lambda done, total, _msg: reports.append((done, total)))
    assert len(list(read_file(path, task=task))) == 50_000
    size = path.stat().st_size
    assert reports and reports[-1] == (size, size)
    assert all(0 <= done <= total == size for done, total in reports)

    task = Task()
    read = 0
    with pytest.raises(Cancelled):
        for _ in read_file(path, task=task):
            read += 1
            if read == 10:
                task.cancel()
    assert read == 10


def test_cancellation_reaches_archive_members(corpus: dict[str, Path]) -> None:
    task = Task()
    items = read_file(corpus["zip"], task=task)
    next(items)
    task.cancel()
    with pytest.raises(Cancelled):
        next(items)


# --- helpers ----------------------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_zstd_truncation_is_detected(tmp_path: Path) -> None:
    lines = "".join(f'{{"text": "line {i} squared is {i * i}"}}\n' for i in range(100_000))
    data = zstandard.ZstdCompressor().compress(lines.encode())
    with pytest.raises(IngestError, match=r"truncated zstd stream after [\d,]+ bytes"):
        read_all(write(tmp_path / "cut.jsonl.zst", data[: len(data) // 2]))
