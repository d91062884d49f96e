"""The route problem: service days, mandatory bins from forecasts, and the contract's shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from server_helpers import item, reading
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.config import ServerConfig
from binsight.server.forecast.cache import ForecastCache
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.planning.day_problem import (
    Candidate,
    Horizon,
    PlanningError,
    PlanRequest,
    build_problem,
    choose_bins,
    day_horizon,
    service_day,
)

HOUR = 3_600_000
WEEK = ["mon", "tue", "wed", "thu", "fri", "sat"]
UTC_ZONE = ZoneInfo("UTC")


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
    cfg = make_config(fleet={"service_days": ["mon", "thu"], "skip_quiet_days": False})
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
    assert "steady" not in bins  # 0.4 and not rising: no visit needed, and skipped with the reason
    assert problem["trucks"][0] == {
        "id": "truck-1",
        "depot": "depot",
        "capacity_l": 12000.0,
        "shift": ["06:00", "14:00"],
    }
    assert problem["depots"] == [{"id": "depot", "lat": 52.37, "lon": 4.89}]
    assert excluded == [{"id": "steady", "reason": "not due yet (not full soon): a later visit serves it"}]
    with sessions() as s, pytest.raises(PlanningError, match="no trucks"):
        build_problem(
            s,
            make_config(fleet={"trucks": [], "depots": []}),
            PlanRequest(),
            ForecastCache(cfg.forecast),
            now,
        )
    engine.dispose()


def _cand(bin_id: str, lon: float, full_ts: int | None, overflow_ts: int | None = None) -> Candidate:
    entry = {"id": bin_id, "lat": 52.0, "lon": lon, "fill": 0.5, "mandatory": False}
    return Candidate(entry, full_ts, overflow_ts)


def _horizon(cfg: ServerConfig) -> Horizon:
    # Planned Monday 04:00 for Monday, service Monday to Saturday.
    return day_horizon(cfg, list(cfg.fleet.trucks), _ms(2026, 11, 30, 4), date(2026, 11, 30), 0.8)


def test_optional_bins_only_when_due_soon_and_near(make_config: Callable[..., ServerConfig]) -> None:
    """Optional: due within the look-ahead and within optional_near_km of a mandatory stop; else skipped."""
    cfg = make_config(
        fleet={
            "optional_near_km": 0.5,
            "optional_lookahead_days": 2,
            "skip_quiet_days": False,
            "service_days": WEEK,
        }
    )
    h = _horizon(cfg)
    assert (h.deadline, h.lookahead) == (_ms(2026, 12, 1, 6), _ms(2026, 12, 3, 6))
    cands = [
        _cand("urgent", 4.0, _ms(2026, 11, 30, 20)),
        _cand("neighbour", 4.003, _ms(2026, 12, 2, 9)),  # ~200 m away, due Wednesday
        _cand("slow-neighbour", 4.003, _ms(2026, 12, 9)),  # ~200 m away, due next week
        _cand("far", 4.05, _ms(2026, 12, 2, 9)),  # ~3.4 km away, due Wednesday
    ]
    bins, skipped = choose_bins(cands, fleet=cfg.fleet, horizon=h, tz=UTC_ZONE)
    assert [(b["id"], b["mandatory"]) for b in bins] == [("urgent", True), ("neighbour", False)]
    reasons = {s["id"]: s["reason"] for s in skipped}
    assert reasons["slow-neighbour"] == "not due yet (full around 2026-12-09): a later visit serves it"
    assert reasons["far"] == "no mandatory stop within 0.5 km: not worth a trip today"
    # Nothing mandatory: nothing offered, so no truck goes out.
    bins, skipped = choose_bins(cands[1:], fleet=cfg.fleet, horizon=h, tz=UTC_ZONE)
    assert bins == [] and len(skipped) == 3
    # Look-ahead 0 and no distance limit: every candidate goes in (the earlier policy).
    wide = make_config(
        fleet={"optional_near_km": None, "optional_lookahead_days": 0, "skip_quiet_days": False}
    )
    bins, skipped = choose_bins(cands, fleet=wide.fleet, horizon=_horizon(wide), tz=UTC_ZONE)
    assert len(bins) == 4 and skipped == []


def test_quiet_days_send_no_truck(make_config: Callable[..., ServerConfig]) -> None:
    """skip_quiet_days: no truck unless a bin would overflow more than quiet_overflow_h before the next
    day's shifts; if one goes, it takes the bins full before the day after next (the next may be quiet)."""
    cfg = make_config(fleet={"service_days": WEEK})
    h = _horizon(cfg)
    assert (h.deadline, h.quiet_by, h.due_by) == (
        _ms(2026, 12, 1, 6),
        _ms(2026, 11, 30, 18),  # 12 h before Tuesday's shifts: a spill overnight waits for the truck
        _ms(2026, 12, 2, 6),
    )
    full_tonight = _cand("full-tonight", 4.0, _ms(2026, 11, 30, 20), overflow_ts=_ms(2026, 12, 2, 12))
    overnight = _cand("spills-at-3", 4.05, _ms(2026, 11, 30, 16), overflow_ts=_ms(2026, 12, 1, 3))
    bins, skipped = choose_bins([full_tonight, overnight], fleet=cfg.fleet, horizon=h, tz=UTC_ZONE)
    assert bins == []  # full (80%) tonight; one spills at 03:00, three hours before Tuesday's truck
    assert skipped[0] == {
        "id": "full-tonight",
        "reason": "nothing overflows before 2026-11-30 18:00 (12 h before 2026-12-01's shifts): "
        "no truck needed today",
    }
    spills = _cand("spills-at-16", 4.1, _ms(2026, 11, 30, 12), overflow_ts=_ms(2026, 11, 30, 16))
    bins, _ = choose_bins([full_tonight, spills], fleet=cfg.fleet, horizon=h, tz=UTC_ZONE)
    assert {b["id"]: b["mandatory"] for b in bins} == {"full-tonight": True, "spills-at-16": True}
    # No spill allowed at all: the 03:00 one sends a truck today.
    strict = make_config(fleet={"service_days": WEEK, "quiet_overflow_h": 0})
    bins, _ = choose_bins([overnight], fleet=strict.fleet, horizon=_horizon(strict), tz=UTC_ZONE)
    assert [b["id"] for b in bins] == ["spills-at-3"]


def test_consolidate_days_sets_the_mandatory_horizon(make_config: Callable[..., ServerConfig]) -> None:
    """consolidate_days: a driven day takes what is full before that many service days later start."""
    horizons = {
        n: _horizon(make_config(fleet={"service_days": WEEK, "consolidate_days": n})).due_by for n in (1, 3)
    }
    assert horizons == {1: _ms(2026, 12, 1, 6), 3: _ms(2026, 12, 3, 6)}
    # Saturday's horizon skips Sunday, which is no service day.
    cfg = make_config(fleet={"service_days": WEEK, "consolidate_days": 2})
    sat = day_horizon(cfg, list(cfg.fleet.trucks), _ms(2026, 12, 5, 4), date(2026, 12, 5), 0.8)
    assert (sat.deadline, sat.due_by) == (_ms(2026, 12, 7, 6), _ms(2026, 12, 8, 6))
