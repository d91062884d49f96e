"""Back-test of time-to-full on simulated history (the simulation is labelled as such everywhere).

Each simulated bin has its own base rate (log-normal around 0.2 of the bin per day), weekday
multipliers, a day/night pattern, camera noise (sigma 0.05 plus 3% wild readings) and is emptied
on the morning of the first service day it is above 0.75. At each cut time the forecaster sees only
the readings up to then; the truth is when the *true* fill first reaches the threshold. Cuts where
a collection happens before the crossing are not scored (their truth is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from binsight.server.config import ForecastConfig
from binsight.server.forecast.calibration import ReplayMemo, forecast_calibrated
from binsight.server.forecast.model import Forecast, forecast_bin

__all__ = ["BacktestResult", "SimBin", "backtest", "simulate_bins"]

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday


@dataclass
class SimBin:
    ts: NDArray[np.int64]
    true_fill: NDArray[np.float64]
    observed: NDArray[np.float64]


def simulate_bins(n_bins: int, days: int, interval_min: int = 30, seed: int = 0) -> list[SimBin]:
    rng = np.random.default_rng(seed)
    out = []
    step = interval_min * 60_000
    ts = T0 + np.arange(0, days * _DAY_MS, step, dtype=np.int64)
    hours = (ts // _HOUR_MS) % 24
    weekday = ((ts // _DAY_MS) + 3) % 7
    diurnal = np.where((hours >= 7) & (hours < 21), 1.5, 0.125)  # averages 1.0 over a day
    for _ in range(n_bins):
        base = float(rng.lognormal(np.log(0.2), 0.5))
        week = np.clip(rng.normal(1.0, 0.25, 7), 0.3, 2.0)
        week /= week.mean()
        day_noise = np.clip(rng.normal(1.0, 0.15, days + 1), 0.3, 2.0)
        day_idx = ((ts - T0) // _DAY_MS).astype(int)
        rate = base * week[weekday] * diurnal * day_noise[day_idx] * (step / _DAY_MS)
        fill = np.empty(len(ts))
        level = float(rng.uniform(0.0, 0.5))
        for i in range(len(ts)):
            if hours[i] == 8 and ts[i] % _HOUR_MS == 0 and weekday[i] < 6 and level > 0.75:
                level = float(rng.uniform(0.0, 0.06))
            level = min(1.0, level + rate[i])
            fill[i] = level
        observed = fill + rng.normal(0.0, 0.05, len(ts))
        wild = rng.random(len(ts)) < 0.03
        observed[wild] = rng.random(int(wild.sum()))
        out.append(SimBin(ts, fill, np.clip(observed, 0.0, 1.0)))
    return out


@dataclass
class BacktestResult:
    n: int
    mae_h: float
    median_ae_h: float
    p90_ae_h: float
    bias_h: float
    coverage: float
    early: float
    late: float
    median_width_h: float
    calibrated: float
    by_horizon: dict[str, dict[str, float]]  # by how far ahead the truth was
    by_predicted_horizon: dict[str, dict[str, float]]  # by how far ahead the forecast said (what a user sees)
    baseline_mae_h: float

    def as_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "mae_h": round(self.mae_h, 2),
            "median_ae_h": round(self.median_ae_h, 2),
            "p90_ae_h": round(self.p90_ae_h, 2),
            "bias_h": round(self.bias_h, 2),
            "band_coverage": round(self.coverage, 3),
            "truth_before_band": round(self.early, 3),
            "truth_after_band": round(self.late, 3),
            "band_median_width_h": round(self.median_width_h, 1),
            "band_calibrated_share": round(self.calibrated, 3),
            "by_horizon": self.by_horizon,
            "by_predicted_horizon": self.by_predicted_horizon,
            "baseline_ols_cycle_mae_h": round(self.baseline_mae_h, 2),
        }


def _ols_crossing(t: NDArray[np.int64], y: NDArray[np.float64], now: int, thr: float) -> int | None:
    """Baseline: ordinary least squares over the same cycle, no weekdays, no robustness."""
    if len(t) < 3:
        return None
    x = (t - now) / _DAY_MS
    slope, icpt = np.polyfit(x, y, 1)
    if slope <= 0:
        return None
    return now + int(max(0.0, (thr - icpt) / slope) * _DAY_MS)


@dataclass
class _Scores:
    """Per scored cut: the forecast's error against the truth, and where the truth fell in the band."""

    errs: list[float] = field(default_factory=list)  # full_ts - truth, hours
    base_errs: list[float] = field(default_factory=list)  # |baseline - truth|, hours
    horizons: list[float] = field(default_factory=list)  # truth - cut, hours
    predicted: list[float] = field(default_factory=list)  # full_ts - cut, hours
    side: list[int] = field(default_factory=list)  # -1 truth before the band, 0 inside, 1 after
    widths: list[float] = field(default_factory=list)  # band width, hours (inf: open-ended)
    n_cal: int = 0  # forecasts whose band came from conformal calibration

    def add(self, f: Forecast, truth: int, cut: int) -> None:
        """Score forecast ``f`` made at ``cut`` (it has a ``full_ts``) against ``truth``."""
        assert f.full_ts is not None
        full_ts = f.full_ts
        self.n_cal += "conformal" in f.method
        self.errs.append((full_ts - truth) / _HOUR_MS)
        self.horizons.append((truth - cut) / _HOUR_MS)
        self.predicted.append((full_ts - cut) / _HOUR_MS)
        low = f.low_ts if f.low_ts is not None else cut
        if truth < low:
            self.side.append(-1)
        elif f.high_ts is not None and truth > f.high_ts:
            self.side.append(1)
        else:
            self.side.append(0)
        self.widths.append(((f.high_ts - low) / _HOUR_MS) if f.high_ts is not None else np.inf)


