"""Export the kept documents, with their provenance, as a dataset folder in the Hugging Face
datasets layout::

    OUTDIR/
      README.md                              dataset card: YAML front matter HF reads, provenance
      manifest.json                          the same provenance, for scripts
      data/train-00000-of-00003.parquet      shards of at most ``shard_size`` records
      ...                                    (.jsonl or .jsonl.gz for the JSONL formats)

A classifier version decides what is kept: by its own keep decision, or, for a score-predicting
model, by ``score >= threshold`` (``--min-score``). Without a version every document is kept.
Documents are read and written in batches (memory stays flat on a million documents) into a
folder ``OUTDIR.partial-XXXX`` beside OUTDIR, renamed into place only when everything is written:
a failed or cancelled export leaves nothing. An OUTDIR that exists and is not empty is refused,
and so is any output inside the project folder other than under its ``exports/``
(:func:`check_output`): the database, ``models/`` and ``runs/`` are never overwritten.

Dropped pages: each one's reason goes, when asked, to a separate ``dropped`` file (JSONL or
Parquet, as before). In the project, the export keeps only the counts of the dropped pages by
kind of reason (not one row per page, which would double a large project): they are in
``manifest.json`` and the dataset card (``dropped_by_reason``), and the ``exports`` row records
the folder, the version, the threshold and the kept and dropped totals.

Example::

    with project.store() as store:
        report = export_documents(project, store, Path("kept"), version="latest")
    print(report.text)   # kept 229 of 1,495 documents, 580k words
"""

from __future__ import annotations

import errno
import glob
import gzip
import io
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from studio import __version__
from studio.classify.score import short_count
from studio.classify.versions import VersionInfo, version_info
from studio.dedup.corpus import ranking_scores
from studio.dedup.gate import gate_reasons
from studio.funnel import funnel
from studio.generate.record import rejected_documents
from studio.paths import expand_home
from studio.progress import Task, process_alive
from studio.project import Project
from studio.store import Store, now
from studio.text import abbreviated, visible

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "parquet")  # of a --dropped file
DATASET_FORMATS = ("parquet", "jsonl", "jsonl.gz")  # of the shards
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}")  # as the Hub's dataset cards name one
BATCH = 1000
SHARD_SIZE = 100_000
TOP_SOURCES = 20


class ExportError(Exception):
    """The export cannot be made as asked (nothing was written)."""


# -- where an export may write -----------------------------------------------------------------

EXPORTS_DIR = "exports"  # the one place inside a project folder an export may write
_OWN = {"models": "classifier models", "runs": "runs", "recipes": "recipes"}


def output_problem(project: Project, path: Path) -> str | None:
    """Why writing ``path`` would overwrite the project's own files, or None when it would not.

    Inside the project folder only a path under ``exports/`` is an export's: the database and
    its companions (``-wal``, ``-shm``, the migration lock), ``models/``, ``runs/`` and the
    settings beside them are what every later command reads. Symlinks and ``..`` are resolved
    first, and a path that is the project under another spelling (a case variant, a hard link
    to the database) is caught by comparing the files themselves."""
    path = expand_home(path).resolve()
    root = project.root
    where = f"write it outside {root}, or under {root / EXPORTS_DIR}"
    rel = _inside(path, root)
    if rel and rel[0].lower().startswith(project.db_path.name.lower()):
        return f"{path} is the project's database (or one of its files): {where}"
    if _same_file(path, project.db_path):
        return f"{path} is the project's database {project.db_path} under another name"
    if rel is None:
        return None
    if not rel:
        return f"{path} is the project folder itself: {where}"
    first = rel[0].lower()
    if first == EXPORTS_DIR:
        if len(rel) == 1:
            return f"{path} is the project's exports folder itself: write into a folder under it"
        return None
    what = _OWN.get(first)
    label = f"the project's {what} ({rel[0]}/)" if what else f"the project's own files ({rel[0]})"
    return f"{path} belongs to {label}: {where}"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _inside(path: Path, root: Path) -> tuple[str, ...] | None:
    """``path``'s parts below ``root`` (empty: the root itself), or None when outside it; an
    existing ancestor that is the root under another spelling counts as the root."""
    if path == root or root in path.parents:
        return path.relative_to(root).parts
    for i, parent in enumerate([path, *path.parents]):
        if _same_file(parent, root):
            return path.parts[len(path.parts) - i :]
    return None


