"""Trained classifiers as versions of the project: files under ``models/classifier/<id>/`` and a
row in ``classifier_versions``.

A version folder holds ``meta.json`` (feature set, model kind, threshold, extractor versions,
label hash, cross-validated metrics and the reason it was chosen), ``model.npz`` and the feature
extractors' fitted state (``tfidf.vocab.json``, ``tfidf.npz``, ``hand.npz``; ``minilm.json`` names
the embedding model and its fingerprint). ``meta.json`` records the embedding models behind the
features under ``embedding``. Nothing in it is a pickle; every ``.npz`` is read with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.classify.features import DocText, FeatureSet
from studio.classify.models import ForestModel, LinearModel, load_model
from studio.progress import Task
from studio.project import Project
from studio.store import Store, now

FOLDER = ("models", "classifier")


def label_hash(triples: Sequence[tuple[int, str, int]]) -> str:
    """sha256 of the sorted (doc_id, annotator, score): equal hashes, equal training labels."""
    data = json.dumps(sorted(triples), separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass
class Classifier:
    """A trained version: features, model and the keep threshold, ready to score pages."""

    version: str
    features: FeatureSet
    model: LinearModel | ForestModel
    threshold: float
    meta: dict[str, Any]

    def predict(
        self, docs: Sequence[DocText], store: Any = None, task: Task | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(score, keep) per document; the score is the rubric score, or P(keep) for logistic.
        ``store`` (a Store, or anything with its two feature-cache methods) caches vectors."""
        if not docs:
            return np.zeros(0), np.zeros(0, dtype=bool)
        score = self.model.predict(self.features.transform(docs, store, task))
        return score, self.model.decide(score)


def save_version(
    project: Project,
    store: Store,
    features: FeatureSet,
    model: LinearModel | ForestModel,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """Write the files, then record the version; a crash in between leaves no row without files."""
    version = next_version_id(store, f"{features.name.replace('+', '_')}-{model.kind}")
    rel = Path(*FOLDER, version)
    final = project.root / rel
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    extractor_versions = features.save(tmp)
    model.save(tmp)
    meta = {
        **meta,
        "id": version,
        "created_at": now(),
        "feature_set": features.name,
        "model_kind": model.kind,
        "feature_versions": extractor_versions,
        "embedding": features.embeddings(),
        "studio_version": __version__,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), "utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    row = {
        "id": version,
        "created_at": meta["created_at"],
        "feature_set": features.name,
        "model_kind": model.kind,
        "threshold": meta["threshold"],
        "metrics": meta["metrics"],
        "label_hash": meta["label_hash"],
        "n_labels": meta["n_labels"],
        "path": rel.as_posix(),
    }
    try:
        store.add_classifier_version(row)
    except BaseException:  # a read-only or full database: no folder left without its row
        shutil.rmtree(final, ignore_errors=True)
        raise
    return row


def next_version_id(store: Store, slug: str) -> str:
    """``<n>-<slug>`` with the next free sequence number (``0003-tfidf-logistic``)."""
    existing = {v["id"] for v in store.classifier_versions()}
    n = len(existing) + 1
    while f"{n:04d}-{slug}" in existing:
        n += 1
    return f"{n:04d}-{slug}"


def latest_version(store: Store) -> str | None:
    versions = store.classifier_versions()
    return versions[-1]["id"] if versions else None


def latest_choice(store: Store) -> tuple[str, str] | None:
    """The latest version's (feature set, model kind); None before the first training."""
    versions = store.classifier_versions()
    if not versions:
        return None
    return str(versions[-1]["feature_set"]), str(versions[-1]["model_kind"])


def load_classifier(project: Project, store: Store, version: str | None = None) -> Classifier:
    """A stored version (the latest when none is named); raises LookupError when there is none."""
    row = _version_row(store, version)
    return load_folder(project.root / row["path"], row["id"])


class ClassifierFileError(LookupError):
    """A stored version whose files are missing or damaged. A LookupError, as a missing version
    is: every caller already answers both with "no usable classifier" and the reason."""


