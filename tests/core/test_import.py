"""The import pipeline on hostile input: what is kept, what is counted, what the log says."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from studio.ingest import IngestOptions, pipeline
from studio.ingest.pipeline import import_paths
from studio.store import Store
from tests.core.test_ingest import _zip as zipped


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def stored(store: Store) -> list[tuple]:
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT d.content_hash, d.url, t.title, t.main_text, d.warnings FROM documents d "
            "JOIN document_text t ON t.doc_id = d.id ORDER BY d.id"
        )
    ]


def statuses(store: Store) -> tuple[list[str], list[str]]:
    imports = [r[0] for r in store.conn.execute("SELECT status FROM imports ORDER BY id")]
    sources = [r[0] for r in store.conn.execute("SELECT status FROM sources ORDER BY id")]
    return imports, sources


# --- lone surrogates ---------------------------------------------------------------------------


def test_a_lone_surrogate_costs_one_character_not_the_file(store: Store, tmp_path: Path) -> None:
    before = write(tmp_path / "before.jsonl", jsonl({"text": "stored before the bad file"}))
    import_paths(store, [before])
    kept = stored(store)
    # json.dumps writes "\ud800" as the six-character escape, as a broken crawler would
    bad = write(
        tmp_path / "s.jsonl",
        jsonl(
            {"text": "a fine page"},
            {"text": "bad \ud800 text"},
            {"text": "bad title", "title": "half an emoji \ud83d"},
            {"text": "bad url", "url": "https://example.org/\udc00"},
        ),
    )
    report = import_paths(store, [bad])
    (f,) = report.files
    assert (f.status, f.imported, f.failed) == ("imported", 4, 0), f.summary()
    docs = stored(store)
    assert docs[:1] == kept
    texts = {d[3]: d for d in docs}
    assert "a fine page" in texts and texts["a fine page"][4] is None
    assert "bad \ufffd text" in texts
    assert texts["bad title"][2] == "half an emoji \ufffd"
    assert texts["bad url"][1] == "https://example.org/\ufffd"
    for text in ("bad \ufffd text", "bad title", "bad url"):
        assert json.loads(texts[text][4]) == [
            "1 broken character (lone UTF-16 surrogates) replaced with U+FFFD"
        ]


# --- file names --------------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_imported_with_the_others(
    store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "w"
    write(folder / "a.txt", b"first page")
    write(folder / os.fsdecode(b"bad\xffname.txt"), b"the page with the odd name")
    write(folder / "z.txt", b"last page")
    report = import_paths(store, [folder])
    assert [(Path(f.path).name, f.status, f.imported) for f in report.files] == [
        ("a.txt", "imported", 1),
        ("bad\\xffname.txt", "imported", 1),
        ("z.txt", "imported", 1),
    ]
    assert statuses(store) == (["done"], ["imported"] * 3)
    # the name is stored the same way each time, so importing again recognises every file
    again = import_paths(store, [folder])
    assert [f.status for f in again.files] == ["skipped"] * 3


def test_an_undecodable_archive_member_name_is_stored_readably(
    store: Store, tmp_path: Path
) -> None:
    # tar keeps undecodable name bytes as surrogates, as os does for file names
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as t:
        info = tarfile.TarInfo("caf\xe9.txt")
        data = b"a page in a tar"
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    path = write(tmp_path / "names.tar", buf.getvalue())
    (f,) = import_paths(store, [path]).files
    assert f.status == "imported" and f.imported == 1
    (locator,) = [r[0] for r in store.conn.execute("SELECT locator FROM documents")]
    assert json.loads(locator) == {"member": "caf\\xe9.txt"}


# --- an import that dies -----------------------------------------------------------------------


def test_an_interrupted_import_leaves_no_row_running(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(tmp_path / "in" / "a.txt", b"imported before the interrupt")
    write(tmp_path / "in" / "b.txt", b"never imported")
    real_read = pipeline.read_file

    def read(path: Path, *args, **kwargs):
        if path.name == "b.txt":
            raise KeyboardInterrupt
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "read_file", read)
    with pytest.raises(KeyboardInterrupt):
        import_paths(store, [tmp_path / "in"])
    assert statuses(store) == (["cancelled"], ["imported", "cancelled"])
    assert [d[3] for d in stored(store)] == [first.read_text()]


def test_an_import_whose_store_fails_is_marked_failed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "a.txt", b"a page")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "imported_before", broken)
    with pytest.raises(RuntimeError):
        import_paths(store, [path])
    assert statuses(store) == (["failed"], [])


# --- when a file counts as failed --------------------------------------------------------------


def test_a_file_that_gave_nothing_but_errors_failed_and_can_be_imported_again(
    store: Store, tmp_path: Path
) -> None:
    records = [{"text": f"Lesson {i}: " + "words " * 20} for i in range(100)]
    path = write(tmp_path / "good.jsonl.gz", gzip.compress(jsonl(*records)))
    (f,) = import_paths(store, [path], IngestOptions(text_fields=("nope",))).files
    assert (f.status, f.imported, f.failed) == ("failed", 0, 100)
    assert f.reason.startswith("nothing could be imported: all 100 records failed (first: line 1")
    assert "no text field (looked for nope" in f.reason
    assert store.import_log()[0]["status"] == "failed"
    # a failed file is not "already imported": with the right field it goes in
    (again,) = import_paths(store, [path]).files
    assert (again.status, again.imported) == ("imported", 100)


def test_a_file_with_failed_records_is_read_again_on_the_next_import(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "mixed.jsonl",
        jsonl({"text": "Lesson one: " + "words " * 20}, {"lesson": "Lesson two: " + "words " * 20}),
    )
    (first,) = import_paths(store, [path]).files
    assert (first.status, first.imported, first.failed) == ("imported", 1, 1)
    # the record that failed goes in with the field it has; the other is a known duplicate
    (again,) = import_paths(store, [path], IngestOptions(text_fields=("lesson", "text"))).files
    assert (again.status, again.imported, again.duplicates, again.failed) == ("imported", 1, 1, 0)
    (third,) = import_paths(store, [path]).files  # now whole: skipped as imported
    assert third.status == "skipped"


@pytest.mark.parametrize(
    ("name", "data", "options", "why"),
    [
        (
            "huge.jsonl",
            jsonl({"text": "x" * 2000}),
            IngestOptions(max_document_bytes=1000),
            "its only record failed (line 1: document of 2,012 bytes is larger than",
        ),
        (
            "bomb.zip",
            zipped({"bomb.html": bytes(4 << 20)}),
            None,
            "its only record failed (zip member 'bomb.html' expands past 200×",
        ),
        (
            "deep.zip",
            zipped({"1.zip": zipped({"2.zip": zipped({"3.zip": zipped({"a.txt": b"deep"})})})}),
            None,
            "archive nested more than 3 levels deep",
        ),
    ],
)
def test_every_refusal_of_a_files_only_content_fails_the_file(
    store: Store, tmp_path: Path, name: str, data: bytes, options, why: str
) -> None:
    (f,) = import_paths(store, [write(tmp_path / name, data)], options).files
    assert f.status == "failed", f.summary()
    assert f.reason.startswith("nothing could be imported:") and why in f.reason, f.reason


def test_some_good_records_import_the_file_and_duplicates_are_no_failure(
    store: Store, tmp_path: Path
) -> None:
    mixed = write(tmp_path / "mixed.jsonl", jsonl({"text": "a good page"}, {"title": "no text"}))
    first = import_paths(store, [mixed])
    (f,) = first.files
    assert (f.status, f.imported, f.failed) == ("imported", 1, 1)
    assert (first.failed_files, first.failed_records) == ([], 1)
    copy = write(tmp_path / "copy.jsonl", jsonl({"text": "a good page"}))
    report = import_paths(store, [copy])
    assert [(f.status, f.imported, f.duplicates) for f in report.files] == [("imported", 0, 1)]
    assert (report.failed_files, report.failed_records) == ([], 0)


def test_what_a_dropped_folder_holds_that_is_no_file_is_reported_not_read(
    store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    write(folder / "a.txt", b"A lesson on tides and the moon.")
    os.mkfifo(folder / "pipe.txt")  # reading it would wait for a writer for ever
    os.symlink("/dev/null", folder / "device.html")
    os.symlink(folder / "nowhere.txt", folder / "broken.txt")
    os.symlink(folder / "loop2.txt", folder / "loop1.txt")
    os.symlink(folder / "loop1.txt", folder / "loop2.txt")
    report = import_paths(store, [folder, folder / "pipe.txt"])  # the pipe given twice, too
    why = {Path(f.path).name: (f.status, f.reason) for f in report.files}
    assert why["a.txt"] == ("imported", None)
    assert why["pipe.txt"] == ("failed", "a named pipe, not a file that holds documents")
    assert why["device.html"] == ("failed", "a device, not a file that holds documents")
    assert why["broken.txt"] == ("failed", "cannot read file: No such file or directory")
    assert why["loop1.txt"][1] == "cannot read file: Too many levels of symbolic links"
    assert len(report.files) == 6 and stored(store) and report.imported == 1
    log = {Path(r["path"]).name: r["status"] for r in store.import_log()}
    assert log == {n: s for n, (s, _) in why.items()}
