"""Linear heads on deep features, regularisation chosen by (grouped) cross-validation.

* regression: ridge, ``alpha`` by CV on the MAE of clipped predictions; output clipped to 0..1;
* classification: multinomial logistic regression or a linear SVM (one-vs-rest), ``C`` by CV on
  accuracy; the SVM's scores become probabilities through one softmax temperature fitted on
  out-of-fold scores, so the model's ``probs`` stay a single linear layer plus softmax.

Every head standardises its inputs (:class:`FlooredScaler`); :class:`LinearHead` folds that into one
weight matrix and
bias acting on the raw features, which is what the exported graph holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

__all__ = [
    "ALPHAS",
    "CS",
    "FlooredScaler",
    "HeadKind",
    "LinearHead",
    "cv_splits",
    "fit_fixed",
    "fit_head",
    "screen",
]

logger = logging.getLogger(__name__)

HeadKind = Literal["ridge", "logistic", "linear_svm"]
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
CS = (0.001, 0.01, 0.1, 1.0)


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


def cv_splits(
    y: np.ndarray, groups: np.ndarray | None, task: str, seed: int, folds: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds keeping each group on one side; plain (stratified) folds without groups."""
    n = len(y)
    if groups is not None and len(np.unique(groups)) >= 2:
        k = min(folds, len(np.unique(groups)))
        return list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y, groups))
    k = max(2, min(folds, n))
    if task == "classification":
        k = max(2, min(k, int(np.bincount(y).min())))
        if np.bincount(y).min() >= 2:
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


class FlooredScaler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Standardise columns, but never divide by less than ``floor`` x the median column std.

    Plain standardisation blows near-constant features up by 1/std: a channel that hardly moved on
    the training bins then dominates as soon as it moves on a new bin, or under int8 rounding noise
    (measured: it cost int8 models ~0.03 MAE). The floor keeps such channels at their natural scale.
    """

    def __init__(self, floor: float = 0.1) -> None:
        self.floor = floor

    def fit(self, x: np.ndarray, y: object = None) -> FlooredScaler:
        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        med = float(np.median(std))
        self.scale_ = np.maximum(std, self.floor * med) if med > 0 else np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        return np.asarray((x - self.mean_) / self.scale_, dtype=dtype)


def _fold(pipe: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) on raw inputs from a FlooredScaler + linear model pipeline."""
    scaler: FlooredScaler = pipe[0]
    model = pipe[-1]
    coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64))
    scale = np.asarray(scaler.scale_, dtype=np.float64)
    mean = np.asarray(scaler.mean_, dtype=np.float64)
    w = coef / scale
    b = intercept - w @ mean
    return w, b


def _make(kind: HeadKind, param: float, seed: int) -> Pipeline:
    if kind == "ridge":
        return make_pipeline(FlooredScaler(), Ridge(alpha=param))
    if kind == "logistic":
        return make_pipeline(FlooredScaler(), LogisticRegression(C=param, max_iter=300, tol=1e-3))
    # dual=True is the faster formulation when there are more features than samples.
    return make_pipeline(FlooredScaler(), LinearSVC(C=param, dual=True, max_iter=3000, random_state=seed))


def _scores(kind: HeadKind, pipe: Pipeline, x: np.ndarray) -> np.ndarray:
    if kind == "ridge":
        return np.asarray(pipe.predict(x), dtype=np.float64)
    return np.asarray(pipe.decision_function(x), dtype=np.float64)


def _cv(
    kind: HeadKind,
    param: float,
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    *,
    seed: int,
) -> tuple[float, np.ndarray]:
    """Mean fold score and the out-of-fold scores (for the SVM temperature)."""
    oof: np.ndarray | None = None
    fold_scores = []
    for tr, va in splits:
        if kind != "ridge" and len(np.unique(y[tr])) < 2:
            continue
        pipe = _make(kind, param, seed).fit(x[tr], y[tr])
        s = _scores(kind, pipe, x[va])
        if kind == "ridge":
            fold_scores.append(float(np.mean(np.abs(np.clip(s, 0, 1) - y[va]))))
        else:
            classes = pipe[-1].classes_
            pred = classes[np.argmax(s, axis=1)] if s.ndim == 2 else classes[(s > 0).astype(int)]
            fold_scores.append(float(np.mean(pred == y[va])))
            if kind == "linear_svm":
                full = _full_scores(s, classes, int(y.max()) + 1)
                if oof is None:
                    oof = np.full((len(y), full.shape[1]), np.nan)
                oof[va] = full
    if not fold_scores:
        raise ValueError("no CV fold had two classes to train on")
    return float(np.mean(fold_scores)), oof if oof is not None else np.empty((0, 0))


def _ridge_path(
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    alphas: tuple[float, ...],
    n_classes: int = 0,
) -> np.ndarray:
    """Mean fold score for every alpha, from one eigendecomposition per fold.

    Regression (``n_classes == 0``): MAE of clipped predictions, the estimator being
    ``FlooredScaler + Ridge(alpha)`` (intercept unpenalised). Classification: accuracy of a ridge
    classifier (least squares on one-hot targets, argmax). The whole alpha path costs one
    decomposition of the smaller of the n x n and d x d Gram matrices instead of a solve per alpha.
    """
    scores = np.zeros((len(splits), len(alphas)))
    for f, (tr, va) in enumerate(splits):
        scaler = FlooredScaler().fit(x[tr])
        xt = scaler.transform(x[tr]).astype(np.float64)
        xv = scaler.transform(x[va]).astype(np.float64)
        target = np.eye(n_classes)[y[tr]] if n_classes else y[tr][:, None].astype(np.float64)
        t_mean = target.mean(axis=0)
        tc = target - t_mean
        if xt.shape[0] <= xt.shape[1]:  # dual: n x n Gram matrix
            lam, u = np.linalg.eigh(xt @ xt.T)
            proj, rhs = (xv @ xt.T) @ u, u.T @ tc
        else:  # primal: d x d
            lam, u = np.linalg.eigh(xt.T @ xt)
            proj, rhs = xv @ u, u.T @ (xt.T @ tc)
        lam = np.clip(lam, 0.0, None)
        for k, alpha in enumerate(alphas):
            pred = proj @ (rhs / (lam + alpha)[:, None]) + t_mean
            if n_classes:
                scores[f, k] = np.mean(pred.argmax(axis=1) == y[va])
            else:
                scores[f, k] = np.mean(np.abs(np.clip(pred[:, 0], 0.0, 1.0) - y[va]))
    return np.asarray(scores.mean(axis=0))


