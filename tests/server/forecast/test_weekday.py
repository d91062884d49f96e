"""The weekday profile: daily fill rates per local calendar day, and multipliers from them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from binsight.server.forecast.weekday import daily_rates, weekday_multipliers

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday
THURSDAY = 3  # Monday is 0
UTC = ZoneInfo("UTC")


def hourly(hours: int, rate_per_day: float, start: int = T0) -> tuple[np.ndarray, np.ndarray]:
    """Readings every hour from ``start``, filling at ``rate_per_day``."""
    ts = start + np.arange(hours, dtype=np.int64) * HOUR
    return ts, (ts - start) / DAY * rate_per_day


def test_one_rate_per_local_day_with_its_weekday() -> None:
    """Three days of steady filling: three days, Thursday to Saturday, each at the fitted rate."""
    ts, fill = hourly(72, 0.24)
    rates = daily_rates(ts, fill, np.zeros(len(ts), dtype=np.int64), UTC)
    assert [w for w, _, _ in rates] == [THURSDAY, THURSDAY + 1, THURSDAY + 2]
    assert [c for _, _, c in rates] == [0, 0, 0]
    assert [r for _, r, _ in rates] == pytest.approx([0.24] * 3)


def test_days_are_cut_at_local_midnight() -> None:
    """In Tokyo (UTC+9) a UTC day is Thursday from 09:00 and Friday until 09:00: only Thursday has 12 h."""
    ts, fill = hourly(24, 0.24)
    segment = np.zeros(len(ts), dtype=np.int64)
    assert [w for w, _, _ in daily_rates(ts, fill, segment, UTC)] == [THURSDAY]
    assert [w for w, _, _ in daily_rates(ts, fill, segment, ZoneInfo("Asia/Tokyo"))] == [THURSDAY]
    # From 21:00 JST instead: Thursday keeps three readings, Friday gets twenty-one over 20 h.
    later, fill = hourly(24, 0.24, start=T0 + 12 * HOUR)
    assert [w for w, _, _ in daily_rates(later, fill, segment, ZoneInfo("Asia/Tokyo"))] == [THURSDAY + 1]


@pytest.mark.parametrize(
    ("hours", "step_h", "kept"),
    [(24, 1, 1), (5, 3, 0), (12, 1, 0), (13, 1, 1)],
    ids=["full day", "five readings", "eleven hours", "twelve hours"],
)
def test_a_day_needs_six_readings_over_twelve_hours(hours: int, step_h: int, kept: int) -> None:
    """Too few readings, or too short a span, and the day says nothing about its rate."""
    ts = T0 + np.arange(hours, dtype=np.int64) * step_h * HOUR
    fill = (ts - T0) / DAY * 0.2
    assert len(daily_rates(ts, fill, np.zeros(len(ts), dtype=np.int64), UTC)) == kept


def test_a_day_with_a_collection_is_judged_on_its_longer_part() -> None:
    """Emptied at 06:00: the six hours before are too short, the eighteen after give the rate."""
    ts, fill = hourly(24, 0.3)
    segment = (np.arange(24) >= 6).astype(np.int64)
    fill = np.where(segment == 1, fill - fill[6], fill + 0.7)
    rates = daily_rates(ts, fill, segment, UTC)
    assert len(rates) == 1
    weekday, rate, cycle = rates[0]
    assert (weekday, cycle) == (THURSDAY, 1)
    assert rate == pytest.approx(0.3)


def test_no_readings_no_rates() -> None:
    """An empty history gives no daily rates and no multipliers."""
    empty = np.zeros(0, dtype=np.int64)
    assert daily_rates(empty, np.zeros(0), empty, UTC) == []
    assert weekday_multipliers([]) is None


def rates_for(per_weekday: dict[int, float], weeks: int = 2) -> list[tuple[int, float, int]]:
    """``weeks`` daily rates per weekday, 1.0 unless ``per_weekday`` says otherwise."""
    return [(w, per_weekday.get(w, 1.0), 0) for _ in range(weeks) for w in range(7)]


def test_multipliers_are_shrunk_towards_one_and_average_one() -> None:
    """Saturday at twice the median, seen twice: raw 2 shrinks by 2/(2+2) to 1.5, then all are rescaled."""
    m = weekday_multipliers(rates_for({5: 2.0}))
    assert m is not None
    expected = np.array([1.0] * 5 + [1.5, 1.0]) / (7.5 / 7)
    assert m == pytest.approx(expected)
    assert m.mean() == pytest.approx(1.0)


def test_more_history_means_less_shrinkage() -> None:
    """Ten Saturdays: 1 + (2 - 1) * 10/12 before rescaling."""
    m = weekday_multipliers(rates_for({5: 2.0}, weeks=10))
    assert m is not None
    raw_saturday = 1 + 10 / 12
    assert m[5] == pytest.approx(raw_saturday / ((6 + raw_saturday) / 7))


def test_an_idle_weekday_is_floored() -> None:
    """A weekday with no filling at all counts as 0.05 of the median before shrinking, not 0."""
    m = weekday_multipliers(rates_for({6: 0.0}))
    assert m is not None
    sunday = 1 + (0.05 - 1) * 2 / 4
    assert m[6] == pytest.approx(sunday / ((6 + sunday) / 7))


@pytest.mark.parametrize(
    "rates",
    [
        rates_for({}, weeks=1),  # each weekday once: below min_per_day
        [r for r in rates_for({}) if r[0] != 2],  # no Wednesday at all
        rates_for({w: 0.0 for w in range(7)}),  # nothing fills: no median to divide by
    ],
    ids=["one week", "a weekday missing", "no filling"],
)
def test_no_multipliers_without_enough_history(rates: list[tuple[int, float, int]]) -> None:
    """Without two rates for every weekday, or any filling at all, the profile stays flat (None)."""
    assert weekday_multipliers(rates) is None


def test_min_per_day_is_the_callers_choice() -> None:
    """One week is enough when the caller asks for one rate per weekday."""
    assert weekday_multipliers(rates_for({}, weeks=1), min_per_day=1) == pytest.approx(np.ones(7))


def test_profile_recovered_from_readings() -> None:
    """Three weeks of half-hourly readings, Saturdays filling three times as fast: the profile shows it."""
    ts = T0 + np.arange(21 * 48, dtype=np.int64) * HOUR // 2
    weekday = ((ts // DAY) + 3) % 7
    per_step = np.where(weekday == 5, 0.3, 0.1) / 48
    fill = np.cumsum(per_step)
    m = weekday_multipliers(daily_rates(ts, fill, np.zeros(len(ts), dtype=np.int64), UTC))
    assert m is not None
    assert m[5] / m[0] == pytest.approx(1 + (3 - 1) * 3 / 5, rel=0.05)
    assert np.argmax(m) == 5
