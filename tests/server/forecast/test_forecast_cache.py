"""The forecast cache rations band-calibration replays across the fleet."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from server_helpers import item, reading
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.config import ServerConfig
from binsight.server.db.models import Device
from binsight.server.forecast.backtest import simulate_bins
from binsight.server.forecast.cache import MAX_NEW_REPLAYS, ForecastCache, ReplayBudget
from binsight.server.ingest.store import BinRegistry, write_batch


def test_budget_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    budget = ReplayBudget(rate=2.0, burst=5, clock=lambda: now[0])
    assert budget.take(8) == 5 and budget.take(8) == 0
    now[0] = 1.0
    assert budget.take(8) == 2
    budget.give_back(1)
    assert budget.take(8) == 1
    now[0] = 100.0
    assert budget.take(3) == 3 and budget.take(8) == 2  # never more than the burst


def test_replays_are_rationed_across_the_fleet(make_config: Callable[..., ServerConfig]) -> None:
    """A refresh of every bin computes at most the fleet's burst of replays, and more only as the
    budget refills; every bin still gets a forecast meanwhile (the model's band)."""
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    cfg = make_config()
    engine = make_engine(cfg.database)
    upgrade(engine)
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    sims = simulate_bins(4, 40, interval_min=60, seed=3)
    now = int(sims[0].ts[-1]) + 1
    items = []
    for k, sim in enumerate(sims):
        for i, (t, f) in enumerate(zip(sim.ts, sim.observed, strict=True)):
            if np.isfinite(f):
                items.append(item("reading", f"b{k}", reading(f"b{k}", i, float(f), ts=int(t))))
    with sessions() as s, s.begin():
        import_bins(s, [BinRow(f"b{k}", 52.0, 4.0 + k / 100, 1000) for k in range(len(sims))])
        write_batch(s, items, BinRegistry(), False, now)

    clock = [0.0]
    cache = ForecastCache(cfg.forecast, ReplayBudget(rate=1.0, burst=10, clock=lambda: clock[0]))

    def refresh(at: int) -> list[object]:
        with sessions() as s:
            return [cache.get(s, d, at) for d in s.scalars(select(Device).order_by(Device.bin_id))]

    def replays() -> int:
        return sum(len(m) for m in cache._replays.values())

    forecasts = refresh(now)
    assert len(forecasts) == 4 and all(f is not None for f in forecasts)
    assert replays() == 10  # the burst, though 4 bins x MAX_NEW_REPLAYS were wanted
    assert 4 * MAX_NEW_REPLAYS > 10
    refresh(now + 2 * 3_600_000)  # past the cache's maximum age, same wall clock: nothing to spend
    assert replays() == 10
    clock[0] = 6.0
    refresh(now + 4 * 3_600_000)
    assert replays() == 16
    engine.dispose()
