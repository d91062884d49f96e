"""Collections (emptyings) found as sharp, sustained drops in the fill series."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["detect_collections"]


def detect_collections(fill: NDArray[np.float64], min_drop: float, window: int = 3) -> list[int]:
    """Indices ``j`` where the bin was emptied between readings ``j - 1`` and ``j``.

    A drop counts when the median of up to ``window`` readings before exceeds the median of up to
    ``window`` readings from ``j`` on by ``min_drop``, and the single step ``j - 1 -> j`` is the
    largest step of that drop: one bad frame does not make a collection, and a collection is
    reported once, at its reading.
    """
    n = len(fill)
    found: list[int] = []
    j = 1
    while j < n:
        before = float(np.median(fill[max(0, j - window) : j]))
        after = float(np.median(fill[j : j + window]))
        if before - after >= min_drop and fill[j - 1] - fill[j] >= min_drop / 2:
            # Among the next few steps that still qualify, take the biggest single drop.
            best, best_step = j, fill[j - 1] - fill[j]
            for k in range(j + 1, min(n, j + window)):
                step = fill[k - 1] - fill[k]
                if step > best_step:
                    best, best_step = k, step
            found.append(best)
            j = best + window
        else:
            j += 1
    return found
