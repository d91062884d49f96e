"""The route problem: service days, mandatory bins from forecasts, and the contract's shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from server_helpers import item, reading
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.config import ServerConfig
from binsight.server.forecast.cache import ForecastCache
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.planning.day_problem import PlanningError, PlanRequest, build_problem, service_day

HOUR = 3_600_000


def _ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp() * 1000)


def test_service_day(make_config: Callable[..., ServerConfig]) -> None:
    """Today before the first shift; otherwise the next configured weekday."""
    cfg = make_config(fleet={"service_days": ["mon", "wed"]})
    assert service_day(cfg, _ms(2026, 11, 30, 5)) == date(2026, 11, 30)  # a Monday, before 06:00
    assert service_day(cfg, _ms(2026, 11, 30, 7)) == date(2026, 12, 2)  # Monday after the start
    assert service_day(cfg, 0, after=date(2026, 12, 2)) == date(2026, 12, 7)


def test_forecast_makes_bins_mandatory(make_config: Callable[..., ServerConfig], tmp_path: object) -> None:
    """A bin forecast to pass the threshold before the next service day is mandatory, though not full yet."""
    cfg = make_config(fleet={"service_days": ["mon", "thu"]})
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    engine = make_engine(cfg.database)
    upgrade(engine)
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    now = _ms(2026, 11, 30, 4)  # Monday 04:00; plan for Monday, next service Thursday 06:00
    items = []
    for h in range(48):
        t = now - (48 - h) * HOUR
        items.append(item("reading", "rising", reading("rising", h, 0.1 + 0.005 * h, ts=t)))  # 0.12/day
        items.append(item("reading", "steady", reading("steady", h, 0.4, ts=t)))
    with sessions() as s, s.begin():
        import_bins(s, [BinRow("rising", 52.0, 4.0, 1000), BinRow("steady", 52.0, 4.1, 1000)])
        write_batch(s, items, BinRegistry(), False, now)
    with sessions() as s:
        problem, excluded = build_problem(
            s, cfg, PlanRequest(threshold=0.6), ForecastCache(cfg.forecast), now
        )
    bins = {b["id"]: b for b in problem["bins"]}
    assert problem["name"] == "2026-11-30"
    assert bins["rising"]["mandatory"] and bins["rising"]["fill"] < 0.6  # ~0.38 now, 0.6 by Wednesday
    assert not bins["steady"]["mandatory"]
    assert problem["trucks"][0] == {
        "id": "truck-1",
        "depot": "depot",
        "capacity_l": 12000.0,
        "shift": ["06:00", "14:00"],
    }
    assert problem["depots"] == [{"id": "depot", "lat": 52.37, "lon": 4.89}]
    assert excluded == []
    with sessions() as s, pytest.raises(PlanningError, match="no trucks"):
        build_problem(
            s,
            make_config(fleet={"trucks": [], "depots": []}),
            PlanRequest(),
            ForecastCache(cfg.forecast),
            now,
        )
    engine.dispose()
