"""The numerical solvers behind the linear heads: CV folds, scaling, ridge paths, logistic and SVM fits.

:mod:`binsight.training.heads` chooses a head with these; nothing here knows about heads beyond
their kind. The costly parts are written for wide deep features (thousands of columns, hundreds to
thousands of rows): the ridge alpha path from one eigendecomposition per fold, the classification
heads fitted in the row space of the training rows and warm-started along the C grid.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline

__all__ = [
    "ALPHAS",
    "ALPHA_TOLERANCE",
    "CLASS_MAX_ITER",
    "CLASS_TOL",
    "CS",
    "FlooredScaler",
    "HeadKind",
    "class_cv",
    "class_path",
    "cv_score",
    "cv_splits",
    "default_folds",
    "full_scores",
    "most_regularised",
    "raw_weights",
    "ridge_fold_scores",
    "ridge_path",
    "ridge_pipeline",
    "row_space",
    "softmax_temperature",
    "standardised",
    "svm_fit",
    "svm_start",
    "unscale",
]

HeadKind = Literal["ridge", "logistic", "linear_svm"]
#: The regularisation grids searched by CV: ridge alphas, and C for the classification heads.
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0)
CS = (0.001, 0.01, 0.1, 1.0)


def cv_splits(
    y: np.ndarray, groups: np.ndarray | None, task: str, seed: int, folds: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds keeping each group on one side; plain (stratified) folds without groups.

    Groups that are all singletons (images without a ``bin_id``) constrain nothing, so a
    classification set then gets stratified folds. Classes with bins get stratified group folds.
    """
    n = len(y)
    n_groups = len(np.unique(groups)) if groups is not None else 0
    if groups is not None and 2 <= n_groups < n:
        k = min(folds, n_groups)
        if task == "classification" and np.bincount(y).min() >= k:
            sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            return list(sgkf.split(np.zeros(n), y, groups))
        return list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y, groups))
    k = max(2, min(folds, n))
    if task == "classification":
        k = max(2, min(k, int(np.bincount(y).min())))
        if np.bincount(y).min() >= 2:
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


#: A classification set whose every class has at least this many training samples gets
#: :data:`FOLDS_MANY` CV folds instead of 5: each fold still trains on >= 2/3 of every class, and
#: the classification heads' CV costs 40% less.
MANY_PER_CLASS = 25
FOLDS_MANY = 3


def default_folds(y: np.ndarray, task: str) -> int:
    """5 CV folds, or 3 for classes that all have :data:`MANY_PER_CLASS` samples or more."""
    if task == "classification" and len(y) and int(np.bincount(y).min()) >= MANY_PER_CLASS:
        return FOLDS_MANY
    return 5


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