def screen(
    x: np.ndarray,
    y: np.ndarray,
    task: Literal["regression", "classification"],
    n_classes: int = 0,
    *,
    groups: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[float, float, dict[str, float]]:
    """Score a feature set quickly: the best (grouped) CV score of a ridge model over its alpha path.

    Regression: MAE of ridge (which is also the head). Classification: accuracy of a ridge
    classifier, a fast stand-in used to rank feature candidates before the logistic/SVM head is
    chosen on the winner. Returns ``(score, alpha, {"ridge:<alpha>": score})``.
    """
    splits = cv_splits(y, groups, task, seed)
    path = _ridge_path(x, y, splits, ALPHAS, n_classes if task == "classification" else 0)
    best = _most_regularised(path, task)
    return (
        float(path[best]),
        ALPHAS[best],
        {f"ridge:{a:g}": float(v) for a, v in zip(ALPHAS, path, strict=True)},
    )


#: A regression head takes the largest alpha whose CV MAE is within this fraction of the best.
ALPHA_TOLERANCE = 0.02


def _most_regularised(path: np.ndarray, task: str) -> int:
    """Index of the chosen alpha on an increasing alpha path.

    Regression: the most regularised alpha within 2% of the best CV MAE, in the spirit of the
    one-standard-error rule: new bins differ from the training bins more than CV folds differ from
    each other, and smaller weights also survive int8 rounding better.
    """
    if task != "regression":
        return int(np.argmax(path))
    ok = np.flatnonzero(path <= path.min() * (1.0 + ALPHA_TOLERANCE))
    return int(ok.max())


def _full_scores(s: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Scores for all ``k`` classes; classes unseen in the fold get -inf-like scores."""
    if s.ndim == 1:
        s = np.stack([-s / 2, s / 2], axis=1)
    full = np.full((s.shape[0], k), -1e3)
    full[:, classes] = s
    return full


def _temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """Softmax temperature minimising the log loss of out-of-fold SVM scores."""
    from scipy.optimize import minimize_scalar  # type: ignore[import-untyped]

    ok = ~np.isnan(scores).any(axis=1)
    s, t = scores[ok], y[ok]
    if len(t) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        z = s / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(t)), t]))

    res = minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded")
    return float(np.exp(res.x))


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    task: Literal["regression", "classification"],
    n_classes: int = 0,
    *,
    groups: np.ndarray | None = None,
    kinds: tuple[HeadKind, ...] | None = None,
    seed: int = 0,
    folds: int = 5,
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
    splits = cv_splits(y, groups, task, seed, folds)
    best: tuple[float, HeadKind, float, np.ndarray] | None = None
    table: dict[str, float] = {}
    for kind in tried:
        grid = params or (ALPHAS if kind == "ridge" else CS)
        fast = _ridge_path(x, y, splits, grid) if kind == "ridge" else None
        if fast is not None and task == "regression":
            # Same rule as screen(): the most regularised alpha within tolerance of the best.
            k_best = _most_regularised(fast, task)
            table.update({f"{kind}:{p:g}": float(v) for p, v in zip(grid, fast, strict=True)})
            if best is None or float(fast[k_best]) < best[0]:
                best = (float(fast[k_best]), kind, grid[k_best], np.empty((0, 0)))
            continue
        for k, p in enumerate(grid):
            score, oof = (
                (float(fast[k]), np.empty((0, 0)))
                if fast is not None
                else _cv(kind, p, x, y, splits, seed=seed)
            )
            table[f"{kind}:{p:g}"] = score
            better = best is None or (score < best[0] if task == "regression" else score > best[0])
            if better:
                best = (score, kind, p, oof)
    assert best is not None
    score, kind, p, oof = best
    head = fit_fixed(x, y, task, kind, p, n_classes=n_classes, seed=seed, oof=oof)
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
    pipe = _make(kind, param, seed).fit(x, y)
    w, b = _fold(pipe)
    temperature = 1.0
    if task == "classification":
        k = max(n_classes, int(y.max()) + 1)
        classes = np.asarray(pipe[-1].classes_)
        if w.shape[0] == 1:  # binary: one score for the positive class
            w = np.concatenate([-w / 2, w / 2])
            b = np.concatenate([-b / 2, b / 2])
        if kind == "linear_svm" and oof is not None and oof.size:
            temperature = _temperature(oof, y)
            w, b = w / temperature, b / temperature
        full_w = np.zeros((k, w.shape[1]))
        full_b = np.full(k, -1e3)  # a class absent from training is never predicted
        full_w[classes] = w
        full_b[classes] = b
        w, b = full_w, full_b
    return LinearHead(
        task, kind, param, w.astype(np.float32), b.astype(np.float32), float("nan"), {}, temperature
    )
