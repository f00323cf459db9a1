"""Active learning, simulated on the labels already given: would labelling the pages the model is
least sure of have reached the same F1 with fewer labels than labelling pages at random?

The labelled pages are split into ``folds`` folds (as training's cross-validation splits them).
For each fold, the other folds are the *pool* of pages a curator could have labelled; starting
from the same ``start`` random pages, labels are added ``step`` at a time either

- at random (a fixed random order of the pool), or
- by uncertainty: the pool pages whose model output is closest to the model's keep cut,

the model is refitted after each batch and its F1 at the keep threshold is measured on the held-out
fold. The curves are averaged over the folds, and over ``seeds`` repeats with other folds and
other random orders: one repeat's curves wander by a few F1 points from batch to batch (the
model's keep cut is learnt from the labels so far), which is enough to move the label count at
which one curve first reaches the other's end by a third of the pool. Everything is seeded: a
run is reproducible.

By default the simulation uses the features and model of the project's latest classifier version
(the one the uncertainty queue ranks pages with), else ``tfidf`` with ``ridge``.

Example::

    with project.store() as store:
        result = simulate(store, seeds=3)
    print(result["summary"]["text"])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.classify.features import FeatureSet, load_docs
from studio.classify.models import KINDS, new_model
from studio.classify.train import (
    MIN_LABELS,
    corpus_sample,
    fit_extractors,
    labelled_set,
    lead_width,
    make_folds,
    set_matrix,
)
from studio.classify.versions import latest_choice
from studio.progress import Task
from studio.store import Store

STRATEGIES = ("random", "uncertainty")
TARGET_SHARE = 0.60  # the target: active learning needs at most 60 % of the labels


def f1_at(keep_true: np.ndarray, keep_pred: np.ndarray) -> float:
    tp = int((keep_true & keep_pred).sum())
    denom = int(keep_true.sum() + keep_pred.sum())
    return 2 * tp / denom if denom else 1.0


ROUNDS = 40  # about this many rounds when the step is left to the pool's size


def auto_step(pool: int) -> int:
    """Labels added per round when none is asked for: 20, or for a larger pool about a 40th of
    it (a multiple of 10), so a simulation over thousands of labels stays ~40 rounds long
    instead of hundreds (each round refits the model on every fold and seed)."""
    return max(20, -(-pool // (ROUNDS * 10)) * 10)


def schedule(pool: int, start: int, step: int) -> list[int]:
    """Label counts after each batch: start, start+step, ... and the whole pool last."""
    sizes = list(range(min(start, pool), pool, step))
    return [*sizes, pool] if not sizes or sizes[-1] != pool else sizes


def _seed_set(order: np.ndarray, keep: np.ndarray, size: int) -> list[int]:
    """The first ``size`` of ``order``, with one page of each side of the threshold forced in
    (a logistic model cannot be fitted on one class)."""
    chosen = list(order[:size])
    for side in (True, False):
        if size >= 2 and not any(keep[i] == side for i in chosen):
            other = next(i for i in order if keep[i] == side)
            # replace the last page of the over-represented side
            j = max(k for k, i in enumerate(chosen) if keep[i] != side)
            chosen[j] = other
    return chosen


def _fit_predict(
    X: Any, y: np.ndarray, kind: str, threshold: float, train: list[int], seed: int, lead: int
) -> Any:
    train = sorted(train)  # the model must not depend on the order the labels came in
    keep = y[train] >= threshold
    if kind == "logistic" and (keep.all() or not keep.any()):
        return None  # one class only: a constant decision
    return new_model(kind, lead).fit(X[train], y[train], threshold, seed)


def _curve(
    X: Any,
    y: np.ndarray,
    kind: str,
    threshold: float,
    pool: np.ndarray,
    test: np.ndarray,
    sizes: list[int],
    strategy: str,
    seed: int,
    task: Task,
    lead: int,
) -> list[float]:
    keep_all = y >= threshold
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    chosen = _seed_set(order, keep_all, sizes[0])
    model = None
    f1s = []
    for n, size in enumerate(sizes):
        task.check()
        if n:  # add the next batch
            taken = set(chosen)
            rest = np.array([i for i in order if i not in taken], dtype=int)
            need = size - len(chosen)
            if strategy == "random" or model is None:
                chosen += list(rest[:need])
            else:
                distance = np.abs(model.predict(X[rest]) - model.cut)
                chosen += list(rest[np.argsort(distance, kind="stable")[:need]])
        model = _fit_predict(X, y, kind, threshold, chosen, seed, lead)
        if model is None:
            decided = np.full(len(test), bool(keep_all[chosen].all()))
        else:
            decided = model.decide(model.predict(X[test]))
        f1s.append(f1_at(keep_all[test], decided))
    return f1s


DEFAULT = ("tfidf", "ridge")  # without a trained version: the fast set with the model that ranks


def default_choice(store: Store) -> tuple[str, str]:
    """The latest classifier version's feature set and model, else ``DEFAULT``."""
    return latest_choice(store) or DEFAULT


