"""Theil–Sen line with Sen's (1968) distribution-free confidence interval for the slope.

The median of pairwise slopes ignores up to ~29% outliers (a mis-read frame, a bag lying on
the lens), where least squares follows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

__all__ = ["LineFit", "theil_sen"]

_MAX_POINTS = 240  # pairwise slopes grow as n^2: subsample evenly beyond this


@dataclass(frozen=True, slots=True)
class LineFit:
    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    n: int
    residual_scale: float  # 1.4826 x MAD of residuals: a robust sigma

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def theil_sen(
    x: NDArray[np.float64], y: NDArray[np.float64], confidence: float = 0.9, max_points: int = _MAX_POINTS
) -> LineFit:
    """Fit ``y = intercept + slope * x`` robustly.

    Parameters
    ----------
    x, y
        Same length, at least 2 points with distinct ``x``.
    confidence
        Two-sided level of the slope interval ``[slope_low, slope_high]``.
    max_points
        Longer series are subsampled evenly to this many points (pairwise slopes grow as n^2).

    Raises
    ------
    ValueError
        Fewer than two distinct ``x`` values.
    """
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).round().astype(int)
        x, y = x[idx], y[idx]
    n = len(x)
    i, j = np.triu_indices(n, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        raise ValueError("need at least two distinct x values")
    slopes = np.sort((y[j] - y[i])[keep] / dx[keep])
    slope = float(np.median(slopes))
    intercept = float(np.median(y - slope * x))
    big_n = len(slopes)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo = int(max(0, math.floor((big_n - c) / 2)))
    hi = int(min(big_n - 1, math.ceil((big_n + c) / 2)))
    resid = y - (intercept + slope * x)
    scale = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
    return LineFit(slope, intercept, float(slopes[lo]), float(slopes[hi]), n, scale)
