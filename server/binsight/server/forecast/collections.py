"""Collections (emptyings) found as sharp, sustained drops in the fill series."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["detect_collections"]


def _medians_from(fill: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """``out[j] = median(fill[j : j + window])`` (shorter windows at the end)."""
    n = len(fill)
    out = np.empty(n)
    if n >= window:
        out[: n - window + 1] = np.median(np.lib.stride_tricks.sliding_window_view(fill, window), axis=1)
    for j in range(max(0, n - window + 1), n):
        out[j] = np.median(fill[j:])
    return out


def detect_collections(fill: NDArray[np.float64], min_drop: float, window: int = 3) -> list[int]:
    """Indices ``j`` where the bin was emptied between readings ``j - 1`` and ``j``.

    A drop counts when the median of up to ``window`` readings before exceeds the median of up to
    ``window`` readings from ``j`` on by ``min_drop``, and the single step ``j - 1 -> j`` is at least
    half that; of the steps of one drop, the largest is reported: one bad frame does not make a
    collection, and a collection is reported once, at its reading.
    """
    fill = np.asarray(fill, dtype=np.float64)
    n = len(fill)
    if n < 2:
        return []
    after = _medians_from(fill, window)
    before = np.empty(n)
    before[0] = np.nan
    for j in range(1, min(window, n)):
        before[j] = np.median(fill[:j])
    if n > window:
        before[window:] = after[: n - window]
    step = np.empty(n)
    step[0] = -np.inf
    step[1:] = fill[:-1] - fill[1:]
    candidates = np.nonzero((before - after >= min_drop) & (step >= min_drop / 2))[0]
    found: list[int] = []
    next_allowed = 1
    for j in candidates.tolist():
        if j < next_allowed:
            continue
        # Among the next few steps, take the biggest single drop.
        stop = min(n, j + window)
        best = int(j + np.argmax(step[j:stop]))
        found.append(best)
        next_allowed = best + window
    return found