def check_output(project: Project, path: Path) -> None:
    """Refuse (:class:`ExportError`) an output that would overwrite the project's own files, or
    whose name is not text: the export's path goes into the project's records and the card."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ExportError(
            f"{ascii(str(path))} is not a UTF-8 name (its bytes are not text): choose another "
            "name (nothing was written)"
        ) from None
    problem = output_problem(project, path)
    if problem is not None:
        raise ExportError(f"{problem} (nothing was written)")


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
    """The filter for a version (``"latest"``: the newest; None: keep everything, unless a
    threshold is given, which is a threshold on the newest version's scores), checked."""
    if version is None:
        if threshold is None:
            return KeepFilter()
        version = "latest"
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


def _remove_leftovers(out: Path, dropped: Path | None) -> None:
    """What an export killed part-way left beside ``out`` (its ``.partial-PID-XXXX`` folder)
    and ``dropped`` (its ``.NAME.tmp-PID`` file): removed once that process is gone, never
    while it still runs (another export to the same place is then under way)."""
    found = [(p, p.name.removeprefix(f"{out.name}.partial-").split("-")[0])
             for p in out.parent.glob(f"{glob.escape(out.name)}.partial-*-*")]  # fmt: skip
    if dropped is not None:
        found += [(p, p.name.rpartition("-")[2])
                  for p in dropped.parent.glob(f".{glob.escape(dropped.name)}.tmp-*")]  # fmt: skip
    for path, pid in found:
        if pid.isdigit() and not process_alive(int(pid)):
            log.info("removing %s, left by an export that was stopped", path)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _rescored(store: Store) -> list[str]:
    """A note when the scores that chose the near-duplicate keepers have changed since (a newer
    version, or more pages scored): the keepers are the ones the old scores chose."""
    row = store.conn.execute("SELECT params FROM dedup_runs ORDER BY id DESC LIMIT 1").fetchone()
    try:
        run = json.loads(row[0]) if row else {}
    except ValueError:
        run = {}
    # a run from before runs recorded it is not judged
    if not isinstance(run, dict) or "ranked_by" not in run:
        return []
    then = run["ranked_by"]
    if then == ranking_scores(store):
        return []
    said = f"{then['version']}'s scores of {then['scored']:,} documents" if then else "no scores"
    return [
        f"the near-duplicate keepers were chosen on {said}, and the scores have changed since: "
        "run `studio dedup` again before exporting"
    ]


def unchecked(store: Store) -> list[str]:
    """What the near-duplicate and benchmark filters did not see: documents imported after
    their last run passed them unchecked (an export names them rather than pass them silently).
    A run saw every document there was; those imported since are counted by time (to the
    second) and by the count the run saw, so that an import in the run's own second is
    neither missed nor taken for one the run saw."""
    total = store.totals()["documents"]
    runs = [
        ("near-duplicate", "studio dedup", at, seen)
        for at, seen in store.conn.execute(
            "SELECT created_at, documents FROM dedup_runs ORDER BY id DESC LIMIT 1"
        )
    ]
    runs += [
        (f"{name} benchmark", f"studio decontam --benchmark {name}", at, seen)
        for name, at, seen in store.conn.execute(
            "SELECT benchmark, created_at, documents FROM decontam_runs r "
            "WHERE id = (SELECT max(id) FROM decontam_runs WHERE benchmark = r.benchmark)"
        )
    ]
    out = _rescored(store)
    for what, command, at, seen in runs:
        since = store.conn.execute(
            "SELECT count(*) FROM documents WHERE imported_at >= ?", (at,)
        ).fetchone()[0]
        newer = min(since, total - seen)
        if newer > 0:
            out.append(
                f"{newer:,} documents were imported after the last {what} check and were not "
                f"checked: run `{command}` again before exporting"
            )
    return out


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


DROPPED_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")


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
    path: str  # the dataset folder
    format: str  # of the shards: parquet | jsonl | jsonl.gz
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
    card_path: str = ""
    shards: list[str] = field(default_factory=list)  # relative to the folder
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    license: str = "other"
    studio_version: str = __version__
    # filters that did not see every exported document (imported after the last run)
    warnings: list[str] = field(default_factory=list)

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
    shard_size: int = SHARD_SIZE,
    license: str = "other",  # noqa: A002 (the card's field)
    batch: int = BATCH,
    task: Task | None = None,
) -> ExportReport:
    """Write the kept documents as a dataset folder ``out`` (and the dropped ones to the file
    ``dropped``); record it in the project."""
    task = task or Task()
    if not LICENSE_ID.fullmatch(license):
        raise ExportError(
            f"{visible(abbreviated(license, 60))!r} is no license id: a Hugging Face license id "
            "is lower-case letters, digits, '-' and '.' (mit, cc-by-4.0, apache-2.0, other)"
        )
    out = expand_home(out).resolve()
    dropped = expand_home(dropped).resolve() if dropped is not None else None
    fmt = fmt or "parquet"
    if fmt not in DATASET_FORMATS:
        raise ExportError(f"unknown format {fmt} (known: {', '.join(DATASET_FORMATS)})")
    if shard_size < 1:
        raise ExportError("a shard holds at least one record")
    if dropped is not None and (dropped == out or out in dropped.parents):
        raise ExportError("the dropped documents need a file of their own, outside the folder")
    check_output(project, out)
    if dropped is not None:
        check_output(project, dropped)
        if dropped.exists():  # as for OUTDIR: an export never replaces what is already there
            raise ExportError(f"{dropped} already exists: choose another file for the dropped")
        if not dropped.name.endswith(DROPPED_SUFFIXES):
            raise ExportError(
                f"{dropped.name}: the dropped documents go to a {', '.join(DROPPED_SUFFIXES)} file"
            )
    if out.exists() and not out.is_dir():  # a file, a device, a pipe
        raise ExportError(f"{out} already exists and is not a folder: choose another")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"{out} already exists and is not an empty folder: choose another")
    if any(parent.exists() and not parent.is_dir() for parent in out.parents):
        raise ExportError(f"{out} is inside a file, not a folder: choose another")
    rule = keep_filter(store, version, threshold)
    created_at = now()
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out, dropped)
    # not mkdtemp: its folder is private (0700), and the dataset is for others to read too
    partial = out.parent / f"{out.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    partial.mkdir()
    drop_tmp = dropped.with_name(f".{dropped.name}.tmp-{os.getpid()}") if dropped else None
    try:
        (partial / "data").mkdir()
        shards = ShardWriter(partial / "data", fmt, shard_size)
        with ExitStack() as opened:
            opened.callback(shards.close)
            side = None
            if dropped is not None and drop_tmp is not None:
                dropped.parent.mkdir(parents=True, exist_ok=True)
                side = open_writer(drop_tmp, dropped, format_of(dropped), with_reason=True)
                opened.callback(side.close)
            counts, by_reason, sources = _stream(store, rule, shards, side, batch, task)
        names = shards.finish()
        with store.transaction():  # the row exists only if the folder does
            row = {
                "created_at": created_at,
                "path": str(out),
                "format": fmt,
                "version": rule.info.version if rule.info else None,
                "threshold": rule.rubric_threshold,
                "kept": counts["kept"],
                "dropped": counts["dropped"],
                "dropped_by_reason": json.dumps(by_reason, ensure_ascii=False),
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
                kept=counts["kept"],
                dropped=counts["dropped"],
                kept_words=counts["kept_words"],
                dropped_words=counts["dropped_words"],
                dropped_path=str(dropped) if dropped else None,
                manifest_path=str(out / "manifest.json"),
                card_path=str(out / "README.md"),
                shards=[f"data/{n}" for n in names],
                dropped_by_reason=dict(by_reason.most_common()),
                license=license,
                warnings=unchecked(store),
            )
            manifest = _manifest(project, store, report, rule, sources)
            (partial / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
            (partial / "README.md").write_text(dataset_card(manifest), "utf-8")
            if dropped is not None and drop_tmp is not None:
                os.replace(drop_tmp, dropped)
            try:
                partial.rename(out)  # replaces an empty folder; refuses a non-empty one
            except BaseException as exc:
                if dropped is not None:
                    dropped.unlink(missing_ok=True)
                if isinstance(exc, OSError) and exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise ExportError(  # checked empty at the start: written since
                        f"{out} was written while this export ran (another export to the same "
                        "folder?): this one is not kept; choose another folder"
                    ) from exc
                raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if drop_tmp is not None:
            drop_tmp.unlink(missing_ok=True)
        raise
    return report


class ShardWriter:
    """Kept records into ``train-NNNNN`` shards of at most ``size`` records, one open at a time;
    :meth:`finish` renames them ``train-NNNNN-of-MMMMM`` once their number is known."""

    def __init__(self, folder: Path, fmt: str, size: int) -> None:
        self.folder, self.fmt, self.size = folder, fmt, size
        self.ext = ".parquet" if fmt == "parquet" else f".{fmt}"
        self.paths: list[Path] = []
        self._writer: Writer | None = None
        self._in_shard = 0
        self._open()  # one shard even when nothing is kept: the layout stays valid

    def _open(self) -> None:
        path = self.folder / f"train-{len(self.paths):05d}{self.ext}"
        self.paths.append(path)
        self._writer = open_writer(path, path, "parquet" if self.fmt == "parquet" else "jsonl")
        self._in_shard = 0

    def write(self, records: list[dict]) -> None:
        while records:
            if self._in_shard >= self.size:
                self.close()
                self._open()
            room = self.size - self._in_shard
            assert self._writer is not None
            self._writer.write(records[:room])
            self._in_shard += len(records[:room])
            records = records[room:]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> list[str]:
        self.close()
        n, names = len(self.paths), []
        for i, path in enumerate(self.paths):
            name = f"train-{i:05d}-of-{n:05d}{self.ext}"
            path.rename(path.with_name(name))
            names.append(name)
        return names


def _reason_kind(rule: KeepFilter, score: float | None) -> str:
    """The reason a page was dropped, without its own score: what the counts are kept by."""
    info = rule.info
    if info is None:  # pragma: no cover (nothing is dropped without a version)
        return "dropped"
    if score is None:
        return f"not scored by {info.version}"
    if rule.threshold is not None:
        return f"score < min-score {rule.threshold:g}"
    what = "score" if info.predicts_score else "P(keep)"
    return f"{what} < cut {info.cut:.2f} of {info.version}"


def _stream(
    store: Store,
    rule: KeepFilter,
    shards: ShardWriter,
    side: Writer | None,
    batch: int,
    task: Task,
) -> tuple[dict[str, int], Counter[str], Counter[str]]:
    """(counts, dropped pages by kind of reason, kept documents by source file)."""
    counts = {"kept": 0, "dropped": 0, "kept_words": 0, "dropped_words": 0}
    by_reason: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    total, after = store.totals()["documents"], 0
    version = rule.info.version if rule.info else None
    while rows := store.export_batch(version, after, batch):
        task.check()
        labels = store.labels_of([r["id"] for r in rows])
        gated = gate_reasons(store, [r["id"] for r in rows])  # near-duplicates, benchmark hits
        for doc_id in rejected_documents(store, [r["id"] for r in rows]):  # rejected by hand
            gated.setdefault(doc_id, ("rejected synthetic page", "a curator rejected the page"))
        kept, dropped = [], []
        for r in rows:
            keep, reason = rule.decide(r["score"], r["keep"])
            kind, reason = gated.get(r["id"], (None, reason))
            keep = keep and kind is None
            rec = record(r, labels.get(r["id"]), rule)
            if keep:
                kept.append(rec)
                sources[r["source"]] += 1
            else:
                dropped.append({**rec, "reason": reason})
                by_reason[kind or _reason_kind(rule, r["score"])] += 1
            side_name = "kept" if keep else "dropped"
            counts[side_name] += 1
            counts[f"{side_name}_words"] += r["signal_words"]
        shards.write(kept)
        if side is not None:
            side.write(dropped)
        after = rows[-1]["id"]
        task.progress(counts["kept"] + counts["dropped"], total, "exporting")
    return counts, by_reason, sources


def _manifest(
    project: Project, store: Store, report: ExportReport, rule: KeepFilter, sources: Counter[str]
) -> dict[str, Any]:
    # what each filter left, from import on (the last stage is this export's keep decision)
    stages = funnel(
        store, version=report.version, threshold=rule.threshold, quality=rule.info is not None
    )
    classifier = None
    if rule.info is not None:
        row = next(v for v in store.classifier_versions() if v["id"] == rule.info.version)
        m = row["metrics"] or {}
        classifier = {
            "version": row["id"],
            "feature_set": row["feature_set"],
            "model_kind": row["model_kind"],
            "trained_threshold": row["threshold"],
            "threshold": rule.rubric_threshold,
            "min_score": rule.threshold,
            "cut": rule.cut,
            "labels": row["n_labels"],
            "metrics": {k: m.get(k) for k in ("f1_keep", "spearman", "roc_auc")},
        }
    top = sources.most_common(TOP_SOURCES)
    return {
        **report.to_dict(),
        "project": str(project.root),
        "fields": _field_names(),
        "funnel": stages.to_dict(),
        "classifier": classifier,
        "sources": {
            "files": len(sources),
            "top": [{"path": p, "documents": n} for p, n in top],
            "more_files": len(sources) - len(top),
            "more_documents": sum(sources.values()) - sum(n for _, n in top),
        },
    }


def dataset_card(manifest: dict[str, Any]) -> str:
    """The README.md of the dataset folder: YAML front matter the Hugging Face Hub reads (license,
    the ``default`` config's train split), then what the data is and where it came from."""
    q = json.dumps  # a JSON string is a YAML scalar: no quoting surprises
    project = Path(manifest["project"]).name or manifest["project"]
    lines = [
        "---",
        f"license: {q(manifest['license'])}",
        f"pretty_name: {q(f'{project} (Textbook Studio export)')}",
        "tags:",
        "- textbook-studio",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        "    path: data/train-*",
        "---",
        "",
        f"# {project}",
        "",
        f"Exported by Textbook Studio {manifest['studio_version']} from the project "
        f"`{manifest['project']}` on {manifest['created_at']} (export {manifest['id']}): "
        f"{manifest['text']}, in {len(manifest['shards'])} {manifest['format']} shard(s) "
        "under `data/`.",
        "",
        "## Funnel",
        "",
        manifest["funnel"]["text"],
        "",
        "| stage | documents | words |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {'imported' if s['name'] == 'imported' else s['label']} "
        f"| {s['documents']:,} | {s['words']:,} |"
        for s in manifest["funnel"]["stages"]
    ]
    lines += [f"\n**Not checked:** {w}." for w in manifest.get("warnings") or []]
    lines += ["", "## Classifier", ""]
    c = manifest["classifier"]
    if c is None:
        lines.append("None: every document of the project is exported.")
    else:

        def num(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        keep = (
            f"predicted score >= {c['min_score']:g} (--min-score)"
            if c["min_score"] is not None
            else f"the version's own decision: output >= cut {c['cut']:.3f} "
            f"(trained for keep threshold {c['trained_threshold']:g})"
        )
        lines += [
            f"- version: `{c['version']}`",
            f"- feature set: {c['feature_set']}; model: {c['model_kind']}",
            f"- kept when: {keep}",
            f"- cross-validated on {c['labels']:,} labels: F1 at keep "
            f"{num(c['metrics']['f1_keep'])}, Spearman {num(c['metrics']['spearman'])}, "
            f"ROC-AUC {num(c['metrics']['roc_auc'])}",
        ]
    src = manifest["sources"]
    lines += ["", "## Sources", "", f"{src['files']:,} source file(s) contributed documents:", ""]
    lines += [f"- `{s['path']}`: {s['documents']:,}" for s in src["top"]]
    if src["more_files"]:
        lines.append(
            f"- and {src['more_files']:,} more files ({src['more_documents']:,} documents)"
        )
    lines += ["", "## Fields", ""]
    lines += [f"- `{f}`" for f in manifest["fields"]]
    lines += [
        "",
        "`text` is the page's main text; `provenance.locator` is JSON text (its keys vary with "
        "the source format); `provenance.score` is the classifier's output and "
        "`provenance.classifier` its version.",
        "",
        "## Dropped pages",
        "",
        f"{manifest['dropped']:,} page(s) were dropped.",
        "",
    ]
    lines += [f"- {why}: {n:,}" for why, n in manifest["dropped_by_reason"].items()]
    where = (
        f"Each dropped page, with its reason, is in `{manifest['dropped_path']}`."
        if manifest["dropped_path"]
        else "They were not written out (`studio export --dropped FILE` writes them, "
        "each with its reason)."
    )
    lines += [
        "",
        where + " The project records this export (table `exports`) and `manifest.json` "
        "holds these counts.",
        "",
    ]
    return "\n".join(lines)


def _field_names() -> list[str]:
    schema = parquet_schema()
    nested = [f"provenance.{f.name}" for f in schema.field("provenance").type]
    return [f.name for f in schema] + nested
