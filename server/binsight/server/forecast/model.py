"""One bin's forecast: when it reaches the threshold, with an uncertainty band.

Method, per bin:

1. Collections are sharp sustained drops (:func:`detect_collections`); the current *cycle* starts
   at the last one.
2. The fill rate is the Theil–Sen slope of the cycle's readings, with Sen's interval; early in a
   cycle (less than a day of data) it is blended with the median daily rate of earlier cycles.
3. With two weeks of history, per-weekday multipliers (:mod:`weekday`) shape the projection: the
   cycle's slope is divided by the mean multiplier over the cycle, and the future is integrated
   hour by hour with each weekday's multiplier.
4. The threshold crossing is solved for the central rate and level and for the band's ends
   (fast rate and high level -> ``low_ts``; slow rate and low level -> ``high_ts``). The rate's
   interval combines the fit's (Sen) with the day-to-day spread of daily rates in history, averaged
   over the horizon; it is at least +-30%, and the band at least +-6 h.
5. With a week of cycles of two days or more, an hour-of-day profile (residuals of each cycle's line
   as a time offset, medianed per local hour) shapes the projection within the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from binsight.server.config import ForecastConfig
from binsight.server.forecast.collections import detect_collections
from binsight.server.forecast.theil_sen import theil_sen
from binsight.server.forecast.weekday import daily_rates, weekday_multipliers

__all__ = ["Forecast", "forecast_bin"]

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_HORIZON_H = 60 * 24
#: Rates are never known better than this, whatever the fit says: the next days are not the last.
REL_RATE_FLOOR = 0.3
#: Day-to-day relative spread of the fill rate assumed until a bin has history.
DEFAULT_DAY_CV = 0.25
#: Fill comes in by day, not evenly: a crossing is never placed more precisely than this.
MIN_HALF_BAND_MS = 6 * _HOUR_MS


@dataclass
class Forecast:
    """Fill forecast from ``now_ts``; ``*_ts`` are epoch ms, None when not reached within 60 days."""

    now_ts: int
    threshold: float
    level: float
    rate_per_day: float
    full_ts: int | None
    low_ts: int | None
    high_ts: int | None
    method: str
    collections: list[int] = field(default_factory=list)
    _cum: NDArray[np.float64] = field(default_factory=lambda: np.zeros(1), repr=False)
    _day: NDArray[np.float64] = field(default_factory=lambda: np.zeros(1), repr=False)

    def fill_at(self, ts: int) -> float:
        """Projected fill at ``ts`` (clipped to 0..1)."""
        h = min(max((ts - self.now_ts) / _HOUR_MS, 0.0), len(self._cum) - 1.0)
        grid = np.arange(len(self._cum))
        cum = float(np.interp(h, grid, self._cum))
        day = float(np.interp(h, np.arange(len(self._day)), self._day)) if len(self._day) > 1 else 0.0
        return float(min(1.0, max(0.0, self.level + self.rate_per_day * (cum + day))))

    def reaches(self, threshold: float) -> int | None:
        """When the central projection reaches ``threshold`` (now if already there; None: not in 60 days)."""
        return _crossing(self.level, self.rate_per_day, threshold, self._cum, self.now_ts, day=self._day)

    def points(self, until_ts: int | None = None, step_h: float = 1.0) -> list[dict[str, float]]:
        """Projected ``{ts, fill}`` from now to ``until_ts`` (default: past ``high_ts``, at most 14 days)."""
        end = until_ts or min(
            self.now_ts + 14 * _DAY_MS,
            max(self.high_ts or 0, self.full_ts or 0, self.now_ts + _DAY_MS) + _HOUR_MS,
        )
        out = []
        t = self.now_ts
        while t <= end:
            out.append({"ts": t, "fill": round(self.fill_at(t), 4)})
            t += int(step_h * _HOUR_MS)
        return out

    def to_api(self) -> dict[str, float | int | str | None]:
        return {
            "full_ts": self.full_ts,
            "low_ts": self.low_ts,
            "high_ts": self.high_ts,
            "rate_per_day": round(self.rate_per_day, 5),
            "level": round(self.level, 4),
            "method": self.method,
        }


def _tz_offset_ms(tz: ZoneInfo, ts: int) -> int:
    off = datetime.fromtimestamp(ts / 1000, tz).utcoffset()
    return int(off.total_seconds() * 1000) if off is not None else 0


def _cumulative(now_ts: int, mult: NDArray[np.float64] | None, tz: ZoneInfo) -> NDArray[np.float64]:
    """Days of 'average-weekday filling' between now and each following hour."""
    per_hour = np.full(_HORIZON_H, 1.0 / 24.0)
    if mult is not None:
        offset = _tz_offset_ms(tz, now_ts)
        mids = now_ts + offset + (np.arange(_HORIZON_H) + 0.5) * _HOUR_MS
        weekday = ((mids // _DAY_MS).astype(np.int64) + 3) % 7
        per_hour = mult[weekday] / 24.0
    return np.concatenate([[0.0], np.cumsum(per_hour)])


def _mean_multiplier(start_ts: int, end_ts: int, mult: NDArray[np.float64] | None, tz: ZoneInfo) -> float:
    if mult is None or end_ts <= start_ts:
        return 1.0
    offset = _tz_offset_ms(tz, end_ts)
    hours = np.arange(start_ts, end_ts, _HOUR_MS) + offset
    return float(mult[((hours // _DAY_MS).astype(np.int64) + 3) % 7].mean())


def _day_to_day_cv(rates: list[tuple[int, float, int]], mult: NDArray[np.float64] | None) -> float:
    """Robust relative spread of daily fill rates (weekday effect removed); 0.25 without history."""
    if len(rates) < 5:
        return DEFAULT_DAY_CV
    r = np.array([rate / (mult[w] if mult is not None else 1.0) for w, rate, _ in rates])
    med = float(np.median(r))
    if med <= 0:
        return DEFAULT_DAY_CV
    return float(1.4826 * np.median(np.abs(r - med)) / med)


def _crossing(
    level: float,
    rate: float,
    threshold: float,
    cum: NDArray[np.float64],
    now_ts: int,
    *,
    day: NDArray[np.float64] | None = None,
) -> int | None:
    """First time ``level + rate * (cum + day)`` reaches ``threshold`` (hourly grid, linear in between)."""
    if level >= threshold:
        return now_ts
    if rate <= 0:
        return None
    path = level + rate * (cum + (day if day is not None and len(day) == len(cum) else 0.0))
    above = np.nonzero(path >= threshold)[0]
    if len(above) == 0:
        return None
    k = int(above[0])
    if k == 0:
        return now_ts
    frac = (threshold - path[k - 1]) / max(path[k] - path[k - 1], 1e-12)
    return now_ts + int((k - 1 + frac) * _HOUR_MS)


def _diurnal_profile(
    t: NDArray[np.int64], y: NDArray[np.float64], segment: NDArray[np.int64], tz: ZoneInfo
) -> NDArray[np.float64] | None:
    """Hour-of-day shape of filling, as a time offset (days) from a straight line: 24 values, mean 0.

    Residuals of each cycle's Theil–Sen line (cycles of at least 2 days), divided by the cycle's
    rate, medianed per local hour and smoothed over 3 hours. None without a week of such cycles.
    """
    offset = _tz_offset_ms(tz, int(t[-1])) if len(t) else 0
    hours: list[NDArray[np.float64]] = []
    shifts: list[NDArray[np.float64]] = []
    covered = 0.0
    for seg in np.unique(segment):
        sel = segment == seg
        ts, ys = t[sel], y[sel]
        if len(ts) < 24 or ts[-1] - ts[0] < 2 * _DAY_MS:
            continue
        fit = theil_sen((ts - ts[0]) / _DAY_MS, ys, max_points=120)
        if fit.slope < 0.02:
            continue
        covered += (ts[-1] - ts[0]) / _DAY_MS
        shifts.append((ys - fit.at(0.0) - fit.slope * (ts - ts[0]) / _DAY_MS) / fit.slope)
        hours.append((((ts + offset) % _DAY_MS) / _HOUR_MS).astype(np.float64))
    if covered < 7:
        return None
    h = np.concatenate(hours).astype(int) % 24
    r = np.concatenate(shifts)
    prof = np.zeros(24)
    for k in range(24):
        v = r[h == k]
        if len(v) < 5:
            return None
        prof[k] = float(np.median(v))
    smooth = (np.roll(prof, 1) + prof + np.roll(prof, -1)) / 3
    out: NDArray[np.float64] = smooth - smooth.mean()
    return out


def _diurnal_offsets(now_ts: int, prof: NDArray[np.float64] | None, tz: ZoneInfo) -> NDArray[np.float64]:
    """Per hour from now: the diurnal time offset there minus the one now (days of filling)."""
    if prof is None:
        return np.zeros(1)
    offset = _tz_offset_ms(tz, now_ts)
    ext = np.concatenate([prof, prof[:1]])

    def at(ts: NDArray[np.float64]) -> NDArray[np.float64]:
        hod = ((ts + offset) % _DAY_MS) / _HOUR_MS
        # The profile's value k describes hour k..k+1; interpolate between hour midpoints.
        x = (hod - 0.5) % 24
        out: NDArray[np.float64] = np.interp(x, np.arange(25), ext)
        return out

    grid: NDArray[np.float64] = (now_ts + np.arange(_HORIZON_H + 1) * float(_HOUR_MS)).astype(np.float64)
    out: NDArray[np.float64] = at(grid) - at(np.array([float(now_ts)]))[0]
    return out


@dataclass
class _RateFit:
    """The current level and filling rate (per average-weekday day) with the rate's interval."""

    level: float
    level_sd: float
    rate: float
    lo: float
    hi: float
    method: str


