"""Train the educational-value classifier on the project's labels, pick it by cross-validation,
and store it as a new version.

For each feature set and model: k-fold CV (stratified on the rounded score when every score has
k pages, else on the keep decision) gives out-of-fold predictions for every labelled page, and
:func:`studio.classify.metrics.evaluate` scores them. The winner has the best F1 at the keep
threshold, give or take noise: combinations within one standard error of the best F1 (bootstrap
over the labelled pages; at least ``F1_TIE``) are a tie, broken by Spearman. This is the
one-standard-error rule: with ~60 pages above the threshold one page moves F1 by ~0.015, and a
choice between two combinations that far apart would be a coin toss. Spearman correlations
within ``SPEARMAN_TIE`` of the best of those are a tie as well, broken by what the features cost
to score a page (a transformer does not win on the third decimal). On a set of one block
the ``blend`` model is its ridge, to the last digit, so ``auto`` compares blends only on
combined sets. The winner is then refitted on every label and saved.
Feature extractors are fitted without labels on a sample of the corpus that includes the
labelled pages (no label leaks into the features).

Example::

    with project.store() as store:
        report = train_classifier(project, store, threshold=3)
    print(report.reason)
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.classify.features import (
    EMBEDDING_SETS,
    FEATURE_SETS,
    DocText,
    EmbeddingFeatures,
    FeatureSet,
    hstack,
    load_docs,
    make_extractor,
)
from studio.classify.metrics import evaluate, rounded
from studio.classify.models import KINDS, new_model
from studio.classify.versions import FOLDER as VERSIONS_FOLDER
from studio.classify.versions import label_hash, save_version
from studio.progress import Task
from studio.project import Project, ProjectError
from studio.store import Store

F1_TIE = 0.01  # the narrowest tie band, whatever the bootstrap says
# Spearman this close is a tie too (its standard error on a few hundred labels is ~0.02); the
# cheaper features then decide: a curator scores millions of pages with the choice
SPEARMAN_TIE = 0.01
# what each extractor costs to score a page, ms on two CPU cores (`studio bench classify` on the
# demo: tfidf 685 pages/s, hand 520, static 378; MiniLM over whole pages ~2 pages/s)
SCORING_MS = {"tfidf": 1.5, "hand": 1.9, "static": 2.6, "minilm": 500.0}
BOOTSTRAP = 500  # resamples for the standard error of F1
LEARNING_FIRST = 25  # the learning curve's first point; each next one doubles it
MIN_LABELS = 10


class TrainError(Exception):
    """The project's labels cannot train a classifier (too few, or all on one side)."""


@dataclass(slots=True)
class LabelledSet:
    doc_ids: list[int]
    targets: np.ndarray  # the people's mean score (a teacher's where no person scored it)
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
    notes: list[str] = field(default_factory=list)  # what was (not) compared, and why
    f1_band: float = 0.0  # F1 within this of the best counted as a tie (one standard error)

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
    X: Any,
    y: np.ndarray,
    kind: str,
    threshold: float,
    folds: list,
    task: Task,
    seed: int = 0,
    lead: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every labelled page's output and keep decision from the model that did not see it
    (``lead``: the width of a blend's lead block)."""
    pred, keep = np.zeros(len(y)), np.zeros(len(y), dtype=bool)
    for train, test in folds:
        task.check()
        if kind == "logistic" and len(set(y[train] >= threshold)) < 2:
            pred[test] = keep[test] = float((y[train] >= threshold).all())  # one class: constant
            continue
        model = new_model(kind, lead).fit(X[train], y[train], threshold, seed)
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
    lead: int | None = None,
) -> list[dict[str, Any]]:
    """CV F1 at the threshold when each fold trains on only the first n of its training pages
    (in a fixed random order); every point is tested on the same full held-out folds. The last
    point, every training page, is the cross-validation already done (its ``full`` metrics)."""
    sizes = learning_sizes(len(y) * (len(folds) - 1) / len(folds))
    points = []
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(train) for train, _ in folds]
    for size in sizes:
        subsets = [(order[:size], test) for order, (_, test) in zip(orders, folds, strict=True)]
        pred, keep = out_of_fold(X, y, kind, threshold, subsets, task, seed, lead)
        m = evaluate(y, pred, keep, threshold, new_model(kind).predicts_score)
        points.append({"labels": size, "f1_keep": m["f1_keep"], "spearman": m["spearman"]})
    n = int(np.mean([len(o) for o in orders]))
    points.append({"labels": n, "f1_keep": full["f1_keep"], "spearman": full["spearman"]})
    return points


def learning_sizes(train_pages: float) -> list[int]:
    """The learning curve's sizes below ``train_pages``: 25, 50, 100, 200, 400... (doubling, so
    each step asks the same question: would twice the labels help?)."""
    sizes, size = [], LEARNING_FIRST
    while size < train_pages:
        sizes.append(size)
        size *= 2
    return sizes


