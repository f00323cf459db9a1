"""Moving a classifier version between projects: the round trip, and files an import must refuse
(real SQLite, real scikit-learn, real zips)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from studio.classify import share
from studio.classify.features import load_docs
from studio.classify.share import ShareError, export_version, import_version
from studio.classify.train import train_classifier
from studio.classify.versions import latest_version, load_classifier
from studio.project import Project
from tests.core.test_classify import make_labelled_project


def _trained(root: Path, features: str = "tfidf", model: str = "logistic") -> tuple[Project, str]:
    project = Project.open(root)
    with project.store() as store:
        make_labelled_project(store, labelled=60, unlabelled=20)
        report = train_classifier(project, store, features=features, model=model, folds=2)
    return project, report.version["id"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str, Path]:
    """One trained and exported project for the module (training is the slow part); the tests
    only read it."""
    root = tmp_path_factory.mktemp("share")
    a, version = _trained(root / "a")
    out = root / "edu.zip"
    with a.store() as store:
        export_version(a, store, out, version)
    return a, version, out


@pytest.fixture
def target(tmp_path: Path) -> Project:
    b = Project.open(tmp_path / "b")
    with b.store() as store:
        make_labelled_project(store, labelled=0, unlabelled=10)
    return b


@pytest.mark.parametrize(("features", "model"), [("tfidf", "logistic"), ("tfidf+hand", "forest")])
def test_round_trip_predicts_the_same(tmp_path: Path, features: str, model: str) -> None:
    a, version = _trained(tmp_path / "a", features, model)
    out = tmp_path / "out" / "edu.zip"
    with a.store() as store:
        manifest = export_version(a, store, out)  # the latest
        docs = load_docs(store, store.document_ids())
        before, keep_before = load_classifier(a, store, version).predict(docs)
    assert manifest["version"] == version and manifest["model_kind"] == model
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
    assert names == {"manifest.json", *manifest["files"]} and "meta.json" in names
    assert {Path(n).suffix for n in names} == {".json", ".npz"}

    b = Project.open(tmp_path / "b")
    with b.store() as store:
        make_labelled_project(store, labelled=0, unlabelled=5)
        report = import_version(b, store, out)
        assert report.version == f"0001-{features.replace('+', '_')}-{model}-imported"
        assert report.imported_from == version
        assert latest_version(store) == report.version
        [row] = store.classifier_versions()
        assert row["label_hash"] == manifest["label_hash"]
        assert row["n_labels"] == manifest["n_labels"]
        assert row["metrics"] == manifest["metrics"]
        imported = load_classifier(b, store)
        after, keep_after = imported.predict(docs)  # the same documents as in project A
        assert imported.meta["imported_from"] == version
        assert imported.meta["id"] == report.version
        # the same file again is refused, by its model and not its name: nothing is written
        again = tmp_path / "again.zip"
        again.write_bytes(out.read_bytes())
        with pytest.raises(ShareError, match=f"already in the project as version {report.version}"):
            import_version(b, store, again)
        assert [v["id"] for v in store.classifier_versions()] == [report.version]
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(keep_after, keep_before)
    assert not list((b.root / "models" / "classifier").glob(".*"))  # no temp folder left


def _rewrite(
    src: Path,
    dst: Path,
    change: Callable[[dict[str, bytes]], None],
    *,
    fix_checksums: bool = True,
) -> Path:
    """A copy of an export with its members changed (checksums made to match, by default, so the
    check under test is the one that refuses it)."""
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    change(files)
    if fix_checksums:
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {
            n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
            for n, b in files.items()
            if n != "manifest.json"
        }
        files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return dst


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _pickled_model(files: dict[str, bytes]) -> None:
    # np.savez pickles an object array (allow_pickle=True): loading it would run code
    files["model.npz"] = _npz(coef=np.array([{"rm -rf": "/"}], dtype=object))


def _evil_member(files: dict[str, bytes]) -> None:
    files["../evil.json"] = b"{}"


def _wrong_shapes(files: dict[str, bytes]) -> None:
    files["model.npz"] = _npz(coef=np.ones(3), intercept=np.zeros(1), cut=np.array([0.5]))


def _unknown_kind(files: dict[str, bytes]) -> None:
    meta = json.loads(files["meta.json"])
    manifest = json.loads(files["manifest.json"])
    meta["model_kind"] = manifest["model_kind"] = "svm"
    files["meta.json"], files["manifest.json"] = (
        json.dumps(meta).encode(),
        json.dumps(manifest).encode(),
    )


def _meta(**changes: object) -> Callable[[dict[str, bytes]], None]:
    """Change meta.json (and the manifest's copy of the same keys)."""

    def change(files: dict[str, bytes]) -> None:
        meta, manifest = json.loads(files["meta.json"]), json.loads(files["manifest.json"])
        meta.update(changes)
        manifest.update({k: v for k, v in changes.items() if k in manifest})
        files["meta.json"], files["manifest.json"] = (
            json.dumps(meta).encode(),
            json.dumps(manifest).encode(),
        )

    return change


def _declared_size(files: dict[str, bytes]) -> None:
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["model.npz"]["size"] = 10**15  # the checksum still matches
    files["manifest.json"] = json.dumps(manifest).encode()


def _absolute(files: dict[str, bytes]) -> None:
    files["/etc/passwd.json"] = b"{}"


def _nested(files: dict[str, bytes]) -> None:
    files["sub/model.npz"] = files["model.npz"]


def _python(files: dict[str, bytes]) -> None:
    files["run.py"] = b"import os"


@pytest.mark.parametrize(
    ("change", "fix", "message"),
    [
        (_pickled_model, True, "pickled"),
        (_evil_member, True, "refused member '../evil.json'"),
        (_absolute, True, "refused member"),
        (_nested, True, "refused member"),
        (_python, True, "refused member 'run.py'"),
        (_wrong_shapes, True, "does not load or predict"),
        (_unknown_kind, True, "unknown model kind"),
        (lambda f: f.update({"meta.json": b"{not json"}), True, "not valid JSON"),
        (lambda f: f.pop("meta.json"), True, "no meta.json"),
        (lambda f: f.update({"meta.json": f["meta.json"] + b" "}), False, "checksum mismatch"),
        (lambda f: f.update({"extra.json": b"{}"}), False, "does not list exactly"),
        (lambda f: f.pop("manifest.json"), False, "no manifest.json"),
        (_declared_size, False, "the manifest says 1000000000000000"),
        (_meta(threshold=1e308), True, "the keep threshold must be a score from 0 to 5"),
        (_meta(threshold=float("nan")), True, "the keep threshold must be a score"),
        (_meta(cut=float("nan")), True, "the cut a finite number"),
        (_meta(cut="inf"), True, "the cut a finite number"),
    ],
)
def test_hostile_files_are_refused_and_nothing_is_written(
    exported, target: Project, tmp_path: Path, change, fix: bool, message: str
) -> None:
    _, _, out = exported
    bad = _rewrite(out, tmp_path / "bad.zip", change, fix_checksums=fix)
    _refused(target, bad, message)


def test_truncated_and_foreign_files_are_refused(exported, target: Project, tmp_path: Path) -> None:
    _, _, out = exported
    data = out.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    _refused(target, truncated, "not a readable zip")
    text = tmp_path / "notes.zip"
    text.write_text("hello")
    _refused(target, text, "not a readable zip")
    # a member cut short inside an intact directory: the CRC check catches it
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("model.npz")
    damaged = bytearray(data)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged[start : start + 8] = b"\0" * 8
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    _refused(target, tmp_path / "damaged.zip", "damaged")


def test_a_zip_bomb_is_refused(
    exported, target: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, out = exported
    # the cap scaled down so the bomb stays small: zeros compress ~1000:1, like a real one
    monkeypatch.setattr(share, "MAX_TOTAL", 2_000_000)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("padding.json", b"0" * 3_000_000)
    assert bomb.stat().st_size < 500_000
    _refused(target, bomb, "unpacks to")
    # an .npz that is itself a bomb, inside a small outer file
    inner = _npz(zeros=np.zeros(1))
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        assert z.namelist() == ["zeros.npy"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.npy", b"\0" * 3_000_000)
    _refused(
        target,
        _rewrite(out, tmp_path / "npz-bomb.zip", lambda f: f.update({"hand.npz": buf.getvalue()})),
        "unpacks to more than",
    )


def _refused(project: Project, path: Path, message: str) -> None:
    with project.store() as store:
        with pytest.raises(ShareError, match=message.replace("(", r"\(").replace(".", r"\.")):
            import_version(project, store, path)
        assert store.classifier_versions() == []
    folder = project.root / "models" / "classifier"
    assert not folder.exists() or not list(folder.iterdir())


def test_export_names_a_missing_version(exported, tmp_path: Path) -> None:
    a, _, _ = exported
    with a.store() as store, pytest.raises(ShareError, match="no classifier version v9"):
        export_version(a, store, tmp_path / "x.zip", "v9")
    assert not (tmp_path / "x.zip").exists()


def test_export_never_writes_over_the_projects_own_files(exported, tmp_path: Path) -> None:
    a, version, _ = exported
    model = a.root / "models" / "classifier" / version / "model.npz"
    before = model.read_bytes()
    (tmp_path / "link.zip").symlink_to(a.db_path)
    for bad, why in [
        (a.db_path, "project's database"),
        (tmp_path / "link.zip", "project's database"),
        (model, "classifier models"),
    ]:
        with a.store() as store, pytest.raises(ShareError, match=why):
            export_version(a, store, bad, version)
    assert model.read_bytes() == before
    with a.store() as store:
        assert [v["id"] for v in store.classifier_versions()] == [version]


def test_an_export_brought_back_is_refused_and_another_model_is_not(
    exported, tmp_path: Path
) -> None:
    a, version, out = exported
    with a.store() as store, pytest.raises(ShareError, match=f"as version {version}"):
        import_version(a, store, out)

    def other_threshold(files: dict[str, bytes]) -> None:  # the same weights, another decision
        for name in ("meta.json", "manifest.json"):
            data = json.loads(files[name])
            data["threshold"] = 4
            files[name] = json.dumps(data).encode()

    moved = _rewrite(out, tmp_path / "moved.zip", other_threshold)
    b = Project.open(tmp_path / "b")
    with b.store() as store:
        import_version(b, store, out)
        assert import_version(b, store, moved).version.startswith("0002-")


def test_a_damaged_version_is_not_exported(tmp_path: Path) -> None:
    project, version = _trained(tmp_path / "p", features="hand", model="ridge")
    model = project.root / "models" / "classifier" / version / "model.npz"
    model.write_bytes(model.read_bytes()[:500])
    with project.store() as store, pytest.raises(ShareError, match="does not load or predict"):
        export_version(project, store, tmp_path / "x.zip", version)
    assert not (tmp_path / "x.zip").exists()


def test_export_never_replaces_a_file_that_is_not_an_export(exported, tmp_path: Path) -> None:
    a, version, _ = exported
    notes = tmp_path / "notes.csv"
    notes.write_text("doc_id,score\n1,3\n")
    with a.store() as store, pytest.raises(ShareError, match="not a classifier export"):
        export_version(a, store, notes, version)
    assert notes.read_text() == "doc_id,score\n1,3\n"
    again = tmp_path / "edu.zip"
    with a.store() as store:
        export_version(a, store, again, version)
        export_version(a, store, again, version)  # an earlier export is replaced
    assert zipfile.is_zipfile(again)


def test_a_pipe_or_device_is_neither_written_nor_read(exported, target: Project, tmp_path: Path):
    """Checking a pipe or /dev/zero for an earlier export read it without end (24 GB, then the
    system killed the studio); opening a pipe to import waited for a writer."""
    a, version, _ = exported
    pipe = tmp_path / "edu.zip"
    os.mkfifo(pipe)
    for device in (pipe, Path("/dev/zero")):
        with a.store() as store, pytest.raises(ShareError, match="is not a regular file"):
            export_version(a, store, device, version)
        with target.store() as store, pytest.raises(ShareError, match="is not a regular file"):
            import_version(target, store, device)