@dataclass
class _Projection:
    """What the threshold crossings are solved on: the hourly filling curve from now."""

    threshold: float
    now_ts: int
    cum: NDArray[np.float64]
    day: NDArray[np.float64]

    def crossing(self, level: float, rate: float) -> int | None:
        return _crossing(level, rate, self.threshold, self.cum, self.now_ts, day=self.day)


def forecast_bin(
    ts_ms: NDArray[np.int64] | list[int],
    fill: NDArray[np.float64] | list[float],
    now_ts: int,
    cfg: ForecastConfig,
    threshold: float | None = None,
) -> Forecast | None:
    """Forecast one bin from its usable readings (``fill`` not null), sorted or not.

    Returns None when there is too little data to say anything (fewer than 3 readings in the
    current cycle and no earlier cycle to borrow a rate from).
    """
    recent = _recent_readings(ts_ms, fill, now_ts, cfg.history_days)
    if recent is None:
        return None
    t, y = recent
    tz = ZoneInfo(cfg.timezone)
    cuts = detect_collections(y, cfg.min_drop)
    segment = np.zeros(len(t), dtype=np.int64)
    for c in cuts:
        segment[c:] += 1
    c0 = cuts[-1] if cuts else 0
    rates = daily_rates(t, y, segment, tz)
    mult = weekday_multipliers(rates)
    hist_rates = [r for _, r, seg in rates if seg < len(cuts)]
    ct, cy = t[c0:], y[c0:]
    fit = _fit_rate(ct, cy, now_ts, confidence=cfg.confidence, hist_rates=hist_rates, mult=mult, tz=tz)
    if fit is None:
        return None
    method = fit.method
    if mult is not None:
        method += "+weekday"
    prof = _diurnal_profile(t, y, segment, tz)
    if prof is not None:
        method += "+hourly"
    proj = _Projection(
        threshold=cfg.threshold if threshold is None else threshold,
        now_ts=now_ts,
        cum=_cumulative(now_ts, mult, tz),
        day=_diurnal_offsets(now_ts, prof, tz),
    )
    level = float(min(1.0, max(0.0, fit.level)))
    z = NormalDist().inv_cdf(0.5 + cfg.confidence / 2)
    cv = _day_to_day_cv(rates, mult)
    full, low, high = _crossing_band(fit, level, proj, z=z, cv=cv, cycle_ts=ct)
    return Forecast(
        now_ts=now_ts,
        threshold=proj.threshold,
        level=level,
        rate_per_day=float(fit.rate),
        full_ts=full,
        low_ts=low,
        high_ts=high,
        method=method,
        collections=[int(t[c]) for c in cuts],
        _cum=proj.cum,
        _day=proj.day,
    )


