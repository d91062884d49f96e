"""Build the route problem JSON (docs/contracts.md) for one service day: the day's policy.

A bin is *mandatory* when its forecast says it reaches the threshold ("full") before the next service
day's first shift starts (or it is already there): skipping it today means an overflow before the next
plausible visit. A bin that is not mandatory is worth lifting today only if that saves a visit of its
own later, and only where a truck goes anyway:

* it is *due* within ``fleet.optional_lookahead_days`` service days after the next one (its forecast
  reaches the threshold before then: lifted today, it needs no trip of its own in those days), and
* it lies within ``fleet.optional_near_km`` of a mandatory bin (lifting it costs a short detour, not a
  trip to a neighbourhood nobody needs to visit today).

Such bins are optional (the planner takes them when their prize, which grows with fill, is worth the
detour). Every other bin is left out with the reason, so a day with nothing urgent sends no truck out.
Fill and volume are projected to the end of today's shifts, so a truck's capacity is checked against
what the bin will hold when it could be visited last.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.errors import BinsightError
from binsight.server.config import WEEKDAYS, DistanceConfig, FleetConfig, ServerConfig, TruckConfig
from binsight.server.db.models import Bin, Device
from binsight.server.forecast.cache import ForecastCache

__all__ = [
    "OVERFLOW_FILL",
    "Candidate",
    "Horizon",
    "PlanRequest",
    "PlanningError",
    "build_problem",
    "choose_bins",
    "day_horizon",
    "fleet_problem",
    "fleet_trucks",
    "service_day",
]

_EARTH_M = 6_371_000.0
#: A bin overflows past this fill (the threshold is "full", with a margin below it).
OVERFLOW_FILL = 1.0


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


def fleet_trucks(cfg: ServerConfig, choice: int | list[str] | None) -> list[TruckConfig]:
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
class Horizon:
    """The times that decide which bins a plan includes, epoch ms."""

    now_ms: int
    threshold: float
    #: When today's last shift ends: fill and volume are projected to then.
    day_end: int
    #: When the next service day's first shift starts: a bin full before then is mandatory.
    deadline: int
    #: With ``fleet.skip_quiet_days``, a day is driven only if some bin is forecast to overflow before
    #: this: ``fleet.quiet_overflow_h`` before ``deadline`` (a bin that spills only overnight waits).
    quiet_by: int
    #: When the next service day's last shift ends.
    next_end: int
    #: On a day that is driven with ``fleet.skip_quiet_days``, a bin full before then is mandatory: when
    #: the service day ``fleet.consolidate_days`` after this one starts (the days between may be quiet).
    due_by: int
    #: When the service day ``optional_lookahead_days`` after the mandatory horizon starts: a bin full
    #: before then may be taken early (None: any bin may).
    lookahead: int | None
    day: date
    next_day: date


@dataclass
class Candidate:
    """One bin as the day's policy sees it: the problem entry, and when it is forecast to be full."""

    entry: dict[str, Any]
    #: When it reaches the threshold, epoch ms (None: not within the forecast's reach).
    full_ts: int | None
    #: When it reaches 100% (overflows), epoch ms (None: not within the forecast's reach).
    overflow_ts: int | None


def day_horizon(
    cfg: ServerConfig, trucks: list[TruckConfig], now_ms: int, day: date, threshold: float
) -> Horizon:
    """The times that decide which bins the plan for ``day`` includes (see :class:`Horizon`)."""
    tz = ZoneInfo(cfg.forecast.timezone)
    first_start = min(t.shift[0] for t in trucks)
    last_end = max(t.shift[1] for t in trucks)
    next_day = service_day(cfg, now_ms, after=day)
    far = next_day
    if cfg.fleet.skip_quiet_days:
        for _ in range(cfg.fleet.consolidate_days - 1):
            far = service_day(cfg, now_ms, after=far)
    due_by = _at(far, first_start, tz)
    for _ in range(cfg.fleet.optional_lookahead_days):
        far = service_day(cfg, now_ms, after=far)
    return Horizon(
        now_ms=now_ms,
        threshold=threshold,
        day_end=_at(day, last_end, tz),
        deadline=_at(next_day, first_start, tz),
        quiet_by=_at(next_day, first_start, tz) - round(cfg.fleet.quiet_overflow_h * 3_600_000),
        next_end=_at(next_day, last_end, tz),
        due_by=due_by,
        lookahead=_at(far, first_start, tz) if cfg.fleet.optional_lookahead_days else None,
        day=day,
        next_day=next_day,
    )