def backtest(
    bins: list[SimBin],
    cfg: ForecastConfig,
    warmup_days: float = 14.0,
    cut_every_h: float = 12.0,
    calibrate: bool = True,
) -> BacktestResult:
    """Score forecasts at every ``cut_every_h`` after ``warmup_days`` against the true crossing.

    With ``calibrate`` the band comes from :func:`forecast_calibrated` (replays of the bin's own past);
    without, from the model alone. A band whose ``high_ts`` is None is open-ended (not bounded within
    60 days) and holds any truth after ``low_ts``.
    """
    thr = cfg.threshold
    scores = _Scores()
    for b in bins:
        memo: ReplayMemo = {}
        start = b.ts[0] + int(warmup_days * _DAY_MS)
        for cut in range(int(start), int(b.ts[-1]), int(cut_every_h * _HOUR_MS)):
            known = _true_crossing(b, cut, thr)
            if known is None:
                continue
            i, truth = known
            if calibrate:
                f = forecast_calibrated(b.ts[:i], b.observed[:i], cut, cfg, memo=memo)
            else:
                f = forecast_bin(b.ts[:i], b.observed[:i], cut, cfg)
            if f is None or f.full_ts is None:
                continue
            scores.add(f, truth, cut)
            c_start = f.collections[-1] if f.collections else int(b.ts[0])
            k0 = int(np.searchsorted(b.ts, c_start))
            base = _ols_crossing(b.ts[k0:i], b.observed[k0:i], cut, thr)
            if base is not None:
                scores.base_errs.append(abs(base - truth) / _HOUR_MS)
    return _summarize(scores)


def _true_crossing(b: SimBin, cut: int, thr: float) -> tuple[int, int] | None:
    """How many readings the forecaster sees at ``cut``, and when the true fill reaches ``thr``.

    None when the cut is not scored: already full, never full, or emptied before it got full
    (then the truth is unknown).
    """
    i = int(np.searchsorted(b.ts, cut, side="right"))
    if b.true_fill[i - 1] >= thr:
        return None
    hit = np.nonzero(b.true_fill[i:] >= thr)[0]
    if len(hit) == 0:
        return None
    j = i + int(hit[0])
    if np.any(np.diff(b.true_fill[i - 1 : j + 1]) < -0.2):
        return None
    return i, int(b.ts[j])


def _summarize(scores: _Scores) -> BacktestResult:
    e = np.abs(np.array(scores.errs))
    sd = np.array(scores.side)
    w = np.array(scores.widths)
    n = max(1, len(e))
    return BacktestResult(
        n=len(e),
        mae_h=float(e.mean()),
        median_ae_h=float(np.median(e)),
        p90_ae_h=float(np.percentile(e, 90)),
        bias_h=float(np.mean(scores.errs)),
        coverage=float((sd == 0).sum()) / n,
        early=float((sd == -1).sum()) / n,
        late=float((sd == 1).sum()) / n,
        median_width_h=float(np.median(w)),
        calibrated=scores.n_cal / n,
        by_horizon=_by_hours(np.array(scores.horizons), e, sd, w),
        by_predicted_horizon=_by_hours(np.array(scores.predicted), e, sd, w),
        baseline_mae_h=float(np.mean(scores.base_errs)) if scores.base_errs else float("nan"),
    )


def _by_hours(
    hours: NDArray[np.float64], e: NDArray[np.float64], sd: NDArray[np.int64], w: NDArray[np.float64]
) -> dict[str, dict[str, float]]:
    """The scores by horizon bucket: absolute errors ``e``, band sides ``sd``, band widths ``w``."""
    by: dict[str, dict[str, float]] = {}
    for name, lo, hi in (("<24h", -1e9, 24), ("24-72h", 24, 72), (">72h", 72, 1e9)):
        sel = (hours >= lo) & (hours < hi)
        if sel.any():
            by[name] = {
                "n": int(sel.sum()),
                "mae_h": round(float(e[sel].mean()), 2),
                "coverage": round(float((sd[sel] == 0).mean()), 3),
                "truth_before": round(float((sd[sel] == -1).mean()), 3),
                "truth_after": round(float((sd[sel] == 1).mean()), 3),
                "median_width_h": round(float(np.median(w[sel])), 1),
            }
    return by