def _recent_readings(
    ts_ms: NDArray[np.int64] | list[int],
    fill: NDArray[np.float64] | list[float],
    now_ts: int,
    history_days: float,
) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
    """The readings up to ``now_ts`` within ``history_days``, in time order; None if there are none."""
    t = np.asarray(ts_ms, dtype=np.int64)
    y = np.asarray(fill, dtype=np.float64)
    keep = t <= now_ts
    t, y = t[keep], y[keep]
    if len(t) == 0:
        return None
    order = np.argsort(t, kind="stable")
    t, y = t[order], y[order]
    start = np.searchsorted(t, now_ts - int(history_days * _DAY_MS))
    return t[start:], y[start:]


def _fit_rate(
    ct: NDArray[np.int64],
    cy: NDArray[np.float64],
    now_ts: int,
    *,
    confidence: float,
    hist_rates: list[float],
    mult: NDArray[np.float64] | None,
    tz: ZoneInfo,
) -> _RateFit | None:
    """Level and rate from the current cycle (``ct``, ``cy``), earlier cycles' daily rates, or both.

    None when the cycle is too short to fit and there is no history to borrow from.
    """
    span_days = (ct[-1] - ct[0]) / _DAY_MS if len(ct) else 0.0
    if len(ct) >= 3 and span_days >= 2 / 24:
        fit = theil_sen((ct - now_ts) / _DAY_MS, cy, confidence)
        m_cycle = _mean_multiplier(int(ct[0]), int(ct[-1]), mult, tz)
        rate, lo, hi = fit.slope / m_cycle, fit.slope_low / m_cycle, fit.slope_high / m_cycle
        method = "cycle"
        if span_days < 1.0 and hist_rates:
            # Early in a cycle a few hours say little about the rate: lean on earlier cycles.
            w = span_days
            h_med = float(np.median(hist_rates))
            h_lo, h_hi = (float(v) for v in np.percentile(hist_rates, [10, 90]))
            rate = w * rate + (1 - w) * h_med
            lo, hi = w * lo + (1 - w) * h_lo, w * hi + (1 - w) * h_hi
            method = "cycle+history"
        return _RateFit(fit.at(0.0), fit.residual_scale / np.sqrt(fit.n), rate, lo, hi, method)
    if hist_rates:
        lo, hi = (float(v) for v in np.percentile(hist_rates, [10, 90]))
        return _RateFit(float(np.median(cy[-3:])), 0.05, float(np.median(hist_rates)), lo, hi, "history")
    return None


