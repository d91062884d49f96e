"""Weekday fill-rate multipliers from history: markets on Saturday, offices empty on Sunday."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from binsight.server.forecast.theil_sen import theil_sen

__all__ = ["daily_rates", "weekday_multipliers"]

_DAY_MS = 86_400_000


def daily_rates(
    ts_ms: NDArray[np.int64], fill: NDArray[np.float64], segment: NDArray[np.int64], tz: ZoneInfo
) -> list[tuple[int, float, int]]:
    """``(weekday, fill per day, cycle)`` for each local calendar day with enough readings inside one cycle.

    A day needs at least 6 readings spanning 12 hours between two collections (``segment`` numbers
    the cycles), so a day with an emptying in it is judged on its longer part only.
    """
    if len(ts_ms) == 0:
        return []
    # One offset per reading would be exact; DST shifts by an hour, which moves few readings a day.
    offset = _offset_ms(tz, int(ts_ms[-1]))
    local_day = ((ts_ms + offset) // _DAY_MS).astype(np.int64)
    out: list[tuple[int, float, int]] = []
    keys = local_day * 10_000 + segment
    # Readings are in time order, so each (day, cycle) key is one contiguous run.
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(keys)]]), strict=True):
        if hi - lo < 6:
            continue
        key = keys[lo]
        sel = slice(lo, hi)
        t = ts_ms[sel]
        if t[-1] - t[0] < _DAY_MS / 2:
            continue
        fit = theil_sen((t - t[0]) / _DAY_MS, fill[sel], max_points=48)
        weekday = (int(key // 10_000) + 3) % 7  # 1970-01-01 was a Thursday (3)
        out.append((weekday, fit.slope, int(key % 10_000)))
    return out


def _offset_ms(tz: ZoneInfo, ts: int) -> int:
    off = datetime.fromtimestamp(ts / 1000, tz).utcoffset()
    return int(off.total_seconds() * 1000) if off is not None else 0


def weekday_multipliers(
    rates: list[tuple[int, float, int]], min_per_day: int = 2
) -> NDArray[np.float64] | None:
    """Seven multipliers (Monday first) averaging 1, or None when some weekday has too little history.

    Each weekday's median rate over the overall median, shrunk towards 1 by ``n / (n + 2)``.
    """
    if not rates:
        return None
    counts = np.bincount([w for w, _, _ in rates], minlength=7)
    if counts.min() < min_per_day:
        return None
    overall = float(np.median([r for _, r, _ in rates]))
    if overall <= 0:
        return None
    m = np.ones(7)
    for w in range(7):
        raw = float(np.median([r for d, r, _ in rates if d == w])) / overall
        n = counts[w]
        m[w] = 1.0 + (max(raw, 0.05) - 1.0) * n / (n + 2.0)
    out: NDArray[np.float64] = m / m.mean()
    return out