def raw_weights(pipe: Pipeline) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) on raw inputs from a FlooredScaler + linear model pipeline."""
    return unscale(pipe[0], pipe[-1].coef_, pipe[-1].intercept_)


def unscale(scaler: FlooredScaler, coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) on raw inputs from weights on standardised inputs."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    w = coef / np.asarray(scaler.scale_, dtype=np.float64)
    return w, intercept - w @ np.asarray(scaler.mean_, dtype=np.float64)


def ridge_pipeline(alpha: float) -> Pipeline:
    """The ridge estimator (classification heads are fitted by :func:`class_path`)."""
    return make_pipeline(FlooredScaler(), Ridge(alpha=alpha))


#: Solver settings of the classification heads. lbfgs stops when the largest gradient component
#: of the sample-averaged objective falls below ``CLASS_TOL`` (sklearn's scale); measured on
#: Caltech-101 features (2,112 x 5,888, 88 classes), 1e-3 stopped logistic regression after
#: 10 iterations at every C, i.e. before C made a difference.
CLASS_TOL = 1e-4
CLASS_MAX_ITER = 1000


def row_space(xs: np.ndarray) -> np.ndarray | None:
    """An orthonormal basis ``[D, r]`` of the span of the rows of ``xs`` when ``D > N``, else None.

    The optimal weights of an L2-penalised linear model lie in the span of its training rows
    (representer theorem; the unpenalised intercept does not change that), so fitting on the
    ``r <= N`` coordinates ``xs @ basis`` and mapping the weights back with ``basis.T`` gives the
    same model as fitting on all D columns, at r/D of the cost per solver iteration.
    """
    n, d = xs.shape
    if d <= n:
        return None
    x64 = np.asarray(xs, dtype=np.float64)
    lam, u = np.linalg.eigh(x64 @ x64.T)
    keep = lam > max(float(lam.max()), 1e-300) * 1e-9
    return np.asarray((x64.T @ u[:, keep]) / np.sqrt(lam[keep]), dtype=np.float32)


def svm_fit(
    z: np.ndarray, y: np.ndarray, classes: np.ndarray, c: float, init: np.ndarray | None
) -> np.ndarray:
    """One-vs-rest L2-regularised squared-hinge SVM, every class in one L-BFGS problem.

    The objective is LinearSVC's default (``0.5 |w|^2 + C sum max(0, 1 - t w.x)^2`` per class),
    divided by ``C N`` like sklearn's logistic regression so that :data:`CLASS_TOL` means the
    same; the intercept is not penalised. liblinear (LinearSVC) did not finish one fold of the
    Caltech-101 benchmark in 10 minutes; this converges in tens of seconds and warm-starts along
    the C path. Returns the parameters ``[K, r + 1]`` (weights, then intercept).
    """
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    n, r = z.shape
    k = len(classes)
    t = np.where(y[:, None] == classes[None, :], 1.0, -1.0).astype(np.float32)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        wb = p.reshape(k, r + 1)
        w = wb[:, :r].astype(np.float32)
        s = z @ w.T + wb[:, r].astype(np.float32)
        a = np.maximum(1.0 - t * s, 0.0)
        g = (-2.0 / n) * (t * a)
        loss = float(np.sum(np.square(a, dtype=np.float64))) / n + float(np.sum(wb[:, :r] ** 2)) / (2 * c * n)
        grad = np.empty_like(wb)
        grad[:, :r] = (g.T @ z).astype(np.float64) + wb[:, :r] / (c * n)
        grad[:, r] = g.sum(axis=0, dtype=np.float64)
        return loss, grad.ravel()

    p0 = np.zeros(k * (r + 1)) if init is None else init.ravel()
    res = minimize(
        objective,
        p0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": CLASS_MAX_ITER, "gtol": CLASS_TOL, "ftol": 64 * np.finfo(float).eps},
    )
    return np.asarray(res.x).reshape(k, r + 1)


def svm_start(z: np.ndarray, y: np.ndarray, classes: np.ndarray, c: float) -> np.ndarray:
    """The squared-hinge SVM's solution if every margin were active: ridge on +-1 targets.

    With all ``1 - t s > 0`` the objective ``0.5 |w|^2 + C sum (1 - t s)^2`` equals
    ``C (sum (t - s)^2 + |w|^2 / (2C))``, a ridge regression with alpha ``1 / (2C)``. At small C
    (small weights) nearly every margin is active, so this closed form starts L-BFGS close to the
    optimum (measured on the Caltech-101 benchmark's 2,640 x 5,888 features, C=0.001: the fit
    took 36 s from here against 150 s from zero).
    """
    t = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    z64 = np.asarray(z, dtype=np.float64)
    zm, tm = z64.mean(axis=0), t.mean(axis=0)
    zc = z64 - zm
    w = np.linalg.solve(zc.T @ zc + np.eye(z.shape[1]) / (2 * c), zc.T @ (t - tm))  # [r, K]
    return np.concatenate([w.T, (tm - zm @ w)[:, None]], axis=1)


def class_path(
    kind: HeadKind, grid: tuple[float, ...], z: np.ndarray, y: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(coef [K', r], intercept [K'], classes)`` for every C of ``grid``, in the grid's order.

    The Cs are fitted in increasing order, each warm-started from the previous solution (a
    weaker penalty moves the optimum a little; starting from zero at every C cost ~3x the
    iterations). Binary logistic regression has a single row (the positive class).
    """
    classes = np.unique(y)
    order = np.argsort(grid)
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if kind == "logistic":
        model = LogisticRegression(tol=CLASS_TOL, max_iter=CLASS_MAX_ITER, warm_start=True)
        for i in order:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.set_params(C=grid[i]).fit(z, y)
            out[int(i)] = (model.coef_.copy(), model.intercept_.copy(), model.classes_.copy())
    else:
        p: np.ndarray | None = None
        for i in order:
            p = svm_fit(z, y, classes, grid[i], p if p is not None else svm_start(z, y, classes, grid[i]))
            out[int(i)] = (p[:, :-1].copy(), p[:, -1].copy(), classes)
    return [out[i] for i in range(len(grid))]


