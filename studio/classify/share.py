"""Move a trained classifier version between projects as one self-contained, safe file.

The file is a zip holding the version folder's files (``meta.json``, ``model.npz``, the feature
extractors' ``.json``/``.npz`` state) and a ``manifest.json`` naming the version, what it was
trained on, and the sha256 of every member. Nothing in it is a pickle.

An import trusts nothing in the file. Before anything is written it checks the member names (plain
``.json``/``.npz`` names, no folders, no ``..``), the sizes (a zip bomb is refused), the checksums,
that every ``.npz`` loads with ``allow_pickle=False`` and that the model loads and predicts on a
tiny sample. Only then is the folder renamed into ``models/classifier/`` under a new id and the
version's row added. A refused file leaves the project as it was.

Example::

    with a.store() as store:
        export_version(a, store, Path("edu.studio-model.zip"), "0002-tfidf-logistic")
    with b.store() as store:
        report = import_version(b, store, Path("edu.studio-model.zip"))
    print(report.version)   # 0001-tfidf-logistic-imported
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.classify.features import EXTRACTORS, DocText
from studio.classify.models import KINDS
from studio.classify.versions import FOLDER, load_folder, next_version_id, version_info
from studio.export import output_problem
from studio.paths import expand_home, require_regular_file
from studio.project import Project
from studio.store import Store, now

FORMAT = "studio-classifier"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_TOTAL = 200 * 1024 * 1024  # uncompressed bytes; a TF-IDF model is a few MB
MAX_MEMBERS = 32
# a plain file name of the version folder: no folders, no "..", only .json and .npz
MEMBER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.(json|npz)$")
REQUIRED_META = ("id", "feature_set", "model_kind", "feature_versions", "threshold", "cut")
SAMPLE = [
    DocText(-1, "A lesson explains the theorem step by step, with an example and a proof.", 0.9),
    DocText(-2, "Buy now! Free shipping on every order, subscribe to our newsletter.", 0.2),
]


class ShareError(Exception):
    """The file cannot be exported or imported as asked (nothing was written)."""


@dataclass(frozen=True, slots=True)
class ImportReport:
    version: str  # the id in this project
    imported_from: str  # the id in the project it came from
    feature_set: str
    model_kind: str
    threshold: float
    path: str  # the version folder, relative to the project root

    @property
    def text(self) -> str:
        return (
            f"imported {self.imported_from} as {self.version} "
            f"({self.feature_set} with {self.model_kind}, keep>={self.threshold:g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


# -- export ----------------------------------------------------------------------------------------


def export_version(
    project: Project, store: Store, out: Path, version: str | None = None
) -> dict[str, Any]:
    """Write a version (the latest when none is named) to ``out``; returns the manifest."""
    try:
        info = version_info(store, version)
    except LookupError as exc:
        raise ShareError(str(exc.args[0])) from exc
    row = next(v for v in store.classifier_versions() if v["id"] == info.version)
    folder = project.root / row["path"]
    if not folder.is_dir():
        raise ShareError(f"the files of classifier {info.version} are missing ({folder})")
    _check_predicts(folder, info.version)  # a damaged model is refused here, not by the importer
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    for name in files:
        if not MEMBER_NAME.match(name) or name == MANIFEST:
            raise ShareError(f"unexpected file {name} in {folder}")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "studio_version": __version__,
        "exported_at": now(),
        "version": info.version,
        "feature_set": row["feature_set"],
        "model_kind": row["model_kind"],
        "threshold": row["threshold"],
        "metrics": row["metrics"],
        "label_hash": row["label_hash"],
        "n_labels": row["n_labels"],
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in files.items()
        },
    }
    out = expand_home(out).resolve()
    problem = output_problem(project, out)
    if problem is not None:  # the database, or this very version's files
        raise ShareError(f"{problem} (nothing was written)")
    if out.exists() and not out.is_file():  # a device or pipe would be read without end
        raise ShareError(f"{out} is not a regular file (a device, pipe or folder): choose a file")
    if out.exists() and not zipfile.is_zipfile(out):  # an earlier export may be replaced
        raise ShareError(f"{out} already exists and is not a classifier export: choose another")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
            for name, data in files.items():
                zf.writestr(name, data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


# -- import ----------------------------------------------------------------------------------------


def import_version(project: Project, store: Store, path: Path) -> ImportReport:
    """Check the file from end to end, then store it as a new version of ``project``."""
    manifest, files = read_package(Path(path))
    meta = _check_meta(manifest, files)
    original = str(meta["id"])
    same = _same_model(project, store, files, meta)
    if same is not None:  # a second copy would only be a second row to tell apart
        raise ShareError(
            f"this classifier ({original}) is already in the project as version {same}"
        )
    slug = f"{meta['feature_set'].replace('+', '_')}-{meta['model_kind']}-imported"
    version = next_version_id(store, slug)
    rel = Path(*FOLDER, version)
    final = project.root / rel
    if final.exists():
        raise ShareError(f"{final} already exists")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        _check_predicts(tmp, original)
        created_at = now()
        meta = {
            **meta,
            "id": version,
            "created_at": created_at,
            "trained_at": meta.get("created_at"),
            "imported_from": original,
            "imported_studio_version": manifest.get("studio_version"),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        store.add_classifier_version(
            {
                "id": version,
                "created_at": created_at,
                "feature_set": meta["feature_set"],
                "model_kind": meta["model_kind"],
                "threshold": float(meta["threshold"]),
                "metrics": manifest.get("metrics") or meta.get("metrics") or {},
                "label_hash": str(manifest.get("label_hash") or meta.get("label_hash") or ""),
                "n_labels": int(manifest.get("n_labels") or meta.get("n_labels") or 0),
                "path": rel.as_posix(),
            }
        )
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return ImportReport(
        version,
        original,
        meta["feature_set"],
        meta["model_kind"],
        float(meta["threshold"]),
        rel.as_posix(),
    )


def _model_digest(files: dict[str, bytes], meta: dict[str, Any]) -> str:
    """sha256 over a version's model files and the decision it keeps: everything but meta.json,
    which an import rewrites (new id, dates), plus meta's threshold and cut."""
    digest = hashlib.sha256(json.dumps([meta.get("threshold"), meta.get("cut")]).encode())
    for name in sorted(files):
        if name != "meta.json":
            digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _same_model(
    project: Project, store: Store, files: dict[str, bytes], meta: dict[str, Any]
) -> str | None:
    """The id of a stored version holding exactly this model (the same file imported twice, or
    an export brought back to the project it came from); damaged versions are passed over."""
    wanted = _model_digest(files, meta)
    for row in store.classifier_versions():
        folder = project.root / row["path"]
        try:
            held = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
            held_meta = json.loads(held.get("meta.json", b"{}"))
        except (OSError, ValueError):
            continue
        if isinstance(held_meta, dict) and _model_digest(held, held_meta) == wanted:
            return str(row["id"])
    return None


