"""Diversity of a project's document sets: choose the sets, load and embed them, measure.

Embeddings are the classifier's static features (model2vec ``minilm-static``), read from and
written to the project's feature cache, so a page is embedded once for both. The reference model
lives in the project's ``models/diversity-reference/`` and is refitted when the real pages change.
"""

from __future__ import annotations

import logging

import numpy as np

from studio.classify.features import DocText, StaticFeatures
from studio.diversity import reference as ref
from studio.diversity.analysis import Documents, Options, Report, measure
from studio.diversity.sets import DocSet, group_sets, real_ids
from studio.progress import Task
from studio.project import Project
from studio.store import DocumentQuery, Store

REAL_SAMPLE = 5_000  # real pages measured as the baseline, at most
FIT_SAMPLE = 20_000  # real pages the reference model is fitted on, at most
REFERENCE_DIR = "diversity-reference"
LOAD_BATCH = 500
log = logging.getLogger(__name__)


class _Stage(Task):
    """One stage of a longer job: its progress fills ``lo``..``hi`` of the parent's bar."""

    def __init__(self, parent: Task, lo: float, hi: float) -> None:
        super().__init__()
        self._parent, self._lo, self._hi = parent, lo, hi

    def progress(self, done: int, total: int, msg: str = "") -> None:
        share = self._lo + (self._hi - self._lo) * (done / total if total else 0.0)
        self._parent.progress(int(1000 * share), 1000, msg)

    def cancel(self) -> None:
        self._parent.cancel()

    def cancelled(self) -> bool:
        return self._parent.cancelled()


def sample_ids(ids: list[int], limit: int, seed: int = 0) -> list[int]:
    """At most ``limit`` of ``ids``, drawn with a fixed seed, in id order."""
    if len(ids) <= limit:
        return list(ids)
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(np.asarray(ids), size=limit, replace=False))


def fit_ids(real: list[int]) -> list[int]:
    """The real pages the reference model is fitted on: all but the held-out ones, sampled."""
    return sample_ids([i for i in real if i % ref.HOLDOUT != 0], FIT_SAMPLE, seed=1)


def reference_model(
    project: Project, store: Store, real: list[int] | None = None, task: Task | None = None
) -> ref.ReferenceModel:
    """The project's reference model, fitted now if the real pages changed since the last fit."""
    task = task or Task()
    ids = fit_ids(real if real is not None else real_ids(store))
    if not ids:
        raise ValueError("the project has no real pages to fit the reference model on")
    folder = project.dir("models") / REFERENCE_DIR
    stamp = ref.fingerprint(ids)
    model = ref.ReferenceModel.load(folder)
    if model is not None and model.fingerprint == stamp:
        return model
    task.progress(0, 1, f"fitting the reference model on {len(ids):,} real pages")
    texts = _texts(store, ids, task)
    model = ref.ReferenceModel.fit(texts)
    model.fingerprint, model.documents = stamp, len(ids)
    try:
        model.save(folder)
    except OSError as exc:  # a read-only project, a full disk: the model serves this run anyway
        log.warning("the diversity reference model was not saved in %s: %s", folder, exc)
    return model


def _texts(store: Store, ids: list[int], task: Task) -> list[str]:
    out: list[str] = []
    for start in range(0, len(ids), LOAD_BATCH):
        task.check()
        chunk = ids[start : start + LOAD_BATCH]
        found = store.texts(chunk)
        out.extend(found.get(i, ("", 0.0))[0] for i in chunk)
    return out


def load_documents(
    store: Store, ids: list[int], real: set[int], fitted: set[int], task: Task
) -> Documents:
    """Texts and embeddings (cached in the project) of ``ids``, in that order."""
    texts = _texts(store, ids, task)
    embedder = StaticFeatures()
    X = np.zeros((len(ids), 256), dtype=np.float32)
    for start in range(0, len(ids), LOAD_BATCH):
        task.check()
        task.progress(start, len(ids), "embedding pages")
        stop = start + LOAD_BATCH
        docs = [DocText(i, t) for i, t in zip(ids[start:stop], texts[start:stop], strict=True)]
        X[start:stop] = embedder.raw(docs, store)
    arr = np.asarray(ids, dtype=np.int64)
    return Documents(
        ids=arr,
        texts=texts,
        embeddings=X,
        real=np.isin(arr, list(real)),
        fitted=np.isin(arr, list(fitted)),
    )


def analyze(
    project: Project,
    store: Store,
    by: str = "round",
    *,
    query: DocumentQuery | None = None,
    sets: list[DocSet] | None = None,
    options: Options | None = None,
    task: Task | None = None,
) -> Report:
    """Measure the sets of grouping ``by`` (or the given ``sets``) against the real pages."""
    task = task or Task()
    options = options or Options()
    chosen = sets if sets is not None else group_sets(store, by, query=query)
    all_real = real_ids(store)
    baseline = sample_ids(all_real, REAL_SAMPLE, seed=options.seed)
    model = reference_model(project, store, all_real, _Stage(task, 0.0, 0.15))
    fitted = set(fit_ids(all_real))
    ids = list(dict.fromkeys([*baseline, *(i for s in chosen for i in s.doc_ids)]))
    docs = load_documents(store, ids, set(all_real), fitted, _Stage(task, 0.15, 0.6))
    row = {doc_id: r for r, doc_id in enumerate(ids)}
    real_rows = np.asarray([row[i] for i in baseline], dtype=np.int64)
    set_rows = [
        (s.name, np.asarray([row[i] for i in s.doc_ids], dtype=np.int64), s.x) for s in chosen
    ]
    return measure(
        docs, set_rows, real_rows, model, by=by, options=options, task=_Stage(task, 0.6, 1.0)
    )
