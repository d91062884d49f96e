"""Forecasts: time to the threshold with a band, weekday patterns, and the back-test against a baseline."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.server.config import ForecastConfig
from binsight.server.forecast.backtest import T0, backtest, simulate_bins
from binsight.server.forecast.calibration import (
    ReplayMemo,
    conformal_quantiles,
    forecast_calibrated,
    past_scores,
)
from binsight.server.forecast.model import forecast_bin

HOUR = 3_600_000
DAY = 24 * HOUR


def test_linear_fill_time_to_full() -> None:
    """A bin filling 0.2/day since its collection: full (0.8) when the line says, inside the band."""
    now = T0 + 10 * DAY
    ts = np.arange(now - 2 * DAY, now + 1, HOUR)
    fill = 0.1 + 0.2 * (ts - ts[0]) / DAY  # 0.5 now
    before = np.full(24, 0.9)
    f = forecast_bin(
        np.concatenate([ts[:1] - np.arange(24, 0, -1) * HOUR, ts]),
        np.concatenate([before, fill]),
        now,
        ForecastConfig(),
    )
    assert f is not None
    assert f.collections == [int(ts[0])]
    assert f.rate_per_day == pytest.approx(0.2, rel=1e-6)
    assert f.full_ts == pytest.approx(now + 1.5 * DAY, abs=HOUR)
    assert f.low_ts is not None and f.high_ts is not None and f.low_ts < f.full_ts < f.high_ts
    assert f.fill_at(now + DAY) == pytest.approx(0.7, abs=0.01)
    assert f.reaches(0.6) == pytest.approx(now + 0.5 * DAY, abs=HOUR)


def test_already_full_and_not_enough_data() -> None:
    """A bin past the threshold reports when it crossed; two readings alone give no forecast."""
    now = T0 + 5 * DAY
    ts = np.arange(now - DAY, now + 1, HOUR)
    f = forecast_bin(ts, 0.5 + 0.4 * (ts - ts[0]) / DAY, now, ForecastConfig())
    assert f is not None and f.full_ts is not None
    assert now - 0.3 * DAY < f.full_ts <= now
    # The band starts at the crossing and keeps a slow end ahead: the level could still be under.
    assert f.low_ts == f.full_ts and f.high_ts is not None and f.high_ts > now
    assert forecast_bin([now - HOUR, now], [0.1, 0.2], now, ForecastConfig()) is None
    assert forecast_bin([], [], now, ForecastConfig()) is None


def test_weekday_pattern_used() -> None:
    """With weeks of history where Saturdays fill 3x, a Friday forecast expects the Saturday surge."""
    rng = np.random.default_rng(2)
    ts = np.arange(T0, T0 + 28 * DAY, HOUR)
    weekday = ((ts // DAY) + 3) % 7
    rate = np.where(weekday == 5, 0.3, 0.1) / 24
    fill = np.empty(len(ts))
    level = 0.0
    for i in range(len(ts)):
        if ts[i] % DAY == 0 and level > 0.6:
            level = 0.02
        level += rate[i]
        fill[i] = level
    fill += rng.normal(0, 0.01, len(ts))
    fridays = [
        int(t) for t in ts if (((t // DAY) + 3) % 7 == 4) and t % DAY == 12 * HOUR and t > T0 + 21 * DAY
    ]
    now = fridays[0]
    cfg = ForecastConfig(threshold=0.95, min_drop=0.3)
    f = forecast_bin(ts[ts <= now], fill[ts <= now], now, cfg)
    assert f is not None and "weekday" in f.method
    # Saturday adds 0.3 where a flat model would add 0.13: the weekday projection is higher by then.
    sunday = now + 36 * HOUR
    flat = f.level + f.rate_per_day * 1.5  # what the same base rate projects without weekdays
    assert f.fill_at(sunday) > flat + 0.05


def test_backtest_beats_least_squares() -> None:
    """On simulated history the forecast's time-to-full error is lower than least squares over the cycle."""
    bins = simulate_bins(4, 28, seed=3)
    r = backtest(bins, ForecastConfig(), warmup_days=14, cut_every_h=24)
    assert r.n >= 30
    assert r.mae_h < r.baseline_mae_h
    assert r.mae_h < 24
    assert 0.4 < r.coverage <= 1.0