def read_package(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the member files, every name, size and checksum checked."""
    try:
        require_regular_file(path)
        zf = zipfile.ZipFile(path)
    except ValueError as exc:
        raise ShareError(str(exc)) from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise ShareError(f"{path.name} is not a readable zip: {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ShareError(f"{path.name} holds {len(infos)} files; a classifier has a few")
        names = [i.filename for i in infos]
        for name in names:
            if not MEMBER_NAME.match(name):
                raise ShareError(f"refused member {name!r}: only plain .json/.npz names belong")
        if len(set(names)) != len(names):
            raise ShareError(f"{path.name} names a file twice")
        if MANIFEST not in names:
            raise ShareError(f"{path.name} has no {MANIFEST}: not a classifier file")
        total = sum(i.file_size for i in infos)
        if total > MAX_TOTAL:
            raise ShareError(f"{path.name} unpacks to {total:,} bytes (at most {MAX_TOTAL:,})")
        data: dict[str, bytes] = {}
        budget = MAX_TOTAL
        for info in infos:
            try:
                with zf.open(info) as f:
                    blob = f.read(budget + 1)  # never more than the cap, whatever the header says
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as exc:
                raise ShareError(f"{path.name} is damaged ({info.filename}: {exc})") from exc
            budget -= len(blob)
            if budget < 0:
                raise ShareError(f"{path.name} unpacks to more than {MAX_TOTAL:,} bytes")
            data[info.filename] = blob
    manifest = _json(data.pop(MANIFEST), MANIFEST)
    if manifest.get("format") != FORMAT:
        raise ShareError(f"{path.name} is not a classifier file (format {manifest.get('format')})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ShareError(
            f"{path.name} is format version {manifest.get('format_version')}; "
            f"this studio reads version {FORMAT_VERSION}"
        )
    listed = manifest.get("files")
    if not isinstance(listed, dict) or set(listed) != set(data):
        raise ShareError(f"{path.name}: the manifest does not list exactly the files it holds")
    for name, blob in data.items():
        entry = listed[name]
        digest = hashlib.sha256(blob).hexdigest()
        if not isinstance(entry, dict) or entry.get("sha256") != digest:
            raise ShareError(f"{path.name}: checksum mismatch for {name}")
        if entry.get("size") != len(blob):
            raise ShareError(
                f"{path.name}: {name} holds {len(blob):,} bytes, the manifest says "
                f"{entry.get('size')!r}"
            )
        if name.endswith(".npz"):
            _check_npz(name, blob)
    return manifest, data


def _json(blob: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShareError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ShareError(f"{name} is not a JSON object")
    return value


def _check_npz(name: str, blob: bytes) -> None:
    """Plain numeric arrays only: a pickle (an object array) or an inner bomb is refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as inner:
            if sum(i.file_size for i in inner.infolist()) > MAX_TOTAL:
                raise ShareError(f"{name} unpacks to more than {MAX_TOTAL:,} bytes")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            for key in z.files:
                if z[key].dtype.hasobject:
                    raise ShareError(f"{name} holds Python objects ({key})")
    except ShareError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ShareError(f"refused {name}: it holds pickled objects") from exc
        raise ShareError(f"{name} is not a valid .npz: {exc}") from exc
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ShareError(f"{name} is not a valid .npz: {exc}") from exc


def _check_meta(manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    if "meta.json" not in files:
        raise ShareError("the file has no meta.json")
    meta = _json(files["meta.json"], "meta.json")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ShareError(f"meta.json lacks {', '.join(missing)}")
    for key in ("feature_set", "model_kind"):
        if meta[key] != manifest.get(key):
            raise ShareError(f"the manifest and meta.json disagree on {key}")
    if meta["id"] != manifest.get("version"):
        raise ShareError("the manifest and meta.json disagree on the version id")
    if not isinstance(meta["id"], str) or len(meta["id"]) > 100:
        raise ShareError(f"unusable version id {meta['id']!r}")
    if meta["model_kind"] not in KINDS:
        raise ShareError(f"unknown model kind {meta['model_kind']!r}")
    parts = str(meta["feature_set"]).split("+")
    if not all(part in EXTRACTORS for part in parts):
        raise ShareError(f"unknown feature set {meta['feature_set']!r}")
    try:
        threshold, cut = float(meta["threshold"]), float(meta["cut"])
    except (TypeError, ValueError) as exc:
        raise ShareError("meta.json: threshold and cut must be numbers") from exc
    # float() reads "nan" and 1e308 too: the card and the version list would show them
    if not (0 <= threshold <= 5 and math.isfinite(cut)):
        raise ShareError(
            f"meta.json: the keep threshold must be a score from 0 to 5 and the cut a finite "
            f"number (threshold {meta['threshold']!r}, cut {meta['cut']!r})"
        )
    listed = manifest.get("threshold")
    if listed is not None and listed != meta["threshold"]:
        raise ShareError("the manifest and meta.json disagree on the keep threshold")
    return meta


def _check_predicts(folder: Path, version: str) -> None:
    """The model loads and gives one finite score per document of a tiny sample."""
    try:
        classifier = load_folder(folder, version)
        score, keep = classifier.predict(SAMPLE)
    except ShareError:
        raise
    except Exception as exc:  # whatever a damaged model raises, the import is refused
        raise ShareError(f"the classifier does not load or predict: {exc}") from exc
    if np.shape(score) != (len(SAMPLE),) or np.shape(keep) != (len(SAMPLE),):
        raise ShareError("the classifier does not give one score per document")
    if not np.all(np.isfinite(score)):
        raise ShareError("the classifier gives non-finite scores")