def _crossing_band(
    fit: _RateFit, level: float, proj: _Projection, *, z: float, cv: float, cycle_ts: NDArray[np.int64]
) -> tuple[int | None, int | None, int | None]:
    """When the bin reaches the threshold: central, earliest and latest (``full, low, high``).

    ``level`` is the fit's level clipped to 0..1; ``cycle_ts`` the current cycle's reading times.
    """
    rate, lo, hi = fit.rate, fit.lo, fit.hi
    now_ts = proj.now_ts
    full = proj.crossing(level, rate)
    if rate > 0:
        # The coming days' rate varies around the fitted one: widen the fit's interval by the
        # day-to-day spread seen in history, averaged over the horizon (sd / sqrt(days)).
        horizon_d = max(0.5, ((full or now_ts + _DAY_MS) - now_ts) / _DAY_MS)
        rel_fit = max(rate - lo, hi - rate) / (z * rate)
        rel = float(np.hypot(rel_fit, cv / np.sqrt(horizon_d)))
        lo = min(lo, rate * (1 - max(z * rel, REL_RATE_FLOOR)))
        hi = max(hi, rate * (1 + max(z * rel, REL_RATE_FLOOR)))
    low = proj.crossing(level + z * fit.level_sd, hi)
    high = proj.crossing(level - z * fit.level_sd, max(lo, 0.0))
    if full is not None:
        low = min(low if low is not None else full, max(now_ts, full - MIN_HALF_BAND_MS))
        high = max(high if high is not None else full, full + MIN_HALF_BAND_MS) if high is not None else None
    if level >= proj.threshold and rate > 0:
        # Already past the threshold: report when the fitted line crossed it, not "now". The level is
        # itself uncertain (camera noise: the true fill may still be just under the threshold), so the
        # band keeps its slow end from ``level - z * sd`` computed above instead of closing on the past.
        back = int((proj.threshold - level) / rate * _DAY_MS)
        full = low = max(int(cycle_ts[0]), now_ts + back)
        high = max(high, full) if high is not None else None
    return full, low, high
