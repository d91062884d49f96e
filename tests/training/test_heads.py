"""Linear heads: CV choices, folded weights, grouped folds, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.training.heads import FlooredScaler, _cv, _ridge_path, cv_splits, fit_head


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
