"""Linear heads: CV choices, folded weights, probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from training_support import class_data, regression_data

from binsight.training.heads import fit_fixed, fit_head
from binsight.training.solvers import FlooredScaler


def test_ridge_recovers_signal_and_clips() -> None:
    """Ridge learns a mostly linear target; predictions stay within 0..1."""
    x, y, g = regression_data()
    head = fit_head(x[:100], y[:100], "regression", groups=g[:100])
    pred = head.predict(x[100:])
    assert pred.min() >= 0.0 and pred.max() <= 1.0
    assert np.mean(np.abs(pred - y[100:])) < 0.5 * np.mean(np.abs(y[100:] - y[:100].mean()))
    assert head.kind == "ridge" and set(head.cv_scores) == {
        f"ridge:{a:g}" for a in (0.1, 1, 10, 100, 1e3, 1e4, 1e5)
    }


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


def test_row_space_fit_equals_full_fit() -> None:
    """With more columns than rows the head is fitted in the row space: same model as on all columns."""
    from sklearn.linear_model import LogisticRegression

    x, y = class_data(n_per=15, d=200)  # 45 rows, 200 columns
    head = fit_fixed(x, y, "classification", "logistic", 0.1, n_classes=3)
    scaler = FlooredScaler().fit(x)
    full = LogisticRegression(C=0.1, tol=1e-8, max_iter=5000).fit(scaler.transform(x), y)
    probs_full = full.predict_proba(scaler.transform(x))
    assert np.abs(head.predict(x) - probs_full).max() < 2e-3


def test_classification_head_reports_every_kind_and_c() -> None:
    """The CV table holds both kinds at every C; the head is the best of them."""
    x, y = class_data(d=20)
    head = fit_head(x, y, "classification", 3)
    assert set(head.cv_scores) == {
        f"{k}:{c:g}" for k in ("logistic", "linear_svm") for c in (0.001, 0.01, 0.1, 1)
    }
    assert head.cv_score == max(head.cv_scores.values())


def test_one_standard_error_rule_prefers_the_smaller_set_inside_the_noise() -> None:
    """A richer candidate wins only by more than one standard error; otherwise the smallest close one."""
    from binsight.training.selection import one_se_choice

    small = {"recipe": "final:avg", "dim": 10, "cv_score": 0.052, "cv_se": 0.004}
    rich = {"recipe": "final:grid2", "dim": 40, "cv_score": 0.050, "cv_se": 0.003}
    assert one_se_choice([small, rich], "regression") is small  # 0.052 <= 0.050 + 0.003
    far = {**rich, "cv_score": 0.040}
    assert one_se_choice([small, far], "regression") is far  # 0.052 > 0.040 + 0.003
    # Accuracy: higher is better, the bound is below the best.
    a = {"recipe": "a", "dim": 5, "cv_score": 0.90, "cv_se": 0.02}
    b = {"recipe": "b", "dim": 50, "cv_score": 0.91, "cv_se": 0.02}
    assert one_se_choice([a, b], "classification") is a
    assert one_se_choice([a, {**b, "cv_score": 0.95}], "classification")["recipe"] == "b"


def test_screen_reports_a_standard_error() -> None:
    """The screen's score is the mean over folds at its alpha; its SE is positive with several folds."""
    from binsight.training.heads import screen

    x, y, groups = regression_data(n=120, d=30, seed=1)
    s = screen(x, y, "regression", groups=groups)
    assert 0 < s.se < s.score and s.table[f"ridge:{s.alpha:g}"] == s.score