def f1_standard_error(keep_true: np.ndarray, keep_pred: np.ndarray, seed: int = 0) -> float:
    """Bootstrap standard error of F1 over the labelled pages (resampled with replacement)."""
    keep_true, keep_pred = np.asarray(keep_true, bool), np.asarray(keep_pred, bool)
    if len(keep_true) < 2:
        return 0.0
    idx = np.random.default_rng(seed).integers(0, len(keep_true), (BOOTSTRAP, len(keep_true)))
    t, p = keep_true[idx], keep_pred[idx]
    tp = (t & p).sum(axis=1)
    denom = t.sum(axis=1) + p.sum(axis=1)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)
    return float(f1.std(ddof=1))


def choose(
    table: list[dict[str, Any]], threshold: float, band: float = F1_TIE
) -> tuple[dict[str, Any], str]:
    """The best row by F1 at the threshold, Spearman deciding between rows whose F1 is within
    ``band`` of the best, and the cheaper features between rows whose Spearman is within
    ``SPEARMAN_TIE`` of the best of those; and why, in words."""

    def f1(r: dict[str, Any]) -> float:
        return r["metrics"]["f1_keep"] or 0.0

    def rho(r: dict[str, Any]) -> float:
        return r["metrics"]["spearman"] if r["metrics"]["spearman"] is not None else -1.0

    def name(r: dict[str, Any]) -> str:
        return f"{r['features']} with {r['model']}"

    best_f1 = max(f1(r) for r in table)
    band = max(band, F1_TIE)
    tied = [r for r in table if best_f1 - f1(r) < band]
    top = max(tied, key=lambda r: (rho(r), f1(r)))
    close = [r for r in tied if rho(top) - rho(r) < SPEARMAN_TIE]
    best = min(close, key=lambda r: (scoring_cost(r["features"]), -rho(r), -f1(r)))
    what = f"{name(best)}: F1 {f1(best):.2f} at keep\u2265{threshold:g}, Spearman {rho(best):.2f}"
    others = sorted((r for r in table if r is not best), key=lambda r: (f1(r), rho(r)))
    if not others:
        return best, f"{what} (the only combination trained)"
    runner = others[-1]
    if len(tied) > 1:
        within = f"one standard error ({band:.2f})" if band > F1_TIE else f"{F1_TIE}"
        why = (
            f"; F1 within {within} of {name(runner)} ({f1(runner):.2f}), "
            f"so the higher Spearman decides ({rho(best):.2f} vs {rho(runner):.2f})"
        )
    else:
        why = f" vs {f1(runner):.2f} for the next best ({name(runner)})"
    if best is not top:
        why += (
            f"; Spearman within {SPEARMAN_TIE} of {name(top)} ({rho(top):.3f} vs "
            f"{rho(best):.3f}), so the cheaper features decide"
        )
    return best, what + why


def scoring_cost(features: str) -> float:
    """Milliseconds a page to score with a feature set (unknown extractors count 1)."""
    return sum(SCORING_MS.get(part, 1.0) for part in features.split("+"))


