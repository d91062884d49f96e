"""Evaluation metrics with numpy alone (``train eval`` must not need scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["classification_metrics", "regression_metrics"]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """``n``, ``mae``, ``rmse`` and ``r2`` (r2 is null when the targets do not vary)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"shapes differ or are not 1-D: {y_true.shape} vs {y_pred.shape}")
    n = int(y_true.size)
    if n == 0:
        return {"n": 0, "mae": None, "rmse": None, "r2": None}
    err = y_pred - y_true
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = None if ss_tot == 0.0 else 1.0 - float(np.sum(err**2)) / ss_tot
    return {
        "n": n,
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "r2": r2,
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """``n``, ``accuracy``, ``macro_f1``, ``classes`` and ``confusion`` (rows: true, columns: predicted).

    ``macro_f1`` averages over the classes present in ``y_true`` or ``y_pred``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"shapes differ or are not 1-D: {y_true.shape} vs {y_pred.shape}")
    k = len(classes)
    n = int(y_true.size)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else None,
        "macro_f1": float(f1[present].mean()) if present.any() else None,
        "classes": list(classes),
        "confusion": confusion.tolist(),
    }
