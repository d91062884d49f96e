"""True fill accounting: overflow hours and litres are exact within the hour, lifts split it."""

from __future__ import annotations

import numpy as np
import pytest

from binsight.server.twin.city import CityState, Ledger


def _state(level: float) -> CityState:
    return CityState(level=np.array([level]), capacity_l=np.array([1000.0]), last_lift_h=np.array([0.0]))


def test_a_bin_past_full_counts_overflow_hours() -> None:
    """From 0.9 to 1.1 in an hour: half an hour over, 100 litres beside the bin, one event."""
    s, lg = _state(0.9), Ledger()
    s.advance(0, np.array([0.2]), [], lg)
    assert lg.overflow_bin_hours == pytest.approx(0.5)
    assert lg.litres_overflowed == pytest.approx(100.0)
    assert lg.overflow_events == 1
    s.advance(1, np.array([0.2]), [], lg)  # still over: a whole hour more, the same event
    assert lg.overflow_bin_hours == pytest.approx(1.5)
    assert lg.litres_overflowed == pytest.approx(300.0)
    assert lg.overflow_events == 1


def test_a_lift_empties_the_bin_within_the_hour() -> None:
    """Lifted at half past: the fill at lift counts (capped at full), the bin refills from zero."""
    s, lg = _state(0.4), Ledger()
    s.advance(7, np.array([0.2]), [(0, 0.5)], lg)
    assert lg.lifts == 1 and lg.lifts_under_50 == 0
    assert lg.fill_at_lift_sum == pytest.approx(0.5)
    assert s.level[0] == pytest.approx(0.1)
    assert s.last_lift_h[0] == pytest.approx(7.5)
    assert lg.overflow_bin_hours == 0.0


def test_no_ledger_no_figures() -> None:
    """Warm-up hours move the bins but count nothing."""
    s = _state(0.95)
    s.advance(0, np.array([0.2]), [], None)
    assert s.level[0] == pytest.approx(1.15)
