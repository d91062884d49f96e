"""The ``fixed`` policy replayed on the server's measured history, routed on its own fleet: km per day.

Each bin with a measured filling rate is lifted every ``fixed_interval_days`` days (:mod:`.savings`; the
twin's ``fixed`` policy, the hauler's practice), its schedule starting as if it had been lifted when its
first reading of the period would have been zero. On every service day the bins due are routed
by :func:`binsight.server.routing.plan` on ``[fleet]`` (depots, trucks, disposal sites and distances, as
the server's own plans), so the km are what the server's planner would have driven for that schedule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from binsight.errors import DataError
from binsight.server import routing
from binsight.server.config import WEEKDAYS, ServerConfig
from binsight.server.planning.day_problem import PlanningError, fleet_problem, fleet_trucks

__all__ = ["REPLAY_TIME_LIMIT_S", "ReplayBin", "fixed_km_by_day"]

logger = logging.getLogger(__name__)

#: Planner seconds per replayed day: a report must answer within a request (PyVRP stops earlier
#: when its search stalls; a fixed day's few dozen bins need well under this).
REPLAY_TIME_LIMIT_S = 0.5
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class ReplayBin:
    """One bin as the replay sees it: where it is, how big, and its measured filling."""

    id: str
    lat: float
    lon: float
    capacity_l: float
    service_min: float
    rate: float  # fraction of capacity per day, measured between collections
    interval_days: int  # the fixed schedule's k
    first_ts: int  # first reading of the period, epoch ms
    last_ts: int  # last reading of the period
    first_fill: float  # the first reading's fill


def fixed_km_by_day(
    cfg: ServerConfig,
    bins: list[ReplayBin],
    start: date,
    end: date,
    time_limit_s: float = REPLAY_TIME_LIMIT_S,
) -> dict[str, float] | None:
    """Km the ``fixed`` schedule needs on each service day in ``[start, end)`` (None: no fleet configured).

    A bin takes part on the days between its first and last reading; it is due on a service day when
    its interval has passed by the first shift's start (half a day early counts, as in the twin), and
    is then lifted at that start. Days with nothing due are not listed; a day the planner cannot solve
    is logged and left out.
    """
    try:
        trucks = fleet_trucks(cfg, None)
    except PlanningError:
        return None
    tz = ZoneInfo(cfg.forecast.timezone)
    h, m = (int(p) for p in min(t.shift[0] for t in trucks).split(":"))
    last_lift = np.asarray(
        [b.first_ts - b.first_fill / max(b.rate, 1e-6) * _DAY_MS for b in bins], dtype=np.float64
    )
    out: dict[str, float] = {}
    day = start
    while day < end:
        if WEEKDAYS[day.weekday()] in cfg.fleet.service_days:
            at = int(datetime.combine(day, time(h, m), tz).timestamp() * 1000)
            entries: list[dict[str, Any]] = []
            for k, b in enumerate(bins):
                elapsed = (at - last_lift[k]) / _DAY_MS
                if b.first_ts - _DAY_MS <= at <= b.last_ts + _DAY_MS and elapsed + 0.5 >= b.interval_days:
                    fill = min(1.0, b.rate * elapsed)
                    entries.append(_entry(b, fill))
                    last_lift[k] = at
            if entries:
                problem = {**fleet_problem(cfg, trucks, day.isoformat()), "bins": entries}
                try:
                    result = routing.plan(problem, time_limit_s)
                except DataError as exc:
                    logger.warning("fixed replay: %s not routed: %s", day, exc)
                else:
                    out[day.isoformat()] = round(sum(float(r["distance_km"]) for r in result["routes"]), 2)
        day += timedelta(days=1)
    return out


def _entry(b: ReplayBin, fill: float) -> dict[str, Any]:
    return {
        "id": b.id,
        "lat": b.lat,
        "lon": b.lon,
        "volume_l": round(b.capacity_l * fill, 1),
        "service_min": b.service_min,
        "fill": round(fill, 4),
        "mandatory": True,
    }