def test_hour_of_day_profile_puts_crossings_in_busy_hours() -> None:
    """A bin that fills only 08:00-20:00 is forecast to reach the threshold in those hours."""
    ts = np.arange(T0, T0 + 21 * DAY, HOUR // 2)
    hour = (ts % DAY) // HOUR
    fill = np.empty(len(ts))
    level = 0.05
    for i in range(len(ts)):
        if hour[i] == 6 and ts[i] % HOUR == 0 and level > 0.7:
            level = 0.05
        if 8 <= hour[i] < 20:
            level += 0.02 / 2  # 0.02 per busy hour
        fill[i] = level
    crossings = []
    for day in range(15, 20):
        now = T0 + day * DAY + 21 * HOUR
        f = forecast_bin(ts[ts <= now], fill[ts <= now], now, ForecastConfig(threshold=0.95))
        assert f is not None and "hourly" in f.method
        if f.full_ts is not None and f.full_ts > now:
            crossings.append((f.full_ts % DAY) / HOUR)
    assert crossings, "no forecast crossed in the future"
    assert all(7.5 <= h <= 20.5 for h in crossings), crossings


def test_calibrated_band_holds_nominal_coverage() -> None:
    """On simulated bins the model's own 90% band holds the truth ~77% of the time; the calibrated one 90%."""
    bins = simulate_bins(5, 42, seed=7)
    model = backtest(bins, ForecastConfig(), warmup_days=21, cut_every_h=12, calibrate=False)
    calibrated = backtest(bins, ForecastConfig(), warmup_days=21, cut_every_h=12)
    assert model.n == calibrated.n >= 80
    assert calibrated.calibrated > 0.9  # three weeks of history is enough to calibrate
    assert model.coverage < 0.85
    assert calibrated.coverage >= 0.87
    assert calibrated.mae_h == model.mae_h  # only the band changes
    # Both breakdowns count every scored forecast once ("<24h" includes a forecast of "full already").
    for by in (calibrated.by_horizon, calibrated.by_predicted_horizon):
        assert sum(int(v["n"]) for v in by.values()) == calibrated.n
        for v in by.values():
            assert v["coverage"] + v["truth_before"] + v["truth_after"] == pytest.approx(1.0, abs=2e-3)


def test_little_history_keeps_the_model_band() -> None:
    """A bin without three weeks of closed cycles has too few past errors: the model's band stays."""
    bins = simulate_bins(1, 8, seed=1)
    b = bins[0]
    now = int(b.ts[-1])
    cfg = ForecastConfig()
    f = forecast_calibrated(b.ts, b.observed, now, cfg)
    g = forecast_bin(b.ts, b.observed, now, cfg)
    assert f is not None and g is not None
    assert "conformal" not in f.method
    assert (f.full_ts, f.low_ts, f.high_ts) == (g.full_ts, g.low_ts, g.high_ts)


def test_conformal_quantiles_need_enough_scores() -> None:
    """A two-sided 90% band needs 19 scores; with them its ends are the extreme ones."""
    scores = np.arange(19, dtype=np.float64)
    assert conformal_quantiles(scores[:18], 0.9) is None
    assert conformal_quantiles(scores, 0.9) == (0.0, 18.0)
    lo, hi = conformal_quantiles(np.arange(99, dtype=np.float64), 0.8) or (np.nan, np.nan)
    assert (lo, hi) == (9.0, 89.0)


def test_replays_are_memoised_and_budgeted() -> None:
    """Replays are computed at most ``max_new`` per call and reused; the full set gives the same scores."""
    b = simulate_bins(1, 35, seed=4)[0]
    now = int(b.ts[-1])
    cfg = ForecastConfig()
    full = past_scores(b.ts, b.observed, now, cfg, 0.8)
    memo: ReplayMemo = {}
    first = past_scores(b.ts, b.observed, now, cfg, 0.8, memo=memo, max_new=3)
    assert len(memo) == 3 and len(first) <= 3
    while len(again := past_scores(b.ts, b.observed, now, cfg, 0.8, memo=memo, max_new=3)) < len(full):
        pass
    assert np.array_equal(np.sort(again), np.sort(full))
    assert len(full) >= 19
