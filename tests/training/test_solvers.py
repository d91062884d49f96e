"""The solvers behind the heads: CV folds, the floored scaler, the ridge path, the SVM and C paths."""

from __future__ import annotations

import numpy as np
import pytest
from training_support import class_data, regression_data

from binsight.training.solvers import (
    FlooredScaler,
    HeadKind,
    class_path,
    cv_score,
    cv_splits,
    default_folds,
    ridge_path,
    standardised,
    svm_fit,
    svm_start,
)


@pytest.mark.parametrize("d", [200, 20])
def test_fast_ridge_path_matches_sklearn(d: int) -> None:
    """The one-decomposition alpha path (dual and primal forms) equals fitting Ridge per alpha."""
    x, y, g = regression_data(80, d)
    splits = cv_splits(y, g[:80], "regression", 0)
    fast = ridge_path(x, y, splits, (0.1, 10.0, 1000.0))
    slow = [cv_score("ridge", a, x, y, splits)[0] for a in (0.1, 10.0, 1000.0)]
    assert fast == pytest.approx(slow, rel=1e-6, abs=1e-9)


def test_grouped_folds_keep_groups_apart() -> None:
    """No group has images on both sides of any fold."""
    _, y, g = regression_data()
    for tr, va in cv_splits(y, g, "regression", 0):
        assert not set(g[tr]) & set(g[va])


def test_floored_scaler_limits_amplification() -> None:
    """A near-constant column is not blown up by 1/std."""
    x = np.stack(
        [np.linspace(0, 1, 50), np.linspace(0, 2, 50), np.full(50, 3.0) + 1e-7 * np.arange(50)], axis=1
    )
    s = FlooredScaler(0.1).fit(x)
    assert s.scale_[2] == pytest.approx(0.1 * np.median(x.std(axis=0)))
    assert np.abs(s.transform(x)[:, 2]).max() < 1e-3


def test_svm_matches_liblinear_objective() -> None:
    """The L-BFGS squared-hinge SVM agrees with LinearSVC (intercept penalty made negligible)."""
    from sklearn.svm import LinearSVC

    x, y = class_data(d=10)
    _, basis, (z,) = standardised(x)
    assert basis is None  # more rows than columns: fitted on the columns themselves
    p = svm_fit(z, y, np.unique(y), 0.05, None)
    ref = LinearSVC(C=0.05, dual=False, tol=1e-10, intercept_scaling=1e3, max_iter=10_000).fit(z, y)
    assert np.abs(p[:, :-1] - ref.coef_).max() < 5e-3
    assert np.abs(p[:, -1] - ref.intercept_).max() < 5e-3


def test_svm_start_is_exact_when_every_margin_is_active() -> None:
    """At a tiny C every margin is active and the ridge start is already the SVM's optimum."""
    x, y = class_data(d=10)
    _, _, (z,) = standardised(x)
    classes = np.unique(y)
    start = svm_start(z, y, classes, 1e-4)
    assert np.abs(svm_fit(z, y, classes, 1e-4, start) - start).max() < 1e-4
    assert np.abs(svm_fit(z, y, classes, 1e-4, None) - start).max() < 1e-3


@pytest.mark.parametrize("kind", ["logistic", "linear_svm"])
def test_warm_started_path_equals_separate_fits(kind: HeadKind) -> None:
    """Fitting the C grid in one warm-started path gives each C's own solution (order of the grid kept)."""
    x, y = class_data(d=20)
    _, _, (z,) = standardised(x)
    grid = (1.0, 0.01, 0.1)
    path = class_path(kind, grid, z, y)
    for c, (coef, intercept, _) in zip(grid, path, strict=True):
        ((coef1, intercept1, _),) = class_path(kind, (c,), z, y)
        s, s1 = z @ coef.T + intercept, z @ coef1.T + intercept1
        assert np.abs(s - s1).max() < 0.05 * max(1.0, float(np.abs(s1).max()))
    norms = [np.linalg.norm(p[0]) for p in path]
    assert norms[1] < norms[2] < norms[0]  # weaker penalty, larger weights: each C got its own fit


def test_fold_count_and_stratified_folds_without_bins() -> None:
    """3 folds when every class has many samples, 5 otherwise; singleton groups give stratified folds."""
    y_many = np.repeat(np.arange(4), 30)
    y_few = np.repeat(np.arange(4), 10)
    assert default_folds(y_many, "classification") == 3
    assert default_folds(y_few, "classification") == 5
    assert default_folds(np.linspace(0, 1, 200), "regression") == 5
    singletons = np.array([f"image:{i}" for i in range(len(y_many))])
    splits = cv_splits(y_many, singletons, "classification", 0, 3)
    assert len(splits) == 3
    for _, va in splits:
        assert np.bincount(y_many[va], minlength=4).tolist() == [10, 10, 10, 10]