def load_folder(folder: Path, version: str) -> Classifier:
    """The classifier saved in ``folder``, wherever that folder is (an import checks one this way
    before it becomes a version of the project)."""
    import zipfile

    from studio.embed import EmbeddingError

    meta = read_meta(folder, version)
    try:
        features = FeatureSet.load(meta["feature_set"], folder, meta["feature_versions"])
        model = load_model(meta["model_kind"], folder)
        return Classifier(version, features, model, float(meta["threshold"]), meta)
    except EmbeddingError:
        raise  # its own reason: the embedding model is gone or is not the one trained with
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        if isinstance(exc, KeyError):
            reason = f"meta.json names no {exc.args[0]}"
        raise _file_error(version, folder, str(reason)) from exc


_JSON_KINDS = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
}
# what loading a version (to score, explain or export) cannot do without; the metrics are only
# shown, and an imported version may lack them
META_KEYS = ("feature_set", "feature_versions", "model_kind", "threshold")


def read_meta(folder: Path, version: str) -> dict[str, Any]:
    """A version's ``meta.json``: a file anyone can edit, delete or overwrite, so each way it can
    be unusable (no folder, no file, not text, not JSON, not an object, a key that loading needs
    missing) raises a ClassifierFileError that says which, rather than whatever the first lookup
    in it tripped on."""
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        reason = "meta.json is missing" if folder.is_dir() else "its folder is missing"
        raise _file_error(version, folder, reason) from exc
    except UnicodeDecodeError as exc:
        raise _file_error(version, folder, "meta.json is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise _file_error(version, folder, f"meta.json is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise _file_error(version, folder, f"meta.json: {exc.strerror or exc}") from exc
    if not isinstance(meta, dict):
        kind = _JSON_KINDS.get(type(meta), "a value")
        raise _file_error(version, folder, f"meta.json holds {kind}, not a JSON object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise _file_error(version, folder, f"meta.json names no {', '.join(missing)}")
    return meta


def _file_error(version: str, folder: Path, reason: str) -> ClassifierFileError:
    return ClassifierFileError(
        f"classifier {version} cannot be read from {folder} ({reason}): its files are "
        "missing or damaged; train it again or import it from an export"
    )


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """What a stored version decides by, without loading its model: the rubric threshold it was
    trained for and the ``cut`` on its output (a page is kept when ``score >= cut``)."""

    version: str
    model_kind: str
    threshold: float
    cut: float
    scored: int

    @property
    def predicts_score(self) -> bool:
        """Ridge, blend and forest predict the rubric score; logistic predicts P(keep)."""
        return self.model_kind != "logistic"


def version_info(store: Store, version: str | None = None) -> VersionInfo:
    """The latest version when none is named; raises LookupError when there is none."""
    row = _version_row(store, version)
    return VersionInfo(
        row["id"], row["model_kind"], row["threshold"], _cut(store, row), row["scored"]
    )


LATEST = "latest"  # what a curator may name instead of the newest version's id


def _version_row(store: Store, version: str | None) -> dict[str, Any]:
    rows = {v["id"]: v for v in store.classifier_versions()}
    version = latest_version(store) if version in (None, "", LATEST) else version
    if version is None:
        raise LookupError("no classifier trained yet: run `studio classifier train` first")
    if version not in rows:
        known = ", ".join(rows) or "none"
        raise LookupError(f"no classifier version {version} (known: {known})")
    return rows[version]


def _cut(store: Store, row: dict[str, Any]) -> float:
    """The cut from the version's meta.json (the project folder holds the database). Should the
    folder be gone, the stored keep decisions still bound it: halfway between the highest dropped
    and the lowest kept score."""
    meta_path = store.path.parent / row["path"] / "meta.json"
    if meta_path.is_file():
        try:
            return float(json.loads(meta_path.read_text("utf-8"))["cut"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ClassifierFileError(
                f"classifier {row['id']}: {meta_path} cannot be read ({exc}): it is damaged; "
                "train the classifier again or import it from an export"
            ) from exc
    dropped, kept = store.conn.execute(
        "SELECT max(CASE WHEN keep = 0 THEN score END), min(CASE WHEN keep = 1 THEN score END) "
        "FROM classifier_scores WHERE version = ?",
        (row["id"],),
    ).fetchone()
    if dropped is not None and kept is not None:
        return (dropped + kept) / 2
    return 0.5 if row["model_kind"] == "logistic" else float(row["threshold"])  # models' defaults