def simulate(
    store: Store,
    *,
    features: str | None = None,
    model: str | None = None,
    threshold: float = 3.0,
    start: int = 20,
    step: int | None = None,
    folds: int = 5,
    seed: int = 0,
    seeds: int = 1,
    sample: int = 3000,
    embedding: str | None = None,
    task: Task | None = None,
) -> dict[str, Any]:
    """Both learning curves, averaged over the folds of ``seeds`` repeats (seed, seed+1, ...),
    and how many labels active learning needs to reach random sampling's final F1; a JSON-ready
    dict. ``features``/``model`` None: the latest version's (:func:`default_choice`).
    ``embedding``: the model folder of ``minilm`` features (None: the shipped all-MiniLM-L6-v2)."""
    task = task or Task()
    chosen = default_choice(store)
    features, model = features or chosen[0], model or chosen[1]
    if seeds < 1:
        raise ValueError("--seeds must be at least 1")
    if model not in KINDS:
        raise ValueError(f"unknown model {model} (known: {', '.join(KINDS)})")
    FeatureSet(features, embedding=embedding)  # an unknown name fails here
    if start < 2 or (step is not None and step < 1):
        raise ValueError("--start must be at least 2 and --step at least 1")
    labels = labelled_set(store)
    y = labels.targets
    keep = y >= threshold
    if len(y) < max(MIN_LABELS, 2 * folds) or min(keep.sum(), (~keep).sum()) < folds:
        raise ValueError(
            f"{len(y)} labelled pages, {int(keep.sum())} scoring at least {threshold:g}: "
            f"too few to simulate with {folds} folds"
        )
    repeats = [make_folds(y, threshold, folds, seed + r) for r in range(seeds)]
    pool = min(len(train) for s in repeats for train, _ in s)
    if start >= pool:  # both strategies would start from the whole pool: the same curve
        raise ValueError(
            f"--start {start} is not below the {pool} labelled pages each fold can choose from "
            f"({len(y)} labels, {folds} folds): nothing would be left to choose"
        )
    task.progress(0, 1, "fitting features")
    sample_docs = load_docs(store, corpus_sample(store, labels.doc_ids, sample, seed))
    labelled_docs = sample_docs[: len(labels.doc_ids)]
    fitted = fit_extractors([features], sample_docs, labelled_docs, store, task, embedding)
    X, lead = set_matrix(features, fitted), lead_width(features, fitted)
    step = step or auto_step(pool)
    sizes = schedule(pool, start, step)
    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    steps, done = sum(len(s) for s in repeats) * len(STRATEGIES), 0
    for r, splits in enumerate(repeats):
        for f, (train, test) in enumerate(splits):
            for strategy in STRATEGIES:
                what = f"seed {seed + r}, fold {f + 1}: {strategy}" if seeds > 1 else ""
                task.progress(done, steps, what or f"fold {f + 1}: {strategy}")
                # the same seed per fold for both strategies: the same seed set and pool order
                run = (train, test, sizes, strategy, seed + r * 1000 + f, task, lead)
                curves[strategy].append(_curve(X, y, model, threshold, *run))
                done += 1
    task.progress(steps, steps, "done")
    mean = {s: [round(float(v), 4) for v in np.mean(curves[s], axis=0)] for s in STRATEGIES}
    return {
        "features": features,
        "model": model,
        "threshold": threshold,
        "labels": len(y),
        "folds": len(repeats[0]),
        "start": start,
        "step": step,
        "seed": seed,
        "seeds": seeds,
        "label_counts": sizes,
        "curves": mean,
        "summary": summarise(sizes, mean["random"], mean["uncertainty"]),
    }


def summarise(sizes: list[int], random: list[float], active: list[float]) -> dict[str, Any]:
    """The first label count at which active learning reaches random sampling's final F1."""
    goal = random[-1]
    reached = next((n for n, f in zip(sizes, active, strict=True) if f >= goal), sizes[-1])
    share = reached / sizes[-1] if sizes[-1] else 1.0
    return {
        "random_final_f1": goal,
        "active_final_f1": active[-1],
        "labels_needed": reached,
        "labels_total": sizes[-1],
        "share": round(share, 4),
        "target": f"\u2264 {TARGET_SHARE:.0%}",
        "target_met": share <= TARGET_SHARE,
        "text": f"active learning reaches random sampling's final F1 ({goal:.3f}) with "
        f"{share:.0%} of the labels ({reached} of {sizes[-1]})",
    }


def format_table(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [
        f"{result['features']} with {result['model']}, keep\u2265{result['threshold']:g}: "
        f"{result['labels']} labelled pages, {result['folds']} folds (held-out F1, mean over "
        f"folds), {_seeds(result)}",
        "",
        f"{'labels':>7}{'random':>9}{'uncertainty':>13}",
    ]
    for n, r, a in zip(
        result["label_counts"],
        result["curves"]["random"],
        result["curves"]["uncertainty"],
        strict=True,
    ):
        lines.append(f"{n:>7}{r:>9.3f}{a:>13.3f}")
    lines += [
        "",
        f"{s['text']}; target {s['target']} ({'met' if s['target_met'] else 'NOT met'})",
    ]
    return "\n".join(lines)


def _seeds(result: dict[str, Any]) -> str:
    n, first = result.get("seeds", 1), result["seed"]
    return f"seed {first}" if n == 1 else f"seeds {first}-{first + n - 1}"
