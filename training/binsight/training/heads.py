"""Linear heads on deep features, regularisation chosen by (grouped) cross-validation.

* regression: ridge, ``alpha`` by CV on the MAE of clipped predictions; output clipped to 0..1;
* classification: multinomial logistic regression or a linear SVM (one-vs-rest), ``C`` by CV on
  accuracy; the SVM's scores become probabilities through one softmax temperature fitted on
  out-of-fold scores, so the model's ``probs`` stay a single linear layer plus softmax.

Every head standardises its inputs (:class:`FlooredScaler`); :class:`LinearHead` folds that into one
weight matrix and bias acting on the raw features, which is what the exported graph holds. The
numerical solvers (CV folds, ridge paths, the logistic and SVM fits) are in
:mod:`binsight.training.solvers`; this module chooses among the heads they fit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from binsight.training.solvers import (
    ALPHAS,
    CS,
    HeadKind,
    class_cv,
    class_path,
    cv_splits,
    default_folds,
    most_regularised,
    raw_weights,
    ridge_fold_scores,
    ridge_path,
    ridge_pipeline,
    softmax_temperature,
    standardised,
    unscale,
)

__all__ = ["HeadKind", "LinearHead", "Screened", "fit_fixed", "fit_head", "screen"]

logger = logging.getLogger(__name__)


@dataclass
class LinearHead:
    """A fitted head as one affine map on raw features (+ clip or softmax)."""

    task: Literal["regression", "classification"]
    kind: HeadKind
    param: float  # alpha (ridge) or C
    weight: np.ndarray  # [K, D]; K = 1 for regression
    bias: np.ndarray  # [K]
    cv_score: float  # MAE (regression, lower is better) or accuracy (classification)
    cv_scores: dict[str, float] = field(default_factory=dict)  # per parameter value
    temperature: float = 1.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fill levels [N] or class probabilities [N, K], exactly as the exported graph computes them."""
        z = np.asarray(x, dtype=np.float64) @ self.weight.T.astype(np.float64) + self.bias
        if self.task == "regression":
            return np.asarray(np.clip(z[:, 0], 0.0, 1.0))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def describe(self) -> dict[str, Any]:
        name = "alpha" if self.kind == "ridge" else "C"
        return {
            "kind": self.kind,
            name: self.param,
            "cv_score": self.cv_score,
            "cv_scores": self.cv_scores,
            **({"temperature": self.temperature} if self.kind == "linear_svm" else {}),
        }


@dataclass(frozen=True)
class Screened:
    """A feature set's quick score: the (grouped) CV score at the chosen alpha and its standard error."""

    score: float
    se: float  # standard error of the mean over folds (std / sqrt(folds)); 0 with one fold
    alpha: float
    table: dict[str, float]  # "ridge:<alpha>" -> mean CV score


