"""Build the route problem JSON (docs/contracts.md) for one service day.

A bin is *mandatory* when its forecast says it reaches the threshold before the next service day's
first shift starts (or it is already there): skipping it today means an overflow. Other bins with
a predicted fill of at least ``optional_min_fill`` are optional, and the planner's drop penalty
grows with their fill. Fill and volume are projected to the end of today's shifts, so a truck's
capacity is checked against what the bin will hold when it could be visited last.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.errors import BinsightError
from binsight.server.config import WEEKDAYS, DistanceConfig, FleetConfig, ServerConfig, TruckConfig
from binsight.server.db.models import Bin, Device
from binsight.server.forecast.cache import ForecastCache

__all__ = ["PlanRequest", "PlanningError", "build_problem", "service_day"]


class PlanningError(BinsightError):
    """The plan cannot be built (no trucks configured, an unknown truck id, ...)."""


class PlanRequest(BaseModel):
    """``POST /api/plans`` body; every field optional."""

    model_config = ConfigDict(extra="forbid")
    date: dt.date | None = Field(default=None, description="service day (default: the next one)")
    time_limit_s: float | None = Field(default=None, gt=0, le=600)
    threshold: float | None = Field(default=None, gt=0, le=1)
    trucks: int | list[str] | None = Field(
        default=None, description="how many of the configured trucks, or which ones by id"
    )


def _at(day: date, hhmm: str, tz: ZoneInfo) -> int:
    h, m = (int(p) for p in hhmm.split(":"))
    return int(datetime.combine(day, time(h, m), tz).timestamp() * 1000)


def service_day(cfg: ServerConfig, now_ms: int, after: date | None = None) -> date:
    """The next service day: today if its first shift has not started, else the next one.

    With ``after``, the first service day strictly after that date.
    """
    tz = ZoneInfo(cfg.forecast.timezone)
    first_start = min((t.shift[0] for t in cfg.fleet.trucks), default="06:00")
    day = after + timedelta(days=1) if after else datetime.fromtimestamp(now_ms / 1000, tz).date()
    for _ in range(8):
        if WEEKDAYS[day.weekday()] in cfg.fleet.service_days and (
            after is not None or _at(day, first_start, tz) > now_ms
        ):
            return day
        day += timedelta(days=1)
    raise PlanningError("no service day within a week: check fleet.service_days")


def _trucks(cfg: ServerConfig, choice: int | list[str] | None) -> list[TruckConfig]:
    trucks = list(cfg.fleet.trucks)
    if not trucks or not cfg.fleet.depots:
        raise PlanningError(
            "no trucks or depots configured: add [[fleet.depots]] and [[fleet.trucks]] to server.toml"
        )
    if choice is None:
        return trucks
    if isinstance(choice, int):
        if not 1 <= choice <= len(trucks):
            raise PlanningError(f"trucks: {choice} is not between 1 and the {len(trucks)} configured")
        return trucks[:choice]
    by_id = {t.id: t for t in trucks}
    unknown = [t for t in choice if t not in by_id]
    if unknown:
        raise PlanningError(f"trucks: unknown truck id(s) {', '.join(unknown)}")
    return [by_id[t] for t in choice]


@dataclass(frozen=True)
class _Horizon:
    """The times that decide which bins a plan includes, epoch ms."""

    now_ms: int
    threshold: float
    #: When today's last shift ends: fill and volume are projected to then.
    day_end: int
    #: When the next service day's first shift starts: a bin full before then is mandatory.
    deadline: int


def build_problem(
    session: Session, cfg: ServerConfig, req: PlanRequest, forecasts: ForecastCache, now_ms: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The problem dict for ``binsight.server.routing.plan`` and the bins left out with the reason."""
    trucks = _trucks(cfg, req.trucks)
    tz = ZoneInfo(cfg.forecast.timezone)
    day = req.date or service_day(cfg, now_ms)
    next_day = service_day(cfg, now_ms, after=day)
    horizon = _Horizon(
        now_ms=now_ms,
        threshold=req.threshold or cfg.forecast.threshold,
        day_end=_at(day, max(t.shift[1] for t in trucks), tz),
        deadline=_at(next_day, min(t.shift[0] for t in trucks), tz),
    )
    fleet = cfg.fleet

    rows = session.execute(
        select(Bin, Device).outerjoin(Device, Device.bin_id == Bin.id).order_by(Bin.id)
    ).all()
    bins: list[dict[str, Any]] = []
    excluded: list[dict[str, str]] = []
    for b, dev in rows:
        entry = _bin_entry(session, b, dev, fleet=fleet, forecasts=forecasts, horizon=horizon)
        if isinstance(entry, str):
            excluded.append({"id": b.id, "reason": entry})
        else:
            bins.append(entry)
    used_depots = {t.depot for t in trucks}
    problem = {
        "name": day.isoformat(),
        "distance": _distance(fleet.distance),
        "depots": [d.model_dump() for d in fleet.depots if d.id in used_depots],
        "disposal_sites": [s.model_dump() for s in fleet.disposal_sites],
        "trucks": [_truck(t) for t in trucks],
        "bins": bins,
    }
    return problem, excluded


def _bin_entry(
    session: Session,
    b: Bin,
    dev: Device | None,
    *,
    fleet: FleetConfig,
    forecasts: ForecastCache,
    horizon: _Horizon,
) -> dict[str, Any] | str:
    """Bin ``b`` as a problem bin, or the reason it is left out of the plan."""
    if b.lat is None or b.lon is None:
        return "no position (import the bin with lat/lon)"
    if not b.capacity_l:
        return "no capacity_l"
    if dev is None or dev.fill is None:
        return "no usable reading yet"
    threshold, now_ms = horizon.threshold, horizon.now_ms
    fc = forecasts.get(session, dev, now_ms)
    if fc is not None:
        fill = fc.fill_at(max(horizon.day_end, now_ms))
        full_ts = fc.reaches(threshold)
    else:
        fill = float(dev.fill)
        full_ts = now_ms if fill >= threshold else None
    mandatory = fill >= threshold or (full_ts is not None and full_ts < horizon.deadline)
    if not mandatory and fill < fleet.optional_min_fill:
        return f"predicted fill {fill:.2f} below optional_min_fill"
    entry: dict[str, Any] = {
        "id": b.id,
        "lat": b.lat,
        "lon": b.lon,
        "volume_l": round(b.capacity_l * fill, 1),
        "service_min": b.service_min if b.service_min is not None else fleet.default_service_min,
        "fill": round(fill, 4),
        "mandatory": mandatory,
    }
    if b.window_start and b.window_end:
        entry["window"] = [b.window_start, b.window_end]
    return entry


def _distance(cfg: DistanceConfig) -> dict[str, Any]:
    """``[fleet.distance]`` as the problem's ``distance`` (``url`` and ``file`` only when set)."""
    distance: dict[str, Any] = {"method": cfg.method, "detour": cfg.detour, "speed_kmh": cfg.speed_kmh}
    if cfg.url:
        distance["url"] = cfg.url
    if cfg.file:
        distance["file"] = cfg.file
    return distance


def _truck(t: TruckConfig) -> dict[str, Any]:
    """One ``[[fleet.trucks]]`` as a problem truck (``break`` and ``max_duration_min`` only when set)."""
    td: dict[str, Any] = {"id": t.id, "depot": t.depot, "capacity_l": t.capacity_l, "shift": list(t.shift)}
    if t.break_ is not None:
        td["break"] = {"after_min": t.break_.after_min, "duration_min": t.break_.duration_min}
    if t.max_duration_min is not None:
        td["max_duration_min"] = t.max_duration_min
    return td
