"""What the report measures the chosen head against, on the held-out split.

* baselines: the trivial predictor (the training mean, or the majority class) and a head of the
  same kind on cheap features (colour histogram, raw pixels): deep features must beat both;
* the learning curve: the chosen head refitted on fewer training labels, which tells whether
  more labels would still help.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from binsight.training.data import Dataset
from binsight.training.extract import Features
from binsight.training.heads import HeadKind, LinearHead, fit_fixed, fit_head
from binsight.training.metrics import classification_metrics, regression_metrics
from binsight.training.selection import TrainingRows

__all__ = ["LEARNING_CURVE", "baselines", "learning_curve", "task_metrics"]

#: Training-set sizes of the learning curve (plus the whole training split).
LEARNING_CURVE = (10, 25, 50, 100, 200)


def task_metrics(task: str, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Regression or classification metrics of predictions (fills, or class probabilities or indices)."""
    if task == "regression":
        return regression_metrics(y, pred)
    return classification_metrics(y, pred.argmax(axis=1) if pred.ndim == 2 else pred, classes)


def learning_curve(
    tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    *,
    train_rows: TrainingRows,
    cols: np.ndarray,
    ds: Dataset,
    head: LinearHead,
    seed: int,
) -> list[dict[str, Any]]:
    """Held-out metrics of the chosen head refitted on random subsets of the training labels."""
    rng = np.random.default_rng(seed)
    sizes = [s for s in LEARNING_CURVE if s < len(tr)] + [len(tr)]
    out: list[dict[str, Any]] = []
    for size in sizes:
        x, y, _ = train_rows(rng.permutation(tr)[:size], cols)
        if ds.task == "classification" and len(np.unique(y)) < 2:
            continue
        h = fit_fixed(x, y, ds.task, head.kind, head.param, n_classes=len(ds.classes), seed=seed)
        out.append({"n": int(size), "test": task_metrics(ds.task, y_te, h.predict(x_te), ds.classes)})
    return out


def baselines(
    feats: Features,
    y: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    *,
    ds: Dataset,
    groups: np.ndarray | None,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Held-out metrics of the trivial predictor and of a head on each baseline feature set."""
    out: dict[str, dict[str, Any]] = {}
    if ds.task == "regression":
        out["mean"] = regression_metrics(y[te], np.full(len(te), float(y[tr].mean())))
    else:
        majority = int(np.bincount(y[tr], minlength=len(ds.classes)).argmax())
        out["majority_class"] = classification_metrics(y[te], np.full(len(te), majority), ds.classes)
    kinds: tuple[HeadKind, ...] = ("ridge",) if ds.task == "regression" else ("logistic",)
    for name, x in feats.baseline.items():
        h = fit_head(x[tr], y[tr], ds.task, len(ds.classes), groups=groups, kinds=kinds, seed=seed)
        out[name] = task_metrics(ds.task, y[te], h.predict(x[te]), ds.classes)
    return out
