"""Label files in and out of a project, including the broken ones a curator will bring."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from studio.labels import LabelFileError, export_labels, import_labels
from studio.store import NewDocument, Store


def _docs(store: Store) -> list[int]:
    imp = store.begin_import()
    src = store.add_source(imp, "/data/pages.jsonl", 1, 1.0, "jsonl")
    ids = []
    for i in range(3):
        text = f"page {i} about the water cycle"
        doc = NewDocument(
            source_id=src,
            content_hash=f"h{i}",
            kind="text",
            raw=text,
            main_text=text,
            n_words=6,
            signal_words=6,
            url=f"https://example.org/{i}",
        )
        ids.append(store.insert_document(doc))
    return ids


def test_round_trip_through_csv_and_jsonl(store: Store, tmp_path: Path) -> None:
    a, b, _c = _docs(store)
    store.set_label(a, "ana", 4, "clear tutorial")
    store.set_label(b, "ben", 1)
    for name in ("labels.csv", "labels.jsonl"):
        out = tmp_path / name
        assert export_labels(store, out) == 2
        store.conn.execute("DELETE FROM labels")
        report = import_labels(store, out, annotator="nobody")
        assert (report.imported, report.unmatched, report.invalid) == (2, 0, 0)
        got = {(r["doc_id"], r["annotator"], r["score"]) for r in store.labels()}
        assert got == {(a, "ana", 4), (b, "ben", 1)}


def test_rows_find_their_document_by_hash_or_url(store: Store, tmp_path: Path) -> None:
    _a, b, c = _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(
        json.dumps({"content_hash": "h1", "score": 3})
        + "\n"
        + json.dumps({"url": "https://example.org/2", "score": "2"})
        + "\n"
    )
    report = import_labels(store, f, annotator="carla")
    assert report.imported == 2
    assert {(r["doc_id"], r["score"], r["annotator"]) for r in store.labels()} == {
        (b, 3, "carla"),
        (c, 2, "carla"),
    }


def test_bad_rows_are_explained_and_good_ones_kept(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(
        "\n".join(
            [
                json.dumps({"doc_id": a, "score": 5}),
                "{not json",
                json.dumps({"doc_id": a, "score": 7}),
                json.dumps({"doc_id": a, "score": 2.5}),
                json.dumps({"doc_id": 999, "score": 1}),
                json.dumps([1, 2]),
                json.dumps({"doc_id": "x", "score": 1}),
            ]
        )
    )
    report = import_labels(store, f, annotator="dan")
    assert (report.imported, report.unmatched, report.invalid) == (1, 1, 5)
    assert any(p.startswith("line 2: invalid JSON") for p in report.problems)
    assert any("line 3: score 7" in p for p in report.problems)


def test_unreadable_files_change_nothing(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    store.set_label(a, "ana", 4)
    before = store.labels()
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"doc_id,score,note\n1,3,caf\xe9\n")
    no_score = tmp_path / "n.csv"
    no_score.write_text("doc_id,label\n1,good\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    for bad, message in (
        (latin, "not UTF-8"),
        (no_score, "'score' column"),
        (tmp_path / "l.xlsx", "are .csv, .jsonl or .parquet"),
        (tmp_path / "empty.csv", "the file is empty"),  # it said "needs a 'score' column"
        (tmp_path / "empty.jsonl", "holds no labels"),  # it imported 0 without a word
    ):
        if not bad.exists():
            bad.write_text("x")
        with pytest.raises(LabelFileError, match=message):
            import_labels(store, bad, annotator="x")
    assert store.labels() == before


def test_a_parquet_file_of_fineweb_edu_style_labels(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b, c = _docs(store)
    store.set_label(a, "ana", 4)
    # FineWeb-Edu's layout: the page's text, a fractional mean in score, the level in int_score
    table = pa.table(
        {
            "text": ["page 0 about the water cycle", "page 1", "page 2", "page 9"],
            "url": [f"https://example.org/{i}" for i in (0, 1, 2, 9)],
            "score": [2.71, 3.5, 0.75, 1.0],
            "int_score": [3, None, 7, 1],
        }
    )
    good = tmp_path / "fineweb.parquet"
    pq.write_table(table, good, row_group_size=2)
    report = import_labels(store, good, annotator="llama3")
    # row 2 has no level: its score 3.5 is no rubric level; row 3's level 7 is none either
    assert (report.imported, report.invalid, report.unmatched) == (1, 2, 1)
    assert any("line 2: score 3.5" in p for p in report.problems)
    assert any("line 3: int_score 7 is not a whole number" in p for p in report.problems)
    labels = {(r["doc_id"], r["annotator"]): r["score"] for r in store.labels()}
    assert labels == {(a, "ana"): 4, (a, "llama3"): 3}
    # a file with no score, or none naming a page, or no Parquet at all: nothing imported
    before = store.labels()
    for columns, message in (
        ({"url": ["https://example.org/1"], "label": [2]}, "'score' column"),
        ({"text": ["page"], "score": [2]}, "doc_id, content_hash or url"),
    ):
        pq.write_table(pa.table(columns), tmp_path / "bad.parquet")
        with pytest.raises(LabelFileError, match=message):
            import_labels(store, tmp_path / "bad.parquet", annotator="x")
    truncated = tmp_path / "cut.parquet"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(LabelFileError, match="not a readable Parquet file"):
        import_labels(store, truncated, annotator="x")
    # damaged in the middle: the rows read before the damage are not kept either
    notes = [f"note {i}" for i in range(20_000)]  # varied, so the data pages are most of the file
    many = pa.table(
        {"url": ["https://example.org/2"] * 20_000, "score": [5] * 20_000, "note": notes}
    )
    pq.write_table(many, tmp_path / "big.parquet", row_group_size=5_000, compression="zstd")
    data = bytearray((tmp_path / "big.parquet").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200] = bytes(b ^ 0xFF for b in data[middle : middle + 200])
    (tmp_path / "big.parquet").write_bytes(bytes(data))
    with pytest.raises(LabelFileError, match="unreadable after row"):
        import_labels(store, tmp_path / "big.parquet", annotator="x")
    assert store.labels() == before
    # typed columns: a timestamp is a time (stored in UTC), bytes where text belongs are refused
    from datetime import UTC, datetime, timedelta, timezone

    typed = pa.table(
        {
            "url": [b"https://example.org/1", b"https://example.org/1"],
            "score": [2, 2],
        }
    )
    pq.write_table(typed, tmp_path / "typed.parquet")
    report = import_labels(store, tmp_path / "typed.parquet", annotator="bytes")
    assert (
        report.invalid == 2 and "url \"b'https://example.org/1'\" is not text" in report.problems[0]
    )
    east = timezone(timedelta(hours=2))
    timed = pa.table(
        {
            "url": ["https://example.org/1", "https://example.org/2"],
            "int_score": [4, 2],
            "created_at": [datetime(2026, 5, 1, 12, 0, tzinfo=east), datetime(2026, 5, 1, 12, 0)],
        }
    )
    pq.write_table(timed, tmp_path / "timed.parquet")
    assert import_labels(store, tmp_path / "timed.parquet", annotator="clock").imported == 2
    times = {r["doc_id"]: r["created_at"] for r in store.labels() if r["annotator"] == "clock"}
    assert sorted(times.values()) == ["2026-05-01T10:00:00+00:00", "2026-05-01T12:00:00+00:00"]
    assert all(datetime.fromisoformat(t).tzinfo == UTC for t in times.values())
    # a timestamp Python cannot hold (nanoseconds, beyond year 9999): the file, clearly
    for stamps, unit in (([1_700_000_000_123_456_789], "ns"), ([10**12], "s")):
        table = pa.table(
            {
                "url": ["https://example.org/1"],
                "score": [2],
                "created_at": pa.array(stamps, pa.timestamp(unit)),
            }
        )
        pq.write_table(table, tmp_path / "stamp.parquet")
        with pytest.raises(LabelFileError, match="rows 1-1 hold a value that cannot be read"):
            import_labels(store, tmp_path / "stamp.parquet", annotator="stamp")
    assert not [r for r in store.labels() if r["annotator"] == "stamp"]
    # what pandas, SQL and Spark exports hold: a NaN level (no level: score decides), ids as
    # floats (a column with a gap), decimal scores, dates
    from datetime import date
    from decimal import Decimal

    exported = pa.table(
        {
            "doc_id": pa.array([float(a), float(b), None], pa.float64()),
            "url": [None, None, "https://example.org/2"],
            "score": pa.array([Decimal("4.0"), Decimal("2"), Decimal("2.5")], pa.decimal128(5, 1)),
            "int_score": pa.array([float("nan"), 1.0, float("nan")], pa.float64()),
            "created_at": pa.array([date(2024, 1, 2)] * 3, pa.date32()),
        }
    )
    pq.write_table(exported, tmp_path / "exported.parquet")
    report = import_labels(store, tmp_path / "exported.parquet", annotator="export")
    assert (report.imported, report.invalid) == (2, 1), report.problems
    assert report.problems == ["line 3: score Decimal('2.5') is not a whole number from 0 to 5"]
    got = {
        r["doc_id"]: (r["score"], r["created_at"])
        for r in store.labels()
        if r["annotator"] == "export"
    }
    assert got == {a: (4, "2024-01-02T00:00:00+00:00"), b: (1, "2024-01-02T00:00:00+00:00")}
    # a CSV with int_score and score: the level decides, an empty level falls back to score
    csv = tmp_path / "levels.csv"
    csv.write_text("url,score,int_score\nhttps://example.org/1,1.6,2\nhttps://example.org/2,1,\n")
    assert import_labels(store, csv, annotator="csv").imported == 2
    got = {r["doc_id"]: r["score"] for r in store.labels() if r["annotator"] == "csv"}
    assert got == {b: 2, c: 1}


def test_agreement_command(store: Store, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from studio.cli import cli

    a, b, c = _docs(store)
    for doc, sa, sb in ((a, 0, 0), (b, 3, 3), (c, 5, 1)):
        store.set_label(doc, "ana", sa)
        store.set_label(doc, "ben", sb)
    root = store.path.parent
    result = CliRunner().invoke(cli, ["labels", "agreement", str(root), "--json"])
    assert result.exit_code == 0, result.output
    (pair,) = json.loads(result.output)
    assert pair["shared"] == 3 and pair["disagreements"] == [[c, 5, 1]]
    text = CliRunner().invoke(cli, ["labels", "agreement", str(root)]).output
    assert "ana vs ben: kappa" in text and f"document {c}: ana 5, ben 1" in text


def test_a_content_hash_decides_which_page_a_row_labels(store: Store, tmp_path: Path) -> None:
    """A file from another project names its own doc_ids: the hash finds the page here, and a
    hash no page here has leaves the row unmatched rather than on whatever its doc_id names."""
    a, b, c = _docs(store)
    f = tmp_path / "other-project.csv"
    f.write_text(
        "doc_id,content_hash,url,score,annotator\n"
        f"{a}, H1 ,https://example.org/1,5,ana\n"  # doc_id a, hash of b (as a sheet pads it)
        f"{c},h-not-here,,4,ana\n"  # a page this project does not hold
    )
    report = import_labels(store, f, annotator="x")
    assert (report.imported, report.unmatched, report.invalid, report.moved) == (1, 1, 0, 1)
    assert {(r["doc_id"], r["score"]) for r in store.labels()} == {(b, 5)}


def test_a_url_and_a_doc_id_that_disagree_are_refused(store: Store, tmp_path: Path) -> None:
    a, _b, _c = _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(json.dumps({"doc_id": a, "url": "https://example.org/2", "score": 3}) + "\n")
    report = import_labels(store, f, annotator="x")
    assert (report.imported, report.invalid) == (0, 1)
    assert "name different documents" in report.problems[0]
    assert store.labels() == []


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"doc_id": 1.5, "score": 3}, "doc_id 1.5 is not a document id"),
        ({"doc_id": True, "score": 3}, "doc_id True is not a document id"),
        ({"doc_id": 10**30, "score": 3}, "is not a document id"),
        ({"doc_id": -1, "score": 3}, "doc_id -1 is not a document id"),
        ({"doc_id": 1, "score": True}, "score True is not a whole number"),
        ({"doc_id": 1, "score": "NaN"}, "score 'NaN' is not a whole number"),
        ({"doc_id": 1, "score": None}, "no score"),
        ({"doc_id": 1}, "no score"),
        ({"doc_id": 1, "score": 3, "annotator": ["x"]}, 'annotator ["x"] is not text'),
        ({"doc_id": 1, "score": 3, "note": {"a": 1}}, "note {"),
        ({"url": ["x"], "score": 3}, "url"),
        ({"doc_id": 1, "score": 3, "note": "bad \ud800"}, "lone surrogate"),
        ({"score": 3}, "names no document"),
        ({"doc_id": 1, "score": 3, "created_at": "yesterday"}, "not an ISO 8601 date and time"),
        ({"doc_id": 1, "score": 3, "created_at": "2026-13-01"}, "created_at"),
        ({"doc_id": 1, "score": 3, "created_at": "0001-01-01T00:00+05:00"}, "created_at"),
        ({"doc_id": 1, "score": 3, "created_at": 1700000000}, "created_at 1700000000 is not text"),
        ({"doc_id": 1, "score": 3, "annotator": "ana\u202egnp.exe"}, "text-direction"),
        ({"doc_id": 1, "score": 3, "annotator": "ana\x00"}, "control"),
        ({"doc_id": 1, "score": 3, "annotator": "a" * 500}, "at most"),
        ({"doc_id": 1, "score": 3, "annotator": 7}, "annotator 7 is not text"),
        ({"doc_id": 1, "score": 3, "note": "x" * 5000}, "the note holds 5,000 characters"),
    ],
)
def test_malformed_rows_are_refused_with_their_reason(
    store: Store, tmp_path: Path, row: dict, problem: str
) -> None:
    _docs(store)
    f = tmp_path / "l.jsonl"
    f.write_text(json.dumps(row) + "\n" + json.dumps({"doc_id": 2, "score": 4}) + "\n")
    report = import_labels(store, f, annotator="x")
    assert (report.imported, report.invalid) == (1, 1), report.problems
    assert problem in report.problems[0] and report.problems[0].startswith("line 1: ")
    assert [(r["doc_id"], r["score"]) for r in store.labels()] == [(2, 4)]


def test_a_note_is_stored_without_hidden_characters(store: Store, tmp_path: Path) -> None:
    _docs(store)
    f = tmp_path / "l.jsonl"
    rows = [
        {"doc_id": 1, "score": 3, "note": " clear\u0000 proof\u202e,\r\nsee\tlemma 2 "},
        {"doc_id": 2, "score": 1, "note": "\u2066\u0007"},  # nothing left: no note
        {"doc_id": 3, "score": 4, "note": "مقاله\u200cها 👩\u200d🏫"},  # joiners are text
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert import_labels(store, f, annotator="x").imported == 3
    notes = {r["doc_id"]: r["note"] for r in store.labels()}
    assert notes == {1: "clear proof,\nsee\tlemma 2", 2: None, 3: rows[2]["note"]}


def test_a_teachers_rows_come_back_as_the_teachers(store: Store, tmp_path: Path) -> None:
    a, _b, _c = _docs(store)
    f = tmp_path / "t.jsonl"
    f.write_text(json.dumps({"doc_id": a, "score": 2, "annotator": "teacher:qwen"}) + "\n")
    report = import_labels(store, f, annotator="x")
    assert (report.imported, report.invalid) == (1, 0)
    assert [(r["doc_id"], r["annotator"]) for r in store.labels()] == [(a, "teacher:qwen")]


def test_label_times_are_stored_in_utc_as_the_studio_writes_them(
    store: Store, tmp_path: Path
) -> None:
    a, b, c = _docs(store)
    f = tmp_path / "t.jsonl"
    rows = [
        {"doc_id": a, "score": 1, "created_at": "2026-11-22T10:30:00+02:00"},
        {"doc_id": b, "score": 2, "created_at": " 2026-11-22 08:30 "},  # no zone: UTC
        {"doc_id": c, "score": 3, "created_at": "2026-11-22"},
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert import_labels(store, f, annotator="x").imported == 3
    assert [r["created_at"] for r in store.labels()] == [
        "2026-11-22T08:30:00+00:00",
        "2026-11-22T08:30:00+00:00",
        "2026-11-22T00:00:00+00:00",
    ]


def test_a_spreadsheets_csv_and_repeated_rows(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    f = tmp_path / "excel.csv"
    # a byte-order mark before the first column's name, as spreadsheets save UTF-8 CSV
    f.write_bytes(f"\ufeffdoc_id,score\n{a},1\n{a},2\n{a},3\n".encode())
    report = import_labels(store, f, annotator="ana")
    assert (report.imported, report.repeated, report.unmatched, report.invalid) == (1, 2, 0, 0)
    assert [(r["doc_id"], r["score"]) for r in store.labels()] == [(a, 3)]
    assert report.replaced == 0
    again = import_labels(store, f, annotator="ana")  # the same file again: ana's 3 is replaced
    assert (again.imported, again.repeated, again.replaced) == (1, 2, 1)
    no_ids = tmp_path / "n.csv"
    no_ids.write_text("title,score\nwater,3\n")
    with pytest.raises(LabelFileError, match="needs a doc_id, content_hash or url column"):
        import_labels(store, no_ids, annotator="x")


def test_a_file_with_two_score_columns_is_refused(store: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, *_ = _docs(store)
    store.set_label(a, "ana", 4)
    twice = tmp_path / "twice.csv"
    twice.write_text(f"doc_id,score,note,score\n{a},1,,5\n")
    with pytest.raises(LabelFileError, match="more than one 'score' column"):
        import_labels(store, twice, annotator="ana")
    table = pa.Table.from_arrays(
        [pa.array([a]), pa.array([1]), pa.array([5])], names=["doc_id", "score", "score"]
    )
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(LabelFileError, match="more than one 'score' column"):
        import_labels(store, tmp_path / "twice.parquet", annotator="ana")
    assert [(r["doc_id"], r["score"]) for r in store.labels()] == [(a, 4)]
    # a column the import does not read may come twice
    other = tmp_path / "other.csv"
    other.write_text(f"doc_id,score,extra,extra\n{a},2,x,y\n")
    assert import_labels(store, other, annotator="ana").imported == 1
    assert [(r["doc_id"], r["score"]) for r in store.labels()] == [(a, 2)]


def test_export_to_a_place_that_cannot_be_written(store: Store, tmp_path: Path) -> None:
    a, *_ = _docs(store)
    store.set_label(a, "ana", 4)
    with pytest.raises(LabelFileError, match="cannot write"):
        export_labels(store, tmp_path / "no-such-folder" / "labels.csv")
    assert not (tmp_path / "no-such-folder").exists()
    # the file being written has a short name of its own: not NAME.part, which was too long
    # for a 251-character NAME, and failed where a folder of that name stood
    (tmp_path / "l.csv.part").mkdir()
    long = tmp_path / ("n" * 247 + ".csv")
    for out in (tmp_path / "l.csv", long):
        assert export_labels(store, out) == 1 and out.read_text().count("\n") == 2
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part") and p.is_file()]


def test_files_no_label_file_is_made_of(store: Store, tmp_path: Path, monkeypatch) -> None:
    """An endless line (/dev/zero renamed), a pipe, an integer of 5,000 digits, a CSV field
    left open: each a clear error or a skipped row, never a traceback, a hang or all memory."""
    import os

    from studio import labels

    a, b, _c = _docs(store)
    store.set_label(a, "ana", 4)
    monkeypatch.setattr(labels, "MAX_LINE", 1000)
    endless = tmp_path / "endless.jsonl"
    endless.write_text("x" * 5000)
    with pytest.raises(LabelFileError, match="line 1 is longer than 1,000 characters"):
        import_labels(store, endless, annotator="x")
    monkeypatch.setattr(labels, "MAX_LINE", 1_000_000)
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(LabelFileError, match="not a regular file"):
        import_labels(store, pipe, annotator="x")
    huge = tmp_path / "huge.jsonl"
    huge.write_text(
        json.dumps({"doc_id": a, "score": 10**400}) + "\n"
        + '{"doc_id": 1, "score": ' + "9" * 5000 + "}\n"
        + json.dumps({"doc_id": b, "score": 2}) + "\n"
    )  # fmt: skip
    report = import_labels(store, huge, annotator="x")
    assert (report.imported, report.invalid) == (1, 2)
    assert "is not a whole number from 0 to 5" in report.problems[0]
    assert len(report.problems[0]) < 200 and "invalid JSON" in report.problems[1]
    # a quote left open runs on over short lines until the field passes csv's limit
    open_quote = tmp_path / "open.csv"
    open_quote.write_text(f'doc_id,score,note\n{b},1,"a note that never closes\n' + "y\n" * 600)
    monkeypatch.setattr(labels, "MAX_LINE", 100)
    limit = csv.field_size_limit(500)
    try:
        with pytest.raises(LabelFileError, match="not a readable CSV file at line"):
            import_labels(store, open_quote, annotator="x")
    finally:
        csv.field_size_limit(limit)
    monkeypatch.setattr(labels, "MAX_LINE", 1_000_000)
    long_field = tmp_path / "long.csv"
    long_field.write_text(f"doc_id,score,page_text,annotator\n{b},3,{'n' * 200_000}, ana \n")
    assert import_labels(store, long_field, annotator="x").imported == 1  # past csv's own limit
    assert {(r["doc_id"], r["annotator"], r["score"]) for r in store.labels()} == {
        (a, "ana", 4),
        (b, "x", 2),
        (b, "ana", 3),  # " ana " is ana
    }
