"""How well out-of-fold predictions agree with the curators' labels.

Regressors (ridge, forest) predict the score: accuracy, macro F1 and the 6x6 confusion matrix are
on rounded scores 0-5, a page is kept when its predicted score reaches the model's cut, and the
calibration curve bins predicted scores against the mean label. The logistic model predicts
P(keep): accuracy, macro F1 and the confusion matrix are on the keep decision, and the
calibration curve is the classic reliability diagram. Every model gets F1 at the keep
threshold, the keep decision's accuracy (``keep_accuracy``: models of both kinds compare on it),
Spearman correlation with the mean label, ROC-AUC and a precision-recall curve for keeping.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_CURVE_POINTS = 50
CALIBRATION_BINS = 10


def _num(x: float) -> float | None:
    """JSON-safe: NaN (an undefined metric) becomes None."""
    x = float(x)
    return None if math.isnan(x) else round(x, 4)


def rounded(scores: np.ndarray) -> np.ndarray:
    # floor(x + 0.5): 2.5 rounds to 3 (Python's round would give 2)
    return np.clip(np.floor(np.asarray(scores) + 0.5), 0, 5).astype(int)


def evaluate(
    y: np.ndarray, pred: np.ndarray, keep_pred: np.ndarray, threshold: float, predicts_score: bool
) -> dict[str, Any]:
    """Metrics of out-of-fold outputs ``pred`` and keep decisions ``keep_pred`` against the mean
    labels ``y``."""
    from scipy.stats import spearmanr
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    keep_true = y >= threshold
    keep_pred = np.asarray(keep_pred, dtype=bool)
    if predicts_score:
        truth, guess, labels = rounded(y), rounded(pred), list(range(6))
    else:
        truth, guess, labels = keep_true.astype(int), keep_pred.astype(int), [0, 1]
    both = bool(keep_true.any() and not keep_true.all())
    rho = spearmanr(pred, y).statistic if np.ptp(pred) > 0 and np.ptp(y) > 0 else float("nan")
    return {
        "n": int(len(y)),
        "kept_share": _num(keep_true.mean()) if len(y) else None,
        "accuracy": _num(accuracy_score(truth, guess)),
        "keep_accuracy": _num(accuracy_score(keep_true, keep_pred)),  # the same for every model
        "macro_f1": _num(f1_score(truth, guess, labels=labels, average="macro", zero_division=0)),
        "f1_keep": _num(f1_score(keep_true, keep_pred, zero_division=0)),
        "precision_keep": _num(precision_score(keep_true, keep_pred, zero_division=0)),
        "recall_keep": _num(recall_score(keep_true, keep_pred, zero_division=0)),
        "spearman": _num(rho),
        "roc_auc": _num(roc_auc_score(keep_true, pred)) if both else None,
        "average_precision": _num(average_precision_score(keep_true, pred)) if both else None,
        "pr_curve": pr_curve(keep_true, pred) if both else None,
        "confusion": {
            "labels": labels,
            "matrix": confusion_matrix(truth, guess, labels=labels).tolist(),
        },
        "keep_confusion": confusion_matrix(keep_true, keep_pred, labels=[False, True]).tolist(),
        "calibration": calibration(y, pred, threshold, predicts_score),
    }


def pr_curve(keep_true: np.ndarray, pred: np.ndarray) -> dict[str, list[float]]:
    from sklearn.metrics import precision_recall_curve

    precision, recall, cut = precision_recall_curve(keep_true, pred)
    # thresholds has one entry fewer than precision/recall: the last point is (1, 0) with none
    pick = np.unique(np.linspace(0, len(cut) - 1, min(len(cut), MAX_CURVE_POINTS)).astype(int))
    return {
        "precision": [round(float(precision[i]), 4) for i in pick],
        "recall": [round(float(recall[i]), 4) for i in pick],
        "threshold": [round(float(cut[i]), 4) for i in pick],
    }


def calibration(
    y: np.ndarray, pred: np.ndarray, threshold: float, predicts_score: bool
) -> dict[str, list[Any]]:
    """Reliability bins: mean prediction against what the labels say, per bin of prediction."""
    top = 5.0 if predicts_score else 1.0
    observed_of = y if predicts_score else (y >= threshold).astype(float)
    edges = np.linspace(0.0, top, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(pred, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    out: dict[str, list[Any]] = {"predicted": [], "observed": [], "count": []}
    for b in range(CALIBRATION_BINS):
        mask = which == b
        if mask.any():
            out["predicted"].append(round(float(pred[mask].mean()), 4))
            out["observed"].append(round(float(observed_of[mask].mean()), 4))
            out["count"].append(int(mask.sum()))
    out["measures"] = ["score"] if predicts_score else ["P(keep)"]
    return out