def build_problem(
    session: Session, cfg: ServerConfig, req: PlanRequest, forecasts: ForecastCache, now_ms: int
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The problem dict for ``binsight.server.routing.plan`` and the bins left out with the reason."""
    trucks = fleet_trucks(cfg, req.trucks)
    tz = ZoneInfo(cfg.forecast.timezone)
    day = req.date or service_day(cfg, now_ms)
    horizon = day_horizon(cfg, trucks, now_ms, day, req.threshold or cfg.forecast.threshold)
    fleet = cfg.fleet

    rows = session.execute(
        select(Bin, Device).outerjoin(Device, Device.bin_id == Bin.id).order_by(Bin.id)
    ).all()
    candidates: list[Candidate] = []
    excluded: list[dict[str, str]] = []
    for b, dev in rows:
        entry = _bin_entry(session, b, dev, fleet=fleet, forecasts=forecasts, horizon=horizon)
        if isinstance(entry, str):
            excluded.append({"id": b.id, "reason": entry})
        else:
            candidates.append(entry)
    bins, skipped = choose_bins(candidates, fleet=fleet, horizon=horizon, tz=tz)
    excluded.extend(skipped)
    return {**fleet_problem(cfg, trucks, day.isoformat()), "bins": bins}, excluded


def fleet_problem(cfg: ServerConfig, trucks: list[TruckConfig], name: str) -> dict[str, Any]:
    """A route problem with ``[fleet]``'s depots (those of ``trucks``), sites, trucks and distances, no bins.

    The savings report's replay of the ``fixed`` policy routes its bins on this very fleet.
    """
    fleet = cfg.fleet
    used_depots = {t.depot for t in trucks}
    return {
        "name": name,
        "distance": _distance(fleet.distance),
        "depots": [d.model_dump() for d in fleet.depots if d.id in used_depots],
        "disposal_sites": [s.model_dump() for s in fleet.disposal_sites],
        "trucks": [_truck(t) for t in trucks],
        "bins": [],
    }


def _bin_entry(
    session: Session,
    b: Bin,
    dev: Device | None,
    *,
    fleet: FleetConfig,
    forecasts: ForecastCache,
    horizon: Horizon,
) -> Candidate | str:
    """Bin ``b`` as a candidate for the day, or the reason it is left out of the plan."""
    if b.lat is None or b.lon is None:
        return "no position (import the bin with lat/lon)"
    if not b.capacity_l:
        return "no capacity_l"
    if dev is None or dev.shown_fill is None:
        return "no usable reading yet"
    threshold, now_ms = horizon.threshold, horizon.now_ms
    fc = forecasts.get(session, dev, now_ms)
    if fc is not None:
        fill = fc.fill_at(max(horizon.day_end, now_ms))
        full_ts, overflow_ts = fc.reaches(threshold), fc.reaches(OVERFLOW_FILL)
    else:
        # Without a forecast nobody can say how long a full bin holds: full counts as overflowing.
        # The smoothed fill: one wild frame must not put a bin on the route as overflowing.
        fill = float(dev.shown_fill)
        full_ts = overflow_ts = now_ms if fill >= threshold else None
    if fill >= threshold:
        full_ts = min(full_ts or now_ms, now_ms)
    return Candidate(_problem_bin(b, fill, False, fleet), full_ts, overflow_ts)


def _problem_bin(b: Bin, fill: float, mandatory: bool, fleet: FleetConfig) -> dict[str, Any]:
    """Bin ``b`` as the route problem lists it, holding ``fill`` of its capacity."""
    assert b.lat is not None and b.lon is not None and b.capacity_l
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


def choose_bins(
    candidates: list[Candidate], *, fleet: FleetConfig, horizon: Horizon, tz: ZoneInfo
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The day's policy: the problem bins from the candidates, and the ones skipped with the reason.

    * With ``fleet.skip_quiet_days``, a day is driven only if some bin would overflow more than
      ``fleet.quiet_overflow_h`` before the next service day's first shift starts (waiting would spill it
      for longer than a night); on a driven day a bin is mandatory when it is full before the service day
      ``fleet.consolidate_days`` later starts (2: the one *after* the next), since the days between may
      be quiet. Without it, a bin is mandatory when full before the next service day starts.
    * A bin that is not mandatory goes in as optional only if its fill reaches ``optional_min_fill``,
      it is due before ``horizon.lookahead`` (it would need a visit of its own soon) and it lies within
      ``fleet.optional_near_km`` of a mandatory bin (a truck passes there today).

    The twin's oracle applies this very rule to the true levels.
    """
    if fleet.skip_quiet_days:
        if not any(c.overflow_ts is not None and c.overflow_ts < horizon.quiet_by for c in candidates):
            quiet = (
                f"nothing overflows before {_time_of(horizon.quiet_by, tz)} "
                f"({fleet.quiet_overflow_h:g} h before {horizon.next_day.isoformat()}'s shifts): "
                "no truck needed today"
            )
            return [], [{"id": c.entry["id"], "reason": quiet} for c in candidates]
        due_by = horizon.due_by
    else:
        due_by = horizon.deadline
    mandatory: list[dict[str, Any]] = []
    others: list[Candidate] = []
    for c in candidates:
        if c.full_ts is not None and c.full_ts < due_by:
            mandatory.append({**c.entry, "mandatory": True})
        else:
            others.append(c)
    near = _near(others, mandatory, fleet.optional_near_km)
    bins, skipped = list(mandatory), []
    for c, is_near in zip(others, near, strict=True):
        why = _not_optional(c, is_near, fleet=fleet, horizon=horizon, tz=tz)
        if why is None:
            bins.append(c.entry)
        else:
            skipped.append({"id": c.entry["id"], "reason": why})
    return bins, skipped


def _not_optional(
    c: Candidate, is_near: bool, *, fleet: FleetConfig, horizon: Horizon, tz: ZoneInfo
) -> str | None:
    """Why a bin that is not mandatory is not worth lifting today (None: it is, as an optional bin)."""
    if c.entry["fill"] < fleet.optional_min_fill:
        return f"predicted fill {c.entry['fill']:.2f} below optional_min_fill"
    if horizon.lookahead is not None and (c.full_ts is None or c.full_ts >= horizon.lookahead):
        when = f"full around {_date_of(c.full_ts, tz)}" if c.full_ts is not None else "not full soon"
        return f"not due yet ({when}): a later visit serves it"
    if not is_near:
        return f"no mandatory stop within {fleet.optional_near_km:g} km: not worth a trip today"
    return None


def _time_of(ts: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts / 1000, tz).strftime("%Y-%m-%d %H:%M")


def _date_of(ts: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts / 1000, tz).date().isoformat()


def _near(others: list[Candidate], mandatory: list[dict[str, Any]], km: float | None) -> list[bool]:
    """Per candidate in ``others``: within ``km`` of some mandatory bin (equirectangular; None: always)."""
    if km is None:
        return [True] * len(others)
    if not others or not mandatory:
        return [False] * len(others)
    lat = np.radians([c.entry["lat"] for c in others])
    lon = np.radians([c.entry["lon"] for c in others])
    mlat = np.radians([m["lat"] for m in mandatory])
    mlon = np.radians([m["lon"] for m in mandatory])
    out: list[bool] = []
    for i in range(0, len(others), 512):  # 512 x mandatory at a time: memory stays small at 5,000 bins
        la, lo = lat[i : i + 512, None], lon[i : i + 512, None]
        x = (lo - mlon[None, :]) * np.cos((la + mlat[None, :]) / 2)
        d = _EARTH_M * np.hypot(x, la - mlat[None, :])
        out.extend(bool(v) for v in (d.min(axis=1) <= km * 1000))
    return out


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
