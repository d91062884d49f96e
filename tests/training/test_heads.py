"""Linear heads: CV choices, folded weights, grouped folds, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.training.heads import (
    FlooredScaler,
    HeadKind,
    _class_path,
    _cv,
    _ridge_path,
    _standardised,
    _svm_fit,
    _svm_start,
    cv_splits,
    default_folds,
    fit_fixed,
    fit_head,
)


def _data(n: int = 120, d: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.1, 5, d).astype(np.float32)
    w = np.zeros(d)
    w[:5] = rng.normal(size=5)
    y = 1 / (1 + np.exp(-(x @ w) / 4))
    return x, y, np.repeat(np.arange(n // 10), 10)


def test_ridge_recovers_signal_and_clips() -> None:
    """Ridge learns a mostly linear target; predictions stay within 0..1."""
    x, y, g = _data()
    head = fit_head(x[:100], y[:100], "regression", groups=g[:100])
    pred = head.predict(x[100:])
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    assert np.mean(np.abs(pred - y[100:])) < 0.5 * np.mean(np.abs(y[100:] - y[:100].mean()))
    assert head.kind == "ridge" and set(head.cv_scores) == {
        f"ridge:{a:g}" for a in (0.1, 1, 10, 100, 1e3, 1e4, 1e5)
    }


@pytest.mark.parametrize("d", [200, 20])
def test_fast_ridge_path_matches_sklearn(d: int) -> None:
    """The one-decomposition alpha path (dual and primal forms) equals fitting Ridge per alpha."""
    x, y, g = _data(80, d)
    splits = cv_splits(y, g[:80], "regression", 0)
    fast = _ridge_path(x, y, splits, (0.1, 10.0, 1000.0))
    slow = [_cv("ridge", a, x, y, splits, seed=0)[0] for a in (0.1, 10.0, 1000.0)]
    assert fast == pytest.approx(slow, rel=1e-6, abs=1e-9)


def test_grouped_folds_keep_groups_apart() -> None:
    """No group has images on both sides of any fold."""
    _, y, g = _data()
    for tr, va in cv_splits(y, g, "regression", 0):
        assert not set(g[tr]) & set(g[va])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classification_probs(n_classes: int) -> None:
    """Logistic/SVM heads give probabilities summing to one and beat chance on separable data."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(n_classes, 30)) * 3
    y = np.repeat(np.arange(n_classes), 30)
    x = (centres[y] + rng.normal(size=(len(y), 30))).astype(np.float32)
    head = fit_head(x, y, "classification", n_classes)
    probs = head.predict(x)
    assert probs.shape == (len(y), n_classes)
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.mean(probs.argmax(axis=1) == y) > 0.9
    assert head.kind in ("logistic", "linear_svm")


def test_floored_scaler_limits_amplification() -> None:
    """A near-constant column is not blown up by 1/std."""
    x = np.stack(
        [np.linspace(0, 1, 50), np.linspace(0, 2, 50), np.full(50, 3.0) + 1e-7 * np.arange(50)], axis=1
    )
    s = FlooredScaler(0.1).fit(x)
    assert s.scale_[2] == pytest.approx(0.1 * np.median(x.std(axis=0)))
    assert np.abs(s.transform(x)[:, 2]).max() < 1e-3


def _classes(n_per: int = 30, k: int = 3, d: int = 30, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 1.5
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


def test_row_space_fit_equals_full_fit() -> None:
    """With more columns than rows the head is fitted in the row space: same model as on all columns."""
    from sklearn.linear_model import LogisticRegression

    x, y = _classes(n_per=15, d=200)  # 45 rows, 200 columns
    head = fit_fixed(x, y, "classification", "logistic", 0.1, n_classes=3)
    scaler = FlooredScaler().fit(x)
    full = LogisticRegression(C=0.1, tol=1e-8, max_iter=5000).fit(scaler.transform(x), y)
    probs_full = full.predict_proba(scaler.transform(x))
    assert np.abs(head.predict(x) - probs_full).max() < 2e-3


def test_svm_matches_liblinear_objective() -> None:
    """The L-BFGS squared-hinge SVM agrees with LinearSVC (intercept penalty made negligible)."""
    from sklearn.svm import LinearSVC

    x, y = _classes(d=10)
    _, basis, (z,) = _standardised(x)
    assert basis is None  # more rows than columns: fitted on the columns themselves
    p = _svm_fit(z, y, np.unique(y), 0.05, None)
    ref = LinearSVC(C=0.05, dual=False, tol=1e-10, intercept_scaling=1e3, max_iter=10_000).fit(z, y)
    assert np.abs(p[:, :-1] - ref.coef_).max() < 5e-3
    assert np.abs(p[:, -1] - ref.intercept_).max() < 5e-3


def test_svm_start_is_exact_when_every_margin_is_active() -> None:
    """At a tiny C every margin is active and the ridge start is already the SVM's optimum."""
    x, y = _classes(d=10)
    _, _, (z,) = _standardised(x)
    classes = np.unique(y)
    start = _svm_start(z, y, classes, 1e-4)
    assert np.abs(_svm_fit(z, y, classes, 1e-4, start) - start).max() < 1e-4
    assert np.abs(_svm_fit(z, y, classes, 1e-4, None) - start).max() < 1e-3


@pytest.mark.parametrize("kind", ["logistic", "linear_svm"])
def test_warm_started_path_equals_separate_fits(kind: HeadKind) -> None:
    """Fitting the C grid in one warm-started path gives each C's own solution (order of the grid kept)."""
    x, y = _classes(d=20)
    _, _, (z,) = _standardised(x)
    grid = (1.0, 0.01, 0.1)
    path = _class_path(kind, grid, z, y)
    for c, (coef, intercept, _) in zip(grid, path, strict=True):
        ((coef1, intercept1, _),) = _class_path(kind, (c,), z, y)
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


def test_classification_head_reports_every_kind_and_c() -> None:
    """The CV table holds both kinds at every C; the head is the best of them."""
    x, y = _classes(d=20)
    head = fit_head(x, y, "classification", 3)
    assert set(head.cv_scores) == {
        f"{k}:{c:g}" for k in ("logistic", "linear_svm") for c in (0.001, 0.01, 0.1, 1)
    }
    assert head.cv_score == max(head.cv_scores.values())
