"""The smoothed fill: only rises between collections, resets at one, ignores single wild frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from binsight.server.forecast.smoothing import SmoothParams, SmoothState, smooth_series, step

T0 = 1_767_225_600_000
STEP = 600_000  # the device default: a reading every 10 minutes
P = SmoothParams()


def times(n: int, start: int = T0) -> list[int]:
    return [start + i * STEP for i in range(n)]


def noisy_cycles(seed: int = 3, mae: float = 0.1) -> tuple[list[int], list[float], list[float], list[int]]:
    """Three fill cycles (0.05 -> ~0.9 over two days each) read with Gaussian noise of ``mae``."""
    rng = np.random.default_rng(seed)
    true: list[float] = []
    cuts: list[int] = []
    for c in range(3):
        if c:
            cuts.append(len(true))
        true += list(np.linspace(0.05, 0.9, 288))
    ts = times(len(true))
    sd = mae * math.sqrt(math.pi / 2)
    obs = [float(v) for v in np.clip(np.array(true) + rng.normal(0, sd, len(true)), 0, 1)]
    return ts, obs, true, [ts[i] for i in cuts]


def test_smoothed_fill_only_rises_between_collections() -> None:
    """Over noisy readings the smoothed fill never falls except at the collections it reports."""
    ts, obs, _true, cuts = noisy_cycles()
    shown, found, _ = smooth_series(ts, obs, P)
    assert all(v is not None for v in shown)
    falls = [ts[i] for i in range(1, len(shown)) if shown[i] < shown[i - 1]]  # type: ignore[operator]
    assert len(found) == 2
    assert len(falls) == 2
    for cut, fall, true_cut in zip(found, falls, cuts, strict=True):
        assert abs(cut - true_cut) <= STEP  # reported at the emptying
        assert 0 <= fall - cut <= 9 * STEP  # and shown once confirmed, a few readings later


def test_smoothing_removes_most_of_the_camera_noise() -> None:
    """Against the true fill the smoothed value errs far less than the raw reading (MAE 0.10 noise)."""
    ts, obs, true, _ = noisy_cycles()
    shown, _, _ = smooth_series(ts, obs, P)
    raw = np.mean(np.abs(np.array(obs) - true))
    smooth = np.mean(np.abs(np.array(shown, dtype=float) - true))
    assert smooth < raw / 2


def test_a_single_wild_reading_does_not_move_it() -> None:
    """One frame reading 1.0 in a bin at 0.4 is held back; the next normal reading drops it."""
    ts = times(30)
    fills = [0.4] * 20 + [1.0] + [0.4] * 9
    shown, found, _ = smooth_series(ts, fills, P)
    assert found == []
    assert max(v for v in shown if v is not None) < 0.45


def test_a_spike_right_before_a_real_collection() -> None:
    """A wild 0.99 just before the bin is emptied is neither shown nor taken for the level emptied from."""
    ts = times(40)
    fills = [0.6] * 20 + [0.99] + [0.03] * 19
    shown, found, _ = smooth_series(ts, fills, P)
    assert found == [ts[21]]
    assert max(v for v in shown[:21] if v is not None) < 0.65
    assert shown[-1] is not None and shown[-1] < 0.1


def test_a_sustained_rise_is_followed() -> None:
    """Two readings in a row that agree on a higher level are a jump (a big bag), not an outlier."""
    ts = times(30)
    fills = [0.3] * 15 + [0.7] * 15
    shown, found, _ = smooth_series(ts, fills, P)
    assert found == []
    assert shown[16] is not None and abs(shown[16] - 0.7) < 0.02


def test_a_full_bin_reaches_full() -> None:
    """Readings stuck at the camera's end of scale (1.0) bring the smoothed fill to overflow_fill."""
    ts = times(40)
    rng = np.random.default_rng(0)
    fills = [float(v) for v in np.clip(1.0 + rng.normal(0, 0.06, 40), 0, 1)]
    shown, _, _ = smooth_series(ts, [0.9] * 10 + fills[10:], P)
    assert shown[-1] is not None and shown[-1] >= 0.98


def test_an_older_reading_is_left_unsmoothed() -> None:
    """A reading not newer than the state (a backlog after live ones, a redelivery) changes nothing."""
    first = step(None, T0 + STEP, 0.5, P)
    assert first is not None
    assert step(first.state, T0, 0.9, P) is None
    assert step(first.state, T0 + STEP, 0.9, P) is None


def test_state_round_trips_through_json() -> None:
    """The state stored on the device row gives the same next step as the one in memory."""
    ts, obs, _, _ = noisy_cycles()
    _, _, state = smooth_series(ts[:100], obs[:100], P)
    assert state is not None
    again = SmoothState.from_json(state.to_json())
    a, b = step(state, ts[100], obs[100], P), step(again, ts[100], obs[100], P)
    assert a is not None and b is not None and a.shown == b.shown and a.state == b.state


@pytest.mark.parametrize("bad", [{"min_drop": 0.0}, {"confirm": 1}, {"noise0": 0.5}])
def test_bad_params_are_refused(bad: dict[str, float]) -> None:
    """Settings that cannot work raise at construction, naming the field."""
    with pytest.raises(ValueError, match=next(iter(bad)).split("0")[0]):
        SmoothParams(**bad)  # type: ignore[arg-type]