def standardised(
    x_fit: np.ndarray, *others: np.ndarray
) -> tuple[FlooredScaler, np.ndarray | None, list[np.ndarray]]:
    """Scaler fitted on ``x_fit``, the row-space basis, and ``x_fit, *others`` in those coordinates."""
    scaler = FlooredScaler().fit(x_fit)
    xs = [
        np.asarray(scaler.transform(np.asarray(a, dtype=np.float32)), dtype=np.float32)
        for a in (x_fit, *others)
    ]
    basis = row_space(xs[0])
    if basis is not None:
        xs = [a @ basis for a in xs]
    return scaler, basis, xs


def class_cv(
    kind: HeadKind,
    grid: tuple[float, ...],
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Fold accuracies ``[folds, len(grid)]`` and, per C, out-of-fold scores ``[N, K]`` (for the SVM)."""
    k = int(y.max()) + 1
    acc: list[list[float]] = []
    oof = [np.full((len(y), k), np.nan) for _ in grid]
    for tr, va in splits:
        if len(np.unique(y[tr])) < 2:
            continue
        _, _, (zt, zv) = standardised(x[tr], x[va])
        row = []
        for j, (coef, intercept, classes) in enumerate(class_path(kind, grid, zt, y[tr])):
            s = np.asarray(zv @ coef.T + intercept, dtype=np.float64)
            pred = classes[np.argmax(s, axis=1)] if s.shape[1] > 1 else classes[(s[:, 0] > 0).astype(int)]
            row.append(float(np.mean(pred == y[va])))
            oof[j][va] = full_scores(s if s.shape[1] > 1 else s[:, 0], classes, k)
        acc.append(row)
    if not acc:
        raise ValueError("no CV fold had two classes to train on")
    return np.asarray(acc), oof


def cv_score(
    kind: HeadKind,
    param: float,
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[float, np.ndarray]:
    """Mean fold score and the out-of-fold scores (for the SVM temperature), one fit per fold.

    :func:`ridge_path` computes the ridge scores of a whole alpha path faster; this is the plain
    reference it is tested against.
    """
    if kind != "ridge":
        acc, oof = class_cv(kind, (param,), x, y, splits)
        return float(acc[:, 0].mean()), oof[0]
    fold_scores = []
    for tr, va in splits:
        pipe = ridge_pipeline(param).fit(x[tr], y[tr])
        s = np.asarray(pipe.predict(x[va]), dtype=np.float64)
        fold_scores.append(float(np.mean(np.abs(np.clip(s, 0, 1) - y[va]))))
    return float(np.mean(fold_scores)), np.empty((0, 0))


def ridge_path(
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    alphas: tuple[float, ...],
    n_classes: int = 0,
) -> np.ndarray:
    """Mean fold score for every alpha (:func:`ridge_fold_scores` averaged over the folds)."""
    return np.asarray(ridge_fold_scores(x, y, splits, alphas, n_classes).mean(axis=0))


def ridge_fold_scores(
    x: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    alphas: tuple[float, ...],
    n_classes: int = 0,
) -> np.ndarray:
    """Score of every fold for every alpha, ``[folds, alphas]``, from one eigendecomposition per fold.

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
    return scores


#: A regression head takes the largest alpha whose CV MAE is within this fraction of the best.
ALPHA_TOLERANCE = 0.02


def most_regularised(path: np.ndarray, task: str) -> int:
    """Index of the chosen alpha on an increasing alpha path.

    Regression: the most regularised alpha within 2% of the best CV MAE, in the spirit of the
    one-standard-error rule: new bins differ from the training bins more than CV folds differ from
    each other, and smaller weights also survive int8 rounding better.
    """
    if task != "regression":
        return int(np.argmax(path))
    ok = np.flatnonzero(path <= path.min() * (1.0 + ALPHA_TOLERANCE))
    return int(ok.max())


def full_scores(s: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Scores for all ``k`` classes; classes unseen in the fold get -inf-like scores."""
    if s.ndim == 1:
        s = np.stack([-s / 2, s / 2], axis=1)
    full = np.full((s.shape[0], k), -1e3)
    full[:, classes] = s
    return full


def softmax_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """Softmax temperature minimising the log loss of out-of-fold SVM scores."""
    from scipy.optimize import minimize_scalar

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