def screen(
    x: np.ndarray,
    y: np.ndarray,
    task: Literal["regression", "classification"],
    n_classes: int = 0,
    *,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> Screened:
    """Score a feature set quickly: the best (grouped) CV score of a ridge model over its alpha path.

    Regression: MAE of ridge (which is also the head). Classification: accuracy of a ridge
    classifier, a fast stand-in used to rank feature candidates before the logistic/SVM head is
    chosen on the winner. The standard error over folds lets the caller apply a one-standard-error
    rule across feature sets.
    """
    splits = cv_splits(y, groups, task, seed, default_folds(y, task))
    folds = ridge_fold_scores(x, y, splits, ALPHAS, n_classes if task == "classification" else 0)
    path = folds.mean(axis=0)
    best = most_regularised(path, task)
    k = folds.shape[0]
    se = float(folds[:, best].std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0
    return Screened(
        score=float(path[best]),
        se=se,
        alpha=ALPHAS[best],
        table={f"ridge:{a:g}": float(v) for a, v in zip(ALPHAS, path, strict=True)},
    )


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    task: Literal["regression", "classification"],
    n_classes: int = 0,
    *,
    groups: np.ndarray | None = None,
    kinds: tuple[HeadKind, ...] | None = None,
    seed: int = 0,
    folds: int | None = None,
    params: tuple[float, ...] | None = None,
) -> LinearHead:
    """Choose the head kind and its regularisation by CV, then refit on all of ``x``.

    Parameters
    ----------
    x, y
        Features ``[N, D]`` and targets (fill 0..1, or class indices ``0..n_classes-1``).
    groups
        Bin ids: CV folds keep one bin on one side.
    kinds
        Head kinds to try; default ridge for regression, logistic and linear SVM for classes.
    params
        Regularisation values to try (alpha for ridge, C otherwise).
    """
    default: tuple[HeadKind, ...] = ("ridge",) if task == "regression" else ("logistic", "linear_svm")
    tried = kinds if kinds is not None else default
    splits = cv_splits(y, groups, task, seed, folds or default_folds(y, task))
    best: tuple[float, HeadKind, float, np.ndarray] | None = None
    table: dict[str, float] = {}
    for kind in tried:
        grid = params or (ALPHAS if kind == "ridge" else CS)
        if kind == "ridge":
            if task != "regression":
                raise ValueError("ridge is the regression head; classification uses logistic or linear_svm")
            fast = ridge_path(x, y, splits, grid)
            # Same rule as screen(): the most regularised alpha within tolerance of the best.
            k_best = most_regularised(fast, task)
            table.update({f"{kind}:{p:g}": float(v) for p, v in zip(grid, fast, strict=True)})
            if best is None or float(fast[k_best]) < best[0]:
                best = (float(fast[k_best]), kind, grid[k_best], np.empty((0, 0)))
            continue
        t = time.perf_counter()
        acc, oof = class_cv(kind, grid, x, y, splits)
        mean = acc.mean(axis=0)
        path = ", ".join(f"C={p:g}: {v:.4f}" for p, v in zip(grid, mean, strict=True))
        logger.info("%s CV (%s folds) in %.1f s: %s", kind, len(acc), time.perf_counter() - t, path)
        for k, p in enumerate(grid):
            table[f"{kind}:{p:g}"] = float(mean[k])
            if best is None or float(mean[k]) > best[0]:
                best = (float(mean[k]), kind, p, oof[k])
    assert best is not None
    score, kind, p, oof_best = best
    head = fit_fixed(x, y, task, kind, p, n_classes=n_classes, seed=seed, oof=oof_best)
    head.cv_score, head.cv_scores = score, table
    logger.debug("head %s %s=%s cv %.4f", kind, "alpha" if kind == "ridge" else "C", p, score)
    return head


def fit_fixed(
    x: np.ndarray,
    y: np.ndarray,
    task: Literal["regression", "classification"],
    kind: HeadKind,
    param: float,
    *,
    n_classes: int = 0,
    seed: int = 0,
    oof: np.ndarray | None = None,
) -> LinearHead:
    """Fit one head kind with a given regularisation on all of ``x`` (no CV).

    ``oof`` are out-of-fold SVM scores to fit the softmax temperature on; without them the
    temperature is 1 (fine for accuracy, not for calibrated probabilities).
    """
    temperature = 1.0
    if kind == "ridge":
        w, b = raw_weights(ridge_pipeline(param).fit(x, y))
    else:
        scaler, basis, (z,) = standardised(x)
        ((coef, intercept, classes),) = class_path(kind, (param,), z, y)
        w, b = unscale(scaler, coef if basis is None else coef @ basis.T, intercept)
    if task == "classification":
        k = max(n_classes, int(y.max()) + 1)
        if w.shape[0] == 1:  # binary: one score for the positive class
            w = np.concatenate([-w / 2, w / 2])
            b = np.concatenate([-b / 2, b / 2])
        if kind == "linear_svm" and oof is not None and oof.size:
            temperature = softmax_temperature(oof, y)
            w, b = w / temperature, b / temperature
        full_w = np.zeros((k, w.shape[1]))
        full_b = np.full(k, -1e3)  # a class absent from training is never predicted
        full_w[classes] = w
        full_b[classes] = b
        w, b = full_w, full_b
    return LinearHead(
        task, kind, param, w.astype(np.float32), b.astype(np.float32), float("nan"), {}, temperature
    )
