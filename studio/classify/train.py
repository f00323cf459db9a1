"""Train the educational-value classifier on the project's labels, pick it by cross-validation,
and store it as a new version.

For each feature set and model: k-fold CV (stratified on the rounded score when every score has
k pages, else on the keep decision) gives out-of-fold predictions for every labelled page, and
:func:`studio.classify.metrics.evaluate` scores them. The winner has the best F1 at the keep
threshold; combinations within ``F1_TIE`` of it are a tie, broken by Spearman. The winner is then
refitted on every label and saved. Feature extractors are fitted without labels on a sample of
the corpus that includes the labelled pages (no label leaks into the features).

Example::

    with project.store() as store:
        report = train_classifier(project, store, threshold=3)
    print(report.reason)
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from studio.classify.features import (
    EXTRACTORS,
    FEATURE_SETS,
    DocText,
    FeatureSet,
    hstack,
    load_docs,
)
from studio.classify.metrics import evaluate, rounded
from studio.classify.models import KINDS, new_model
from studio.classify.versions import label_hash, save_version
from studio.progress import Task
from studio.project import Project
from studio.store import Store

F1_TIE = 0.01  # F1 differences below this are noise at a few hundred labels: Spearman decides
LEARNING_SIZES = (25, 50, 100, 200)
MIN_LABELS = 10


class TrainError(Exception):
    """The project's labels cannot train a classifier (too few, or all on one side)."""


@dataclass(slots=True)
class LabelledSet:
    doc_ids: list[int]
    targets: np.ndarray  # mean score over annotators
    n_labels: int  # label rows (a page with two annotators counts twice)
    label_hash: str


@dataclass
class TrainReport:
    threshold: float
    folds: int
    table: list[dict[str, Any]]  # one row per feature set x model: its CV metrics
    chosen: dict[str, str]
    reason: str
    learning_curve: list[dict[str, Any]]
    version: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def labelled_set(store: Store) -> LabelledSet:
    targets = store.label_targets()
    triples = store.label_triples()
    return LabelledSet(
        [t[0] for t in targets],
        np.array([t[1] for t in targets], dtype=float),
        len(triples),
        label_hash(triples),
    )


