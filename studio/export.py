"""Export the kept documents, with their provenance, as JSONL (optionally .gz/.zst) or Parquet.

A classifier version decides what is kept: by its own keep decision, or, for a score-predicting
model, by ``score >= threshold``. Without a version every document is kept. What is dropped can go
to a second file, each record with the reason. Documents are read and written in batches (memory
stays flat on a million documents) into temporary files that are renamed into place only when the
export is complete: a failed or cancelled export leaves no partial file. Each export is a row in
the ``exports`` table and a ``<out>.manifest.json`` beside the file.

Example::

    with project.store() as store:
        report = export_documents(project, store, Path("kept.jsonl.zst"), version="latest")
    print(report.text)   # kept 229 of 1,495 documents, 580k words
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from studio import __version__
from studio.classify.score import short_count
from studio.classify.versions import VersionInfo, version_info
from studio.funnel import funnel
from studio.progress import Task
from studio.project import Project
from studio.store import Store, now

FORMATS = ("jsonl", "parquet")
BATCH = 1000


class ExportError(Exception):
    """The export cannot be made as asked (nothing was written)."""


# -- what is kept ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepFilter:
    """Keeps a document by a version's decision, or by ``score >= threshold``; no version: all."""

    info: VersionInfo | None = None
    threshold: float | None = None

    @property
    def cut(self) -> float | None:
        """What a score is compared with."""
        if self.info is None:
            return None
        return self.threshold if self.threshold is not None else self.info.cut

    @property
    def rubric_threshold(self) -> float | None:
        if self.info is None:
            return None
        return self.threshold if self.threshold is not None else self.info.threshold

    def decide(self, score: float | None, keep: int | None) -> tuple[bool, str | None]:
        """(kept, why it was dropped)."""
        if self.info is None:
            return True, None
        if score is None:  # cannot happen after the completeness check; kept honest anyway
            return False, f"not scored by classifier {self.info.version}"
        if self.threshold is not None:
            if score >= self.threshold:
                return True, None
            return False, (
                f"score {score:.2f} < keep threshold {self.threshold:g} "
                f"(classifier {self.info.version})"
            )
        if keep:
            return True, None
        what = "score" if self.info.predicts_score else "P(keep)"
        return False, (
            f"{what} {score:.2f} < cut {self.info.cut:.2f} "
            f"(classifier {self.info.version}, keep threshold {self.info.threshold:g})"
        )


def keep_filter(store: Store, version: str | None, threshold: float | None) -> KeepFilter:
    """The filter for a version (``"latest"``: the newest; None: keep everything), checked."""
    if version is None:
        if threshold is not None:
            raise ExportError("a threshold needs a classifier version (--model)")
        return KeepFilter()
    try:
        info = version_info(store, None if version == "latest" else version)
    except LookupError as exc:
        raise ExportError(str(exc.args[0])) from exc
    if threshold is not None and not info.predicts_score:
        raise ExportError(
            f"{info.version} predicts P(keep) at the threshold it was trained for; "
            "retrain it with another --threshold instead"
        )
    total = store.totals()["documents"]
    if info.scored < total:
        raise ExportError(
            f"classifier {info.version} has scored {info.scored:,} of {total:,} documents: "
            "run `studio score` first"
        )
    return KeepFilter(info, threshold)


# -- records and writers ---------------------------------------------------------------------------


def record(
    row: sqlite3.Row, labels: list[dict[str, Any]] | None, rule: KeepFilter
) -> dict[str, Any]:
    return {
        "id": row["id"],
        "text": row["main_text"] or "",
        "title": row["title"],
        "url": row["url"],
        "lang": row["lang"],
        "words": row["signal_words"],
        "provenance": {
            "source": row["source"],
            "locator": row["locator"] or "{}",  # JSON text: its keys vary with the format
            "fetch_date": row["fetch_date"],
            "content_hash": row["content_hash"],
            "segmenter": row["segmenter"],
            "classifier": rule.info.version if rule.info else None,
            "score": row["score"],
            "threshold": rule.rubric_threshold,
            "cut": rule.cut,
            "labels": labels,
        },
    }


