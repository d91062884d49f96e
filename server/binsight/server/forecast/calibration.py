"""The time-to-full band calibrated on the bin's own past forecasts (split-conformal).

The model's band (:func:`binsight.server.forecast.model.forecast_bin`) comes from a variance model that
the back-test found too optimistic. Here the forecaster is replayed at fixed past times (every 12 h of
the last 28 days), each replay seeing only the readings up to its time, and its predicted crossing is
compared with the crossing the readings later showed (centred median of 5 readings reaching the
threshold, with no collection in between). The scores are ``log((T_seen + tau) / (T_pred + tau))``,
``T`` in hours ahead and ``tau`` a day (fill comes in by day: a crossing due in 2 h that comes 6 h late
is as wrong as one due in 2 days that comes 2 days late, not 4 times as wrong). The band for
``now`` takes the split-conformal quantiles of these scores; with too few of them (a new bin) the
model's own band stays.

Replays depend only on readings before their time, so they are memoised per bin (``memo``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from binsight.server.config import ForecastConfig
from binsight.server.forecast.collections import detect_collections
from binsight.server.forecast.model import Forecast, forecast_bin

__all__ = [
    "CALIBRATION_DAYS",
    "ReplayMemo",
    "conformal_quantiles",
    "forecast_calibrated",
    "past_scores",
]

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
#: Past forecasts are replayed this often (epoch-aligned, so a replay is reused until it ages out).
REPLAY_STEP_MS = 12 * _HOUR_MS
#: Only replays from this far back count: recent behaviour is what the band should reflect.
CALIBRATION_DAYS = 28
#: Scores are log-ratios of (hours ahead + TAU_H): short horizons are judged in hours, long in ratios.
TAU_H = 24.0
_SMOOTH = 5

#: ``(cut_ts, threshold) -> predicted crossing`` (None: no forecast or no crossing) of replays.
ReplayMemo = dict[tuple[int, float], int | None]


def conformal_quantiles(scores: NDArray[np.float64], confidence: float) -> tuple[float, float] | None:
    """Lower and upper split-conformal quantiles for a two-sided band, or None with too few scores.

    Each tail gets ``(1 - confidence) / 2``: the upper end is the ``ceil((n + 1)(1 - a/2))``-th smallest
    score and the lower the ``floor((n + 1) a/2)``-th, which cover a new exchangeable score with at least
    ``confidence`` probability. With ``a = 0.1`` this needs 19 scores.
    """
    n = len(scores)
    alpha = 1.0 - confidence
    # 1e-9: (19 + 1) * 0.95 is 19.000000000000004 in floating point.
    k_hi = math.ceil((n + 1) * (1 - alpha / 2) - 1e-9)
    k_lo = math.floor((n + 1) * alpha / 2 + 1e-9)
    if n == 0 or k_hi > n or k_lo < 1:
        return None
    s = np.sort(scores)
    return float(s[k_lo - 1]), float(s[k_hi - 1])


def _centred_median(fill: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median of the ``_SMOOTH`` readings centred on each one; NaN where the window is incomplete."""
    out = np.full(len(fill), np.nan)
    if len(fill) >= _SMOOTH:
        half = _SMOOTH // 2
        out[half : len(fill) - half] = np.median(
            np.lib.stride_tricks.sliding_window_view(fill, _SMOOTH), axis=1
        )
    return out


