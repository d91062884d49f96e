"""Why an optional bin was really skipped, checked against the plan's own routes, loads and shifts.

The planner's reasons say "a detour would do, but no truck has capacity or time left where it
passes" for any optional bin whose cheapest detour is worth taking. On the demo that was false: trucks
stood idle and truck-1 was back hours before its shift ended. This module checks that claim
position by position, with the same distances the planner used (load carried on each leg against the
truck's capacity, the route's end against its shift) and an idle truck's own trip, and states the
reason that holds:

- the solver did not take a detour that fits (it stopped at its time limit: a heuristic's miss);
- the truck is too full where the detour is, or its shift too short;
- an idle truck would drive more than the bin is worth.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["explain_skips"]

logger = logging.getLogger(__name__)

#: The planner's reason that this module checks (and only that one).
CLAIM = "no truck has capacity or time left"


@dataclass(frozen=True)
class _Leg:
    truck: str
    after: str  # the stop the detour leaves from
    a: int
    b: int
    load_l: float  # the most carried from this leg to the next unloading
    capacity_l: float
    slack_s: float  # how much later the rest of the route may run: shift, maximum duration, windows


def _minutes(hhmm: Any) -> float | None:
    if isinstance(hhmm, int | float):
        return float(hhmm)
    if not isinstance(hhmm, str) or ":" not in hhmm:
        return None
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def explain_skips(problem: dict[str, Any], result: dict[str, Any]) -> list[dict[str, str]]:
    """``result["skipped"]`` with the "no capacity or time" claims replaced by what holds.

    Any failure to check (an unreadable problem, a distance source that is gone) keeps the planner's
    own reasons: an explanation must never cost the plan.
    """
    skipped = list(result.get("skipped", []))
    if not any(CLAIM in str(s.get("reason", "")) for s in skipped):
        return skipped
    try:
        return _explain(problem, result, skipped)
    except Exception:  # the planner's reasons stay
        logger.exception("could not check the skip reasons of plan %s", problem.get("name"))
        return skipped


def _explain(
    problem: dict[str, Any], result: dict[str, Any], skipped: list[dict[str, str]]
) -> list[dict[str, str]]:
    from binsight.server.routing.distances import matrices
    from binsight.server.routing.instance_builder import parse_problem

    spec = parse_problem(problem)
    places = [*spec.depots, *spec.disposal_sites, *spec.bins]
    index = {p.id: i for i, p in enumerate(places)}
    lat = np.asarray([p.lat for p in places], dtype=float)
    lon = np.asarray([p.lon for p in places], dtype=float)
    dist, dur = matrices(spec.distance, [p.id for p in places], lat, lon)
    legs = _legs(spec, result, index)
    idle = [t for t in spec.trucks if t.id in set(_idle(result, spec))]
    bins = {b.id: b for b in spec.bins}
    out = []
    for s in skipped:
        b = bins.get(s.get("id", ""))
        if b is None or b.mandatory or CLAIM not in str(s.get("reason", "")):
            out.append(s)
            continue
        fill = 1.0 if b.fill is None else min(1.0, b.fill)
        worth = spec.optional.detour_km_at_full * 1000 * fill**spec.optional.exponent
        ctx = _Bin(index[b.id], b.volume_l, b.service_min * 60, worth, fill)
        reason = _why(ctx, legs, dist, dur) + _idle_note(ctx, idle, spec, index, dist)
        out.append({**s, "reason": reason})
    return out


@dataclass(frozen=True)
class _Bin:
    loc: int
    volume_l: float
    service_s: float
    worth_m: float
    fill: float


def _idle(result: dict[str, Any], spec: Any) -> list[str]:
    used = {
        r.get("truck")
        for r in result.get("routes", [])
        if any(s.get("kind") == "bin" for s in r.get("stops", []))
    }
    return [t.id for t in spec.trucks if t.id not in used]


def _legs(spec: Any, result: dict[str, Any], index: dict[str, int]) -> list[_Leg]:
    trucks = {t.id: t for t in spec.trucks}
    windows = {b.id: float(b.window[1]) for b in spec.bins if b.window is not None}
    legs: list[_Leg] = []
    for route in result.get("routes", []):
        truck = trucks.get(route.get("truck"))
        stops = [s for s in route.get("stops", []) if s.get("kind") != "break" and s.get("id") in index]
        if truck is None or len(stops) < 2:
            continue
        end = _minutes(stops[-1].get("arrive"))
        start = _minutes(stops[0].get("depart")) or float(truck.shift[0])
        if end is None:
            continue
        limit = float(truck.shift[1])
        if truck.max_duration_min is not None:
            limit = min(limit, start + truck.max_duration_min)
        slack = (limit - end) * 60
        peaks = _segment_peaks(stops)
        waits = _window_slacks(stops, windows)
        for k, (x, y) in enumerate(itertools.pairwise(stops)):
            if x.get("kind") == "disposal" and k == len(stops) - 2 and spec.disposal_sites:
                continue  # a bin after the last tip would need another trip to the tip
            leg_slack = min(slack, waits[k + 1])
            legs.append(
                _Leg(
                    truck.id,
                    str(x["id"]),
                    index[x["id"]],
                    index[y["id"]],
                    peaks[k],
                    truck.capacity_l,
                    leg_slack,
                )
            )
    return legs


def _window_slacks(stops: list[dict[str, Any]], windows: dict[str, float]) -> list[float]:
    """Per stop, how much later it and every stop after it may start before a window closes (s)."""
    slacks = [float("inf")] * (len(stops) + 1)
    for k in range(len(stops) - 1, -1, -1):
        own = float("inf")
        late, start = windows.get(str(stops[k].get("id"))), _minutes(stops[k].get("start"))
        if late is not None and start is not None:
            own = (late - start) * 60
        slacks[k] = min(own, slacks[k + 1])
    return slacks


def _segment_peaks(stops: list[dict[str, Any]]) -> list[float]:
    """Per stop, the most the truck carries from there to its next unloading: what an extra bin adds to."""
    peaks = [0.0] * len(stops)
    onward = 0.0  # the peak from the next stop on, up to the next unloading
    for k in range(len(stops) - 1, -1, -1):
        peaks[k] = max(float(stops[k].get("load_after_l") or 0.0), onward)
        onward = 0.0 if stops[k].get("kind") in ("disposal", "depot") else peaks[k]
    return peaks


def _why(b: _Bin, legs: list[_Leg], dist: np.ndarray, dur: np.ndarray) -> str:
    """The reason that holds for an optional bin whose cheapest detour is worth taking."""
    head = f"optional, fill {b.fill:.0%}, worth a {b.worth_m / 1000:.2f} km detour"
    rows = []
    for leg in legs:
        extra_m = float(dist[leg.a, b.loc] + dist[b.loc, leg.b] - dist[leg.a, leg.b])
        extra_s = float(dur[leg.a, b.loc] + dur[b.loc, leg.b] - dur[leg.a, leg.b]) + b.service_s
        fits_load = leg.load_l + b.volume_l <= leg.capacity_l
        fits_time = extra_s <= leg.slack_s
        rows.append((extra_m, fits_load, fits_time, leg))
    fitting = [r for r in rows if r[1] and r[2] and r[0] <= b.worth_m]
    if fitting:
        extra_m, _, _, leg = min(fitting, key=lambda r: r[0])
        return (
            f"{head}: a {extra_m / 1000:.2f} km detour on {leg.truck} after {leg.after} fits its load "
            f"({leg.load_l + b.volume_l:,.0f} of {leg.capacity_l:,.0f} L) and its times "
            f"({leg.slack_s / 60:.0f} min to spare), but the solver did not find it within its time limit "
            "(a longer limit may take it)"
        )
    worth = [r for r in rows if r[0] <= b.worth_m]
    if not worth:
        return f"{head}: every detour from the routes costs more than that"
    extra_m, fits_load, _, leg = min(worth, key=lambda r: r[0])
    if not fits_load:
        return (
            f"{head}: the cheapest, {extra_m / 1000:.2f} km on {leg.truck} after {leg.after}, finds the "
            f"truck full ({leg.load_l:,.0f} of {leg.capacity_l:,.0f} L on board, the bin holds "
            f"{b.volume_l:,.0f} L); an extra trip to the tip costs more than the bin is worth"
        )
    return (
        f"{head}: the cheapest, {extra_m / 1000:.2f} km on {leg.truck} after {leg.after}, would make "
        f"the truck late: its shift or a later stop's window leaves {max(0.0, leg.slack_s) / 60:.0f} min"
    )


def _idle_note(b: _Bin, idle: list[Any], spec: Any, index: dict[str, int], dist: np.ndarray) -> str:
    """What sending an idle truck for this bin alone would cost (out, to the tip, and home)."""
    if not idle:
        return ""
    tips = [index[s.id] for s in spec.disposal_sites]
    costs = []
    for t in idle:
        home = index[t.depot]
        back = min((dist[b.loc, s] + dist[s, home] for s in tips), default=dist[b.loc, home])
        costs.append((float(dist[home, b.loc] + back), t.id))
    trip_m, truck = min(costs)
    if trip_m <= b.worth_m:
        return f"; the idle {truck} could fetch it for {trip_m / 1000:.2f} km"
    return f"; the idle {truck} would drive {trip_m / 1000:.2f} km for it, more than it is worth"
