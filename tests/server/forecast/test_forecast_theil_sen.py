"""Theil–Sen: exact on a line, unmoved by outliers, and its interval covers the true slope."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.server.forecast.theil_sen import theil_sen


def test_exact_line() -> None:
    """A noiseless line comes back exactly."""
    x = np.arange(10.0)
    fit = theil_sen(x, 0.3 + 0.05 * x)
    assert fit.slope == pytest.approx(0.05) and fit.intercept == pytest.approx(0.3)
    assert fit.slope_low <= 0.05 <= fit.slope_high


def test_outliers_ignored_where_least_squares_is_not() -> None:
    """A quarter of the points replaced by garbage barely moves the slope; least squares is dragged off."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 5, 200)
    y = 0.1 + 0.12 * x + rng.normal(0, 0.02, 200)
    bad = rng.random(200) < 0.25
    y[bad] = rng.random(int(bad.sum())) * 0.1  # a lid shadow reads as nearly empty
    assert abs(theil_sen(x, y).slope - 0.12) < 0.015
    assert abs(np.polyfit(x, y, 1)[0] - 0.12) > 0.03


def test_interval_coverage() -> None:
    """Over 300 noisy series the 90% interval covers the true slope 80-97% of the time."""
    rng = np.random.default_rng(1)
    x = np.linspace(0, 2, 40)
    hits = sum(
        (f := theil_sen(x, 0.2 * x + rng.normal(0, 0.05, 40), 0.9)).slope_low <= 0.2 <= f.slope_high
        for _ in range(300)
    )
    assert 0.80 <= hits / 300 <= 0.97


def test_degenerate_input() -> None:
    """All points at one x is an error naming the problem."""
    with pytest.raises(ValueError, match="distinct"):
        theil_sen(np.zeros(5), np.arange(5.0))