def comparisons(set_names: list[str], kinds: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """The (feature set, model) pairs that ``model="auto"`` cross-validates: every pair but a
    blend on a set of one block, which is that block's ridge to the last digit."""
    return [(n, k) for n in set_names for k in kinds if k != "blend" or "+" in n]


def corpus_sample(store: Store, labelled: list[int], size: int, seed: int) -> list[int]:
    """The labelled pages plus unlabelled ones at random, ``size`` in all (at least the labels)."""
    taken = set(labelled)
    rest = [i for i in store.document_ids() if i not in taken]
    random.Random(seed).shuffle(rest)
    return labelled + rest[: max(0, size - len(labelled))]


def embedding_choice(
    store: Store, doc_ids: list[int], embed: bool | None, embedding: str | Path | None
) -> tuple[bool, str]:
    """Whether the automatic comparison includes the transformer sets, and why, in words.

    The transformer embeds ~10-20 windows of 256 tokens a second on two CPU cores: a few
    minutes for a few hundred whole pages, against seconds for every other set together. So
    it is compared when the curator asks (``embed=True``, a model folder, the checkbox), or
    when every labelled page's vector is already cached for that model (a previous run paid)."""
    if embed is False:
        return False, "transformer embeddings not compared (turned off)"
    extractor = EmbeddingFeatures(embedding)
    try:
        name = extractor.embedder.ref.name
    except ValueError as exc:  # EmbeddingError: the model is missing or unusable
        if embed or embedding is not None:
            raise
        return False, f"transformer embeddings not compared: {exc}"
    if embed or embedding is not None:
        return True, f"transformer embeddings ({name}) compared, as asked"
    cached = extractor.cached_count(store, doc_ids)
    if cached == len(doc_ids):
        return True, f"transformer embeddings ({name}) compared: every labelled page is cached"
    return False, (
        f"transformer embeddings ({name}) not compared: {cached} of {len(doc_ids)} labelled "
        "pages are embedded, and embedding the rest is slow on a CPU; ask for them "
        "(--embed, or the checkbox) to include them"
    )


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
    embed: bool | None = None,
    embedding: str | Path | None = None,
    task: Task | None = None,
) -> TrainReport:
    """``features="auto"`` compares every set of ``FEATURE_SETS``, and ``EMBEDDING_SETS`` too
    when :func:`embedding_choice` says so; ``embedding`` is the model folder of the ``minilm``
    features (None: the shipped all-MiniLM-L6-v2)."""
    task = task or Task()
    kinds = list(KINDS) if model == "auto" else [model]
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"unknown model {k} (known: auto, {', '.join(KINDS)})")
    if features != "auto":
        FeatureSet(features, embedding=embedding)  # an unknown name fails here, before any work
    try:
        project.check_writable("the trained classifier", "/".join(VERSIONS_FOLDER))
    except ProjectError as exc:
        raise TrainError(str(exc)) from exc
    labels = _checked_labels(store, threshold, folds)
    notes: list[str] = []
    set_names = list(FEATURE_SETS) if features == "auto" else [features]
    if features == "auto":
        include, note = embedding_choice(store, labels.doc_ids, embed, embedding)
        set_names += list(EMBEDDING_SETS) if include else []
        notes.append(note)
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    task.progress(0, 1, "fitting features")
    sample_docs = load_docs(store, corpus_sample(store, labels.doc_ids, sample, seed))
    labelled_docs = sample_docs[: len(labels.doc_ids)]
    fitted = fit_extractors(set_names, sample_docs, labelled_docs, store, task, embedding)
    seconds["features"] = round(time.perf_counter() - t0, 2)

    y, splits = labels.targets, make_folds(labels.targets, threshold, folds, seed)
    runs = comparisons(set_names, kinds) if model == "auto" else [(n, model) for n in set_names]
    table, steps, decisions = [], len(runs) + 2, []
    t0 = time.perf_counter()
    for name in set_names:
        X, lead = set_matrix(name, fitted), lead_width(name, fitted)
        for kind in (k for n, k in runs if n == name):
            task.progress(len(table), steps, f"cross-validating {name} with {kind}")
            pred, keep = out_of_fold(X, y, kind, threshold, splits, task, seed, lead)
            metrics = evaluate(y, pred, keep, threshold, new_model(kind).predicts_score)
            table.append({"features": name, "model": kind, "metrics": metrics})
            decisions.append(keep)
    seconds["cross_validation"] = round(time.perf_counter() - t0, 2)

    top = max(range(len(table)), key=lambda i: table[i]["metrics"]["f1_keep"] or 0.0)
    band = f1_standard_error(y >= threshold, decisions[top], seed)
    best, reason = choose(table, threshold, band)
    X = set_matrix(best["features"], fitted)
    task.progress(steps - 2, steps, "learning curve")
    t0 = time.perf_counter()
    lead = lead_width(best["features"], fitted)
    curve = learning_curve(
        X, y, best["model"], threshold, splits, best["metrics"], task, seed, lead
    )
    seconds["learning_curve"] = round(time.perf_counter() - t0, 2)

    task.progress(steps - 1, steps, "fitting on every label")
    t0 = time.perf_counter()
    final = new_model(best["model"], lead).fit(X, y, threshold, seed)
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
            "f1_band": round(max(band, F1_TIE), 4),
            "cut": final.cut,
            "cv_table": [{**r, "metrics": _headline(r["metrics"])} for r in table],
            "learning_curve": curve,
            "folds": folds,
            "sample": len(sample_docs),
            "notes": notes,
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
        notes,
        round(max(band, F1_TIE), 4),
    )


HEADLINE = (
    "accuracy",
    "keep_accuracy",
    "macro_f1",
    "f1_keep",
    "spearman",
    "roc_auc",
    "average_precision",
)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics.get(k) for k in HEADLINE}


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


def fit_extractors(
    set_names: list[str],
    sample: list[DocText],
    labelled: list[DocText],
    store: Store,
    task: Task,
    embedding: str | Path | None = None,
) -> dict[str, tuple[Any, Any]]:
    """extractor name -> (fitted extractor, its matrix over the labelled pages)."""
    out = {}
    for part in dict.fromkeys(p for n in set_names for p in n.split("+")):
        task.check()
        extractor = make_extractor(part, embedding)
        extractor.fit(sample, store)
        out[part] = (extractor, extractor.transform(labelled, store, task))
    return out


def set_matrix(name: str, fitted: dict[str, tuple[Any, Any]]) -> Any:
    """The set's matrix over the labelled pages: its extractors' blocks side by side."""
    return hstack([fitted[p][1] for p in name.split("+")])


def lead_width(name: str, fitted: dict[str, tuple[Any, Any]]) -> int:
    """The width of the set's first block: a blend's lead block."""
    return int(fitted[name.split("+")[0]][1].shape[1])