def make_folds(y: np.ndarray, threshold: float, k: int, seed: int) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    strata = rounded(y)
    if np.bincount(strata)[np.bincount(strata) > 0].min() < k:
        strata = (y >= threshold).astype(int)  # a rare score: stratify on the keep decision
    counts = np.bincount(strata)[np.bincount(strata) > 0]
    if len(counts) > 1 and counts.min() >= k:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), strata))
    return list(KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def out_of_fold(
    X: Any, y: np.ndarray, kind: str, threshold: float, folds: list, task: Task, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled page's output and keep decision from the model that did not see it."""
    pred, keep = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
    for train, test in folds:
        task.check()
        if kind == "logistic" and len(set(y[train] >= threshold)) < 2:
            pred[test] = keep[test] = float((y[train] >= threshold).all())  # one class: constant
            continue
        model = new_model(kind).fit(X[train], y[train], threshold, seed)
        pred[test] = model.predict(X[test])
        keep[test] = model.decide(pred[test])
    return pred, keep


def learning_curve(
    X: Any,
    y: np.ndarray,
    kind: str,
    threshold: float,
    folds: list,
    full: dict[str, Any],
    task: Task,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """CV F1 at the threshold when each fold trains on only the first n of its training pages
    (in a fixed random order); every point is tested on the same full held-out folds. The last
    point, every training page, is the cross-validation already done (its ``full`` metrics)."""
    sizes = [s for s in LEARNING_SIZES if s < len(y) * (len(folds) - 1) / len(folds)]
    points = []
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(train) for train, _ in folds]
    for size in sizes:
        subsets = [(order[:size], test) for order, (_, test) in zip(orders, folds, strict=True)]
        pred, keep = out_of_fold(X, y, kind, threshold, subsets, task, seed)
        m = evaluate(y, pred, keep, threshold, new_model(kind).predicts_score)
        points.append({"labels": size, "f1_keep": m["f1_keep"], "spearman": m["spearman"]})
    n = int(np.mean([len(o) for o in orders]))
    points.append({"labels": n, "f1_keep": full["f1_keep"], "spearman": full["spearman"]})
    return points


def choose(table: list[dict[str, Any]], threshold: float) -> tuple[dict[str, Any], str]:
    """The best row by F1 at the threshold (Spearman breaks near-ties), and why, in words."""

    def f1(r: dict[str, Any]) -> float:
        return r["metrics"]["f1_keep"] or 0.0

    def rho(r: dict[str, Any]) -> float:
        return r["metrics"]["spearman"] if r["metrics"]["spearman"] is not None else -1.0

    def name(r: dict[str, Any]) -> str:
        return f"{r['features']} with {r['model']}"

    best_f1 = max(f1(r) for r in table)
    tied = [r for r in table if best_f1 - f1(r) < F1_TIE]
    best = max(tied, key=lambda r: (rho(r), f1(r)))
    what = f"{name(best)}: F1 {f1(best):.2f} at keep\u2265{threshold:g}, Spearman {rho(best):.2f}"
    others = sorted((r for r in table if r is not best), key=lambda r: (f1(r), rho(r)))
    if not others:
        return best, f"{what} (the only combination trained)"
    runner = others[-1]
    if len(tied) > 1:
        why = (
            f"; F1 within {F1_TIE} of {name(runner)} ({f1(runner):.2f}), "
            f"so the higher Spearman decides ({rho(best):.2f} vs {rho(runner):.2f})"
        )
    else:
        why = f" vs {f1(runner):.2f} for the next best ({name(runner)})"
    return best, what + why


def corpus_sample(store: Store, labelled: list[int], size: int, seed: int) -> list[int]:
    """The labelled pages plus unlabelled ones at random, ``size`` in all (at least the labels)."""
    taken = set(labelled)
    rest = [i for i in store.document_ids() if i not in taken]
    random.Random(seed).shuffle(rest)
    return labelled + rest[: max(0, size - len(labelled))]


def train_classifier(
    project: Project,
    store: Store,
    *,
    features: str = "auto",
    model: str = "auto",
    threshold: float = 3.0,
    folds: int = 5,
    sample: int = 3000,
    seed: int = 0,
    task: Task | None = None,
) -> TrainReport:
    task = task or Task()
    set_names = list(FEATURE_SETS) if features == "auto" else [features]
    kinds = list(KINDS) if model == "auto" else [model]
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown model {k} (known: auto, {', '.join(KINDS)})")
    FeatureSet(set_names[0])  # an unknown name fails here, before any work
    labels = _checked_labels(store, threshold, folds)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    task.progress(0, 1, "fitting features")
    sample_docs = load_docs(store, corpus_sample(store, labels.doc_ids, sample, seed))
    labelled_docs = sample_docs[: len(labels.doc_ids)]
    fitted = _fit_extractors(set_names, sample_docs, labelled_docs, store, task)
    seconds["features"] = round(time.perf_counter() - t0, 2)

    y, splits = labels.targets, make_folds(labels.targets, threshold, folds, seed)
    table, steps = [], len(set_names) * len(kinds) + 2
    t0 = time.perf_counter()
    for name in set_names:
        X = _stack(name, fitted)
        for kind in kinds:
            task.progress(len(table), steps, f"cross-validating {name} with {kind}")
            pred, keep = out_of_fold(X, y, kind, threshold, splits, task, seed)
            metrics = evaluate(y, pred, keep, threshold, new_model(kind).predicts_score)
            table.append({"features": name, "model": kind, "metrics": metrics})
    seconds["cross_validation"] = round(time.perf_counter() - t0, 2)

    best, reason = choose(table, threshold)
    X = _stack(best["features"], fitted)
    task.progress(steps - 2, steps, "learning curve")
    t0 = time.perf_counter()
    curve = learning_curve(X, y, best["model"], threshold, splits, best["metrics"], task, seed)
    seconds["learning_curve"] = round(time.perf_counter() - t0, 2)

    task.progress(steps - 1, steps, "fitting on every label")
    t0 = time.perf_counter()
    final = new_model(best["model"]).fit(X, y, threshold, seed)
    feature_set = FeatureSet(best["features"], [fitted[p][0] for p in best["features"].split("+")])
    version = save_version(
        project,
        store,
        feature_set,
        final,
        {
            "threshold": threshold,
            "metrics": best["metrics"],
            "label_hash": labels.label_hash,
            "n_labels": labels.n_labels,
            "n_documents": len(labels.doc_ids),
            "reason": reason,
            "cut": final.cut,
            "cv_table": [{**r, "metrics": _headline(r["metrics"])} for r in table],
            "learning_curve": curve,
            "folds": folds,
            "sample": len(sample_docs),
        },
    )
    seconds["final_fit"] = round(time.perf_counter() - t0, 2)
    task.progress(steps, steps, "done")
    return TrainReport(
        threshold,
        folds,
        table,
        {"features": best["features"], "model": best["model"]},
        reason,
        curve,
        version,
        seconds,
    )


HEADLINE = ("accuracy", "macro_f1", "f1_keep", "spearman", "roc_auc", "average_precision")


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in HEADLINE}


def _checked_labels(store: Store, threshold: float, folds: int) -> LabelledSet:
    labels = labelled_set(store)
    n = len(labels.doc_ids)
    if n < max(MIN_LABELS, 2 * folds):
        raise TrainError(
            f"{n} labelled pages: label at least {max(MIN_LABELS, 2 * folds)} to train"
        )
    kept = int((labels.targets >= threshold).sum())
    if min(kept, n - kept) < folds:
        raise TrainError(
            f"{kept} of {n} labelled pages score at least {threshold:g}: each side of the "
            f"threshold needs at least {folds} pages for {folds}-fold cross-validation"
        )
    return labels


def _fit_extractors(
    set_names: list[str],
    sample: list[DocText],
    labelled: list[DocText],
    store: Store,
    task: Task,
) -> dict[str, tuple[Any, Any]]:
    """extractor name -> (fitted extractor, its matrix over the labelled pages)."""
    out = {}
    for part in dict.fromkeys(p for n in set_names for p in n.split("+")):
        task.check()
        extractor = EXTRACTORS[part]()
        extractor.fit(sample, store)
        out[part] = (extractor, extractor.transform(labelled, store))
    return out


def _stack(name: str, fitted: dict[str, tuple[Any, Any]]) -> Any:
    return hstack([fitted[p][1] for p in name.split("+")])