def past_scores(
    t: NDArray[np.int64],
    y: NDArray[np.float64],
    now_ts: int,
    cfg: ForecastConfig,
    threshold: float,
    *,
    memo: ReplayMemo | None = None,
    max_new: int | None = None,
) -> NDArray[np.float64]:
    """Scores of the replayed forecasts of the last :data:`CALIBRATION_DAYS` whose crossing is seen by now.

    ``t`` (sorted) and ``y`` are the bin's readings up to ``now_ts``. A replay is scored when the smoothed
    readings were below the threshold at its time and reached it later with no collection in between;
    replays followed by a collection first, or in the still open cycle, say nothing. At most ``max_new``
    replays not in ``memo`` are computed (None: all), newest first; the rest wait for a later call.
    """
    memo = {} if memo is None else memo
    first = max(int(t[0]), now_ts - CALIBRATION_DAYS * _DAY_MS) if len(t) else now_ts
    for old in [k for k in memo if k[0] < first]:
        del memo[old]  # aged out of the window
    smooth = _centred_median(y)
    cuts = detect_collections(y, cfg.min_drop)
    coll_ts = np.array([int(t[c]) for c in cuts], dtype=np.int64)
    above = np.flatnonzero(smooth >= threshold)
    out: list[float] = []
    budget = max_new
    for cut in range(now_ts - now_ts % REPLAY_STEP_MS, first - 1, -REPLAY_STEP_MS):
        if cut == now_ts:
            continue
        i = int(np.searchsorted(t, cut, side="right"))  # readings [0, i) are the replay's
        if i < _SMOOTH or not smooth[i - 1 - _SMOOTH // 2] < threshold:
            continue
        later = coll_ts[coll_ts > cut]
        if len(later) == 0:
            # The cycle is still open: scoring only those of its replays that already crossed would
            # keep the early crossings and drop the late ones.
            continue
        k = int(np.searchsorted(above, i))
        end = int(np.searchsorted(t, later[0]))  # the collection's reading
        if k == len(above) or above[k] >= end:
            continue  # emptied before it got full
        # Fill only rises within a cycle, but a noisy series first reaches a level early and last
        # leaves it late: the crossing is taken halfway between the two.
        below = np.flatnonzero(smooth[i:end] < threshold)
        last_below = i + int(below[-1]) if len(below) else int(above[k]) - 1
        seen = (int(t[above[k]]) + int(t[min(last_below + 1, end - 1)])) // 2
        key = (cut, threshold)
        if key not in memo:
            if budget is not None:
                if budget <= 0:
                    continue
                budget -= 1
            fc = forecast_bin(t[:i], y[:i], cut, cfg, threshold)
            memo[key] = fc.full_ts if fc is not None else None
        pred = memo[key]
        if pred is None or pred <= cut:
            continue
        out.append(math.log(((seen - cut) / _HOUR_MS + TAU_H) / ((pred - cut) / _HOUR_MS + TAU_H)))
    return np.array(out, dtype=np.float64)


def forecast_calibrated(
    ts_ms: NDArray[np.int64] | list[int],
    fill: NDArray[np.float64] | list[float],
    now_ts: int,
    cfg: ForecastConfig,
    threshold: float | None = None,
    *,
    memo: ReplayMemo | None = None,
    max_new: int | None = None,
) -> Forecast | None:
    """:func:`forecast_bin`, with the band from the bin's past forecast errors where it has enough of them.

    Pass readings from ``CALIBRATION_DAYS`` before the forecast's own ``history_days`` for the oldest
    replays to see full history. ``memo`` and ``max_new`` as in :func:`past_scores`. ``method`` gains
    ``+conformal`` when the band is calibrated.
    """
    thr = cfg.threshold if threshold is None else threshold
    t = np.asarray(ts_ms, dtype=np.int64)
    y = np.asarray(fill, dtype=np.float64)
    keep = t <= now_ts
    t, y = t[keep], y[keep]
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    f = forecast_bin(t, y, now_ts, cfg, thr)
    if f is None or f.full_ts is None or f.full_ts <= now_ts:
        return f
    scores = past_scores(t, y, now_ts, cfg, thr, memo=memo, max_new=max_new)
    q = conformal_quantiles(scores, cfg.confidence)
    if q is None:
        return f
    pred_h = (f.full_ts - now_ts) / _HOUR_MS + TAU_H
    low_h = max(0.0, pred_h * math.exp(q[0]) - TAU_H)
    high_h = pred_h * math.exp(q[1]) - TAU_H
    low = min(f.full_ts, now_ts + int(low_h * _HOUR_MS))
    high = max(f.full_ts, now_ts + int(high_h * _HOUR_MS))
    return replace(f, low_ts=low, high_ts=high, method=f.method + "+conformal")
