"""The twin's world and cameras: drawn from the seed alone, with the spread the issue asks for."""

from __future__ import annotations

import math

import numpy as np

from binsight.server.twin.sensing import SensingConfig, build_cameras
from binsight.server.twin.world import SIZES_L, WorldConfig, build_world


def test_same_seed_same_world() -> None:
    """One seed gives the same bins, rates and hourly inflow; another seed a different city."""
    a, b = (
        build_world(WorldConfig(bins=30, weeks=1, seed=3)),
        build_world(WorldConfig(bins=30, weeks=1, seed=3)),
    )
    assert np.array_equal(a.inflow, b.inflow) and np.array_equal(a.lat, b.lat)
    c = build_world(WorldConfig(bins=30, weeks=1, seed=4))
    assert not np.allclose(a.inflow, c.inflow)


def test_rates_sizes_and_events() -> None:
    """Rates spread over several-fold, several bin sizes, and the market day raises nearby bins."""
    w = build_world(WorldConfig(bins=200, weeks=4, seed=0))
    assert w.mean_rate.max() / w.mean_rate.min() > 5
    assert len(set(w.capacity_l.tolist())) == len(SIZES_L)
    assert w.inflow.shape == (200, 24 * w.days)
    d = (w.market_day - w.start).days
    daily = w.inflow[:, 24 * d : 24 * (d + 1)].sum(axis=1)
    usual = w.inflow[:, 24 * (d - 7) : 24 * (d - 6)].sum(axis=1)
    near = np.hypot(w.lat - w.market[0], (w.lon - w.market[1]) * math.cos(math.radians(w.market[0]))) < 0.005
    assert (daily[near] / usual[near]).mean() > 2


def test_inflow_between_is_pro_rata() -> None:
    """Fractions of hours count pro rata."""
    w = build_world(WorldConfig(bins=5, weeks=1, seed=0))
    whole = w.inflow[:, 10] + w.inflow[:, 11]
    assert np.allclose(w.inflow_between(10.0, 12.0), whole)
    assert np.allclose(w.inflow_between(10.5, 11.0), 0.5 * w.inflow[:, 10])


def test_camera_error_matches_the_mae() -> None:
    """The reading error has the MAE asked for; outages and unusable frames leave gaps."""
    cams = build_cameras(SensingConfig(mae=0.1, unusable=0.05, outages_per_week=1.0), 50, 24 * 28, seed=0)
    assert abs(float(np.abs(cams.error).mean()) - 0.1) < 0.005
    assert 0.05 < 1 - cams.usable.mean() < 0.3
    assert (~cams.online).any()
    read = cams.read(np.full(50, 1.4), 5)
    assert np.nanmax(read) <= 1.0  # a camera sees at most a full bin
