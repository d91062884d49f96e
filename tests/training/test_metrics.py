"""Metrics computed with numpy alone."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.training.metrics import classification_metrics, regression_metrics


def test_regression_metrics() -> None:
    """MAE, RMSE and R² on a hand-checked example."""
    m = regression_metrics(np.array([0.0, 0.5, 1.0]), np.array([0.1, 0.5, 0.7]))
    assert m["n"] == 3
    assert m["mae"] == pytest.approx(0.4 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(0.1 / 3))
    assert m["r2"] == pytest.approx(1 - 0.1 / 0.5)


def test_r2_undefined_for_constant_targets() -> None:
    """R² is null, not a division by zero, when every target is equal."""
    assert regression_metrics(np.array([0.3, 0.3]), np.array([0.2, 0.4]))["r2"] is None


def test_classification_metrics() -> None:
    """Accuracy, macro F1 and the confusion matrix (rows true, columns predicted)."""
    m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["macro_f1"] == pytest.approx(np.mean([2 / 3, 2 / 3, 1.0]))
    assert m["classes"] == ["a", "b", "c"]
