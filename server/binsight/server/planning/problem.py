"""Build the route problem JSON (docs/contracts.md) for one service day.

A bin is *mandatory* when its forecast says it reaches the threshold before the next service day's
first shift starts (or it is already there): skipping it today means an overflow. Other bins with
a predicted fill of at least ``optional_min_fill`` are optional, and the planner's drop penalty
grows with their fill. Fill and volume are projected to the end of today's shifts, so a truck's
capacity is checked against what the bin will hold when it could be visited last.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.errors import BinsightError
from binsight.server.config import WEEKDAYS, ServerConfig, TruckConfig
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


def build_problem(
    session: Session, cfg: ServerConfig, req: PlanRequest, forecasts: ForecastCache, now_ms: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The problem dict for ``binsight.server.routing.plan`` and the bins left out with the reason."""
    trucks = _trucks(cfg, req.trucks)
    tz = ZoneInfo(cfg.forecast.timezone)
    threshold = req.threshold or cfg.forecast.threshold
    day = req.date or service_day(cfg, now_ms)
    next_day = service_day(cfg, now_ms, after=day)
    first_start = min(t.shift[0] for t in trucks)
    last_end = max(t.shift[1] for t in trucks)
    deadline = _at(next_day, first_start, tz)
    day_end = _at(day, last_end, tz)
    fleet = cfg.fleet

    rows = session.execute(
        select(Bin, Device).outerjoin(Device, Device.bin_id == Bin.id).order_by(Bin.id)
    ).all()
    bins: list[dict[str, Any]] = []
    excluded: list[dict[str, str]] = []
    for b, dev in rows:
        if b.lat is None or b.lon is None:
            excluded.append({"id": b.id, "reason": "no position (import the bin with lat/lon)"})
            continue
        if not b.capacity_l:
            excluded.append({"id": b.id, "reason": "no capacity_l"})
            continue
        if dev is None or dev.fill is None:
            excluded.append({"id": b.id, "reason": "no usable reading yet"})
            continue
        fc = forecasts.get(session, dev, now_ms)
        if fc is not None:
            fill = fc.fill_at(max(day_end, now_ms))
            full_ts = fc.reaches(threshold)
        else:
            fill = float(dev.fill)
            full_ts = now_ms if fill >= threshold else None
        mandatory = fill >= threshold or (full_ts is not None and full_ts < deadline)
        if not mandatory and fill < fleet.optional_min_fill:
            excluded.append({"id": b.id, "reason": f"predicted fill {fill:.2f} below optional_min_fill"})
            continue
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
        bins.append(entry)

    distance: dict[str, Any] = {
        "method": fleet.distance.method,
        "detour": fleet.distance.detour,
        "speed_kmh": fleet.distance.speed_kmh,
    }
    if fleet.distance.url:
        distance["url"] = fleet.distance.url
    if fleet.distance.file:
        distance["file"] = fleet.distance.file
    used_depots = {t.depot for t in trucks}
    truck_dicts = []
    for t in trucks:
        td: dict[str, Any] = {
            "id": t.id,
            "depot": t.depot,
            "capacity_l": t.capacity_l,
            "shift": list(t.shift),
        }
        if t.break_ is not None:
            td["break"] = {"after_min": t.break_.after_min, "duration_min": t.break_.duration_min}
        if t.max_duration_min is not None:
            td["max_duration_min"] = t.max_duration_min
        truck_dicts.append(td)
    problem = {
        "name": day.isoformat(),
        "distance": distance,
        "depots": [d.model_dump() for d in fleet.depots if d.id in used_depots],
        "disposal_sites": [s.model_dump() for s in fleet.disposal_sites],
        "trucks": truck_dicts,
        "bins": bins,
    }
    return problem, excluded
