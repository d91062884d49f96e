"""Collection policies: which bins go into a day's route problem, and how sure each one is.

Every policy hands a route problem (docs/contracts.md) to the server's route planner on the same fleet;
they differ only in which bins they put in it and how:

* ``fixed``: each bin every ``k`` days, ``k`` from its mean fill rate (lifted at about 80% on average):
  what a hauler without sensors does.
* ``weekly``: every bin once a week, on its sector's day.
* ``threshold``: every bin whose last usable reading is at or above the threshold (sensors, no forecast).
* ``binsight``: the server's own plan: readings ingested, forecasts, ``build_problem`` (mandatory bins
  from the forecast, optional ones as prizes).
* ``oracle``: the true levels and the true future: a bin is mandatory when it would overflow before the
  next service day's last hour, optional (as the server prices them) when it is worth a detour. The bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from binsight.server.config import ServerConfig
from binsight.server.planning.day_problem import OVERFLOW_FILL, Candidate, Horizon, choose_bins
from binsight.server.planning.savings import FIXED_TARGET, fixed_interval_days
from binsight.server.twin.city import CityState
from binsight.server.twin.sensing import POLICIES
from binsight.server.twin.server_side import ServerSide
from binsight.server.twin.world import World

__all__ = ["FIXED_TARGET", "POLICIES", "DayView", "Policy", "fixed_interval_days", "make_policy"]


@dataclass
class DayView:
    """What a policy may look at when a service day is planned (the oracle looks further)."""

    world: World
    state: CityState
    cfg: ServerConfig
    template: dict[str, Any]
    day: int  # days since the world's start
    plan_h: float  # hours since the start at planning time
    shift_end_h: float  # today's last shift end
    next_end_h: float  # the next service day's last shift end
    horizon: Horizon  # the server's times for this day (deadlines, look-ahead)
    now_ms: int

    def problem(self, bins: list[dict[str, Any]]) -> dict[str, Any]:
        return {**self.template, "name": self.world.day(self.day).isoformat(), "bins": bins}

    def entry(self, k: int, fill: float, mandatory: bool) -> dict[str, Any]:
        """Bin ``k`` as the route problem lists it, holding ``fill`` of its capacity."""
        w = self.world
        fill = min(1.0, max(0.0, fill))
        return {
            "id": w.ids[k],
            "lat": float(w.lat[k]),
            "lon": float(w.lon[k]),
            "volume_l": round(float(w.capacity_l[k]) * fill, 1),
            "service_min": float(w.service_min[k]),
            "fill": round(fill, 4),
            "mandatory": mandatory,
        }


class Policy(Protocol):
    name: str

    def problem(self, view: DayView) -> dict[str, Any]:
        """The route problem for the day ``view`` describes."""

    def observe(self, fills: NDArray[np.float64], sent: NDArray[np.bool_], ts_ms: int) -> None:
        """A capture round: what the cameras sent (NaN: unusable)."""

    def close(self) -> None: ...


def _expected_fill(view: DayView, k: int) -> float:
    """What a hauler without sensors expects a bin to hold: mean rate x days since its lift."""
    days = (view.shift_end_h - view.state.last_lift_h[k]) / 24.0
    return float(view.world.mean_rate[k] * days)


class _Blind:
    """Base of the policies without sensors (they ignore the readings)."""

    name = ""

    def observe(self, fills: NDArray[np.float64], sent: NDArray[np.bool_], ts_ms: int) -> None:
        return None

    def close(self) -> None:
        return None


class Fixed(_Blind):
    name = "fixed"

    def __init__(self, world: World) -> None:
        self.k = fixed_interval_days(world.mean_rate)

    def due(self, view: DayView) -> list[int]:
        """Bins whose interval has passed by today (half a day early counts: lifts are by day)."""
        elapsed = (view.plan_h - view.state.last_lift_h) / 24.0
        return np.nonzero(elapsed + 0.5 >= self.k)[0].tolist()

    def problem(self, view: DayView) -> dict[str, Any]:
        return view.problem([view.entry(k, _expected_fill(view, k), True) for k in self.due(view)])


class Weekly(_Blind):
    name = "weekly"

    def __init__(self, world: World, service_days: int) -> None:
        # Sectors by angle around the city centre, one per service day, so a day's bins lie together.
        angle = np.arctan2(world.lat - world.lat.mean(), world.lon - world.lon.mean())
        rank = np.argsort(np.argsort(angle))
        self.slot = (rank * service_days // world.n).astype(np.int64)
        self.service_days = service_days
        self._seen = 0

    def problem(self, view: DayView) -> dict[str, Any]:
        slot = self._seen % self.service_days
        self._seen += 1
        bins = np.nonzero(self.slot == slot)[0].tolist()
        return view.problem([view.entry(k, _expected_fill(view, k), True) for k in bins])


class Threshold(_Blind):
    name = "threshold"

    def problem(self, view: DayView) -> dict[str, Any]:
        last = view.state.last_read
        thr = view.cfg.forecast.threshold
        bins = np.nonzero(np.nan_to_num(last, nan=-1.0) >= thr)[0].tolist()
        return view.problem([view.entry(k, float(last[k]), True) for k in bins])


class Oracle(_Blind):
    name = "oracle"

    def problem(self, view: DayView) -> dict[str, Any]:
        """The server's rule (:func:`choose_bins`) on the true levels and the true future.

        Each bin is a candidate with the true hours it reaches the threshold and overflows.
        """
        w, level, cfg = view.world, view.state.level, view.cfg
        at_end = level + w.inflow_between(view.plan_h, view.shift_end_h)
        full_h = _true_crossing(w, level, view.plan_h, cfg.forecast.threshold)
        over_h = _true_crossing(w, level, view.plan_h, OVERFLOW_FILL)

        def ts(h: float) -> int | None:
            return None if np.isnan(h) else w.ts_ms(float(h))

        candidates = [
            Candidate(view.entry(k, float(at_end[k]), False), ts(full_h[k]), ts(over_h[k]))
            for k in range(w.n)
        ]
        bins, _ = choose_bins(
            candidates, fleet=cfg.fleet, horizon=view.horizon, tz=ZoneInfo(cfg.forecast.timezone)
        )
        return view.problem(bins)


def _true_crossing(
    world: World, level: NDArray[np.float64], from_h: float, threshold: float
) -> NDArray[np.float64]:
    """The hour each bin truly reaches ``threshold`` within 14 days (NaN: not by then)."""
    h0 = int(from_h)
    window = world.inflow[:, h0 : h0 + 14 * 24]
    cum = level[:, None] + np.cumsum(window, axis=1)
    over = cum >= threshold
    first = np.argmax(over, axis=1).astype(np.float64)
    first[~over.any(axis=1)] = np.nan
    first[level >= threshold] = -1.0
    out: NDArray[np.float64] = h0 + first + 1.0
    return out


class Binsight:
    """The server's plan: readings go into its database, the problem comes from ``build_problem``."""

    name = "binsight"

    def __init__(self, server: ServerSide, optional: dict[str, float] | None = None) -> None:
        self.server = server
        self.optional = optional
        self.excluded = 0

    def observe(self, fills: NDArray[np.float64], sent: NDArray[np.bool_], ts_ms: int) -> None:
        self.server.queue(fills, sent, ts_ms)

    def problem(self, view: DayView) -> dict[str, Any]:
        problem, excluded = self.server.plan_problem(view.now_ms)
        if problem["name"] != view.world.day(view.day).isoformat():
            raise RuntimeError(f"the server planned {problem['name']}, the twin expected day {view.day}")
        self.excluded += len(excluded)
        # The optional-prize experiment only; the server's own problem is returned as built otherwise.
        return problem if self.optional is None else {**problem, "optional": self.optional}

    def close(self) -> None:
        self.server.close()


def make_policy(
    name: str,
    world: World,
    server: ServerSide | None,
    service_days: int,
    optional: dict[str, float] | None = None,
) -> Policy:
    """The policy called ``name`` (one of :data:`POLICIES`)."""
    if name == "fixed":
        return Fixed(world)
    if name == "weekly":
        return Weekly(world, service_days)
    if name == "threshold":
        return Threshold()
    if name == "oracle":
        return Oracle()
    if name == "binsight":
        if server is None:
            raise ValueError("the binsight policy needs the server side")
        return Binsight(server, optional)
    raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICIES)}")