class Writer(Protocol):
    def write(self, records: list[dict]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """One JSON object a line; gzip or zstandard when the final name ends in .gz or .zst."""

    def __init__(self, tmp: Path, final: Path) -> None:
        self._raw: Any = None
        if final.suffix == ".gz":
            self._out: Any = gzip.open(tmp, "wt", encoding="utf-8")  # noqa: SIM115 (close())
        elif final.suffix == ".zst":
            import zstandard

            self._raw = tmp.open("wb")
            stream = zstandard.ZstdCompressor(level=6).stream_writer(self._raw)
            self._out = io.TextIOWrapper(stream, encoding="utf-8")
        else:
            self._out = tmp.open("w", encoding="utf-8")

    def write(self, records: list[dict]) -> None:
        self._out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

    def close(self) -> None:
        self._out.close()
        if self._raw is not None and not self._raw.closed:
            self._raw.close()


class ParquetWriter:
    """A zstd-compressed Parquet file, one row group per batch."""

    def __init__(self, tmp: Path, final: Path, with_reason: bool = False) -> None:
        import pyarrow.parquet as pq

        self._schema = parquet_schema(with_reason)
        self._writer = pq.ParquetWriter(tmp, self._schema, compression="zstd")

    def write(self, records: list[dict]) -> None:
        import pyarrow as pa

        if records:
            self._writer.write_table(pa.Table.from_pylist(records, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def parquet_schema(with_reason: bool = False) -> Any:
    import pyarrow as pa

    text = pa.string()
    label = pa.struct([("annotator", text), ("score", pa.int64())])
    provenance = pa.struct(
        [
            ("source", text),
            ("locator", text),
            ("fetch_date", text),
            ("content_hash", text),
            ("segmenter", text),
            ("classifier", text),
            ("score", pa.float64()),
            ("threshold", pa.float64()),
            ("cut", pa.float64()),
            ("labels", pa.list_(label)),
        ]
    )
    fields = [
        ("id", pa.int64()),
        ("text", text),
        ("title", text),
        ("url", text),
        ("lang", text),
        ("words", pa.int64()),
        ("provenance", provenance),
    ]
    return pa.schema(fields + ([("reason", text)] if with_reason else []))


def format_of(path: Path, fmt: str | None = None) -> str:
    """The format asked for, else the one the file name says (JSONL unless it ends .parquet)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ExportError(f"unknown format {fmt} (known: {', '.join(FORMATS)})")
        return fmt
    return "parquet" if path.suffix == ".parquet" else "jsonl"


def open_writer(tmp: Path, final: Path, fmt: str, with_reason: bool = False) -> Writer:
    if fmt == "parquet":
        return ParquetWriter(tmp, final, with_reason)
    return JsonlWriter(tmp, final)


# -- the export ------------------------------------------------------------------------------------


@dataclass(slots=True)
class ExportReport:
    id: int
    created_at: str
    path: str
    format: str
    version: str | None
    threshold: float | None  # the rubric threshold the keep decision stands for
    cut: float | None  # what each score was compared with
    documents: int
    kept: int
    dropped: int
    kept_words: int
    dropped_words: int
    dropped_path: str | None
    manifest_path: str
    studio_version: str = __version__

    @property
    def text(self) -> str:
        words = short_count(self.kept_words)
        return f"kept {self.kept:,} of {self.documents:,} documents, {words} words"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


def export_documents(
    project: Project,
    store: Store,
    out: Path,
    *,
    version: str | None = None,
    threshold: float | None = None,
    fmt: str | None = None,
    dropped: Path | None = None,
    batch: int = BATCH,
    task: Task | None = None,
) -> ExportReport:
    """Write the kept documents to ``out`` (and the dropped ones to ``dropped``); record it."""
    task = task or Task()
    out = Path(out).expanduser().resolve()
    dropped = Path(dropped).expanduser().resolve() if dropped is not None else None
    if dropped == out:
        raise ExportError("the dropped documents need a file of their own")
    rule = keep_filter(store, version, threshold)
    fmt = format_of(out, fmt)
    targets = [(out, fmt, False)] + ([(dropped, format_of(dropped), True)] if dropped else [])
    created_at = now()
    counts = _write_atomically(store, rule, targets, batch, task)
    row = {
        "created_at": created_at,
        "path": str(out),
        "format": fmt,
        "version": rule.info.version if rule.info else None,
        "threshold": rule.rubric_threshold,
        "kept": counts["kept"],
        "dropped": counts["dropped"],
    }
    report = ExportReport(
        id=store.add_export(row),
        created_at=created_at,
        path=str(out),
        format=fmt,
        version=row["version"],
        threshold=rule.rubric_threshold,
        cut=rule.cut,
        documents=counts["kept"] + counts["dropped"],
        dropped_path=str(dropped) if dropped else None,
        manifest_path=str(out) + ".manifest.json",
        **counts,
    )
    # what each filter left, from import on (the last stage is this export's keep decision)
    stages = funnel(
        store,
        version=row["version"],
        threshold=rule.threshold,
        quality=rule.info is not None,
    )
    manifest = {
        **report.to_dict(),
        "project": str(project.root),
        "fields": _field_names(),
        "funnel": stages.to_dict(),
    }
    _replace_with(Path(report.manifest_path), json.dumps(manifest, indent=1) + "\n")
    return report


def _write_atomically(
    store: Store, rule: KeepFilter, targets: list[tuple[Path, str, bool]], batch: int, task: Task
) -> dict[str, int]:
    """Write every target to a temporary file beside it; rename them all only on success."""
    tmps = [path.with_name(f".{path.name}.tmp-{os.getpid()}") for path, _, _ in targets]
    try:
        with ExitStack() as opened:
            writers = []
            for tmp, (path, fmt, reason) in zip(tmps, targets, strict=True):
                path.parent.mkdir(parents=True, exist_ok=True)
                writers.append(open_writer(tmp, path, fmt, reason))
                opened.callback(writers[-1].close)
            counts = _stream(store, rule, writers, batch, task)
        for tmp, (path, _, _) in zip(tmps, targets, strict=True):
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    return counts


def _stream(
    store: Store, rule: KeepFilter, writers: list[Writer], batch: int, task: Task
) -> dict[str, int]:
    counts = {"kept": 0, "dropped": 0, "kept_words": 0, "dropped_words": 0}
    total, after = store.totals()["documents"], 0
    version = rule.info.version if rule.info else None
    while rows := store.export_batch(version, after, batch):
        task.check()
        labels = store.labels_of([r["id"] for r in rows])
        kept, dropped = [], []
        for r in rows:
            keep, reason = rule.decide(r["score"], r["keep"])
            rec = record(r, labels.get(r["id"]), rule)
            if keep:
                kept.append(rec)
            else:
                dropped.append({**rec, "reason": reason})
            side = "kept" if keep else "dropped"
            counts[side] += 1
            counts[f"{side}_words"] += r["signal_words"]
        writers[0].write(kept)
        if len(writers) > 1:
            writers[1].write(dropped)
        after = rows[-1]["id"]
        task.progress(counts["kept"] + counts["dropped"], total, "exporting")
    return counts


def _replace_with(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _field_names() -> list[str]:
    schema = parquet_schema()
    nested = [f"provenance.{f.name}" for f in schema.field("provenance").type]
    return [f.name for f in schema] + nested
