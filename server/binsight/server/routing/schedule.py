"""Exact, engine-independent evaluation of routes: times, loads, breaks and every violation.

Whatever an engine returns is re-timed here from the instance's own matrices, so a plan is only
called feasible when this module finds no violated constraint.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from binsight.server.routing.instance import INF, Instance
from binsight.server.routing.solution import RoutePlan

__all__ = ["RouteSchedule", "Stop", "schedule_route", "total_distance"]

StopKind = Literal["depot", "bin", "disposal", "break"]


@dataclass
class Stop:
    """One stop of a scheduled route (``index`` into clients or disposal sites; -1 otherwise)."""

    kind: StopKind
    index: int
    loc: int
    arrive: int
    start: int
    depart: int
    load_after: int
    unloaded: int = 0


@dataclass
class RouteSchedule:
    """A timed route and the constraints it breaks (empty ``violations`` means feasible)."""

    vehicle: int
    stops: list[Stop]
    distance: int
    violations: list[str] = field(default_factory=list)

    @property
    def duration(self) -> int:
        return self.stops[-1].arrive - self.stops[0].depart

    @property
    def collected(self) -> int:
        unloaded = sum(s.unloaded for s in self.stops)
        return unloaded + (self.stops[-1].load_after if self.stops else 0)


def total_distance(inst: Instance, route: RoutePlan) -> int:
    """Integer distance of ``route`` from its depot back to its depot."""
    vehicle = inst.vehicle_list()[route.vehicle]
    home = inst.depots[vehicle.depot].loc
    locs = [home, *(_loc(inst, v.kind, v.index) for v in route.visits), home]
    return int(sum(inst.dist[a, b] for a, b in itertools.pairwise(locs)))


def _loc(inst: Instance, kind: str, index: int) -> int:
    return inst.clients[index].loc if kind == "client" else inst.disposal[index].loc


def schedule_route(inst: Instance, route: RoutePlan) -> RouteSchedule:
    """Time ``route``, place its break, and list every violated constraint.

    The truck leaves as late as it can without making any stop late, so that it waits as little
    as possible (as PyVRP and OR-Tools' finalizers do), or at its shift start. A break goes into
    the leg that leaves the route feasible (tried one by one), as late in that leg as allowed so it
    overlaps waiting; a route over before the break is due needs none.
    """
    vehicle = inst.vehicle_list()[route.vehicle]
    first, _, _ = _walk(inst, route, vehicle.tw_early, None)
    # Forward time slack (Savelsbergh): the start may move by D if every stop k still starts in
    # time, given that D is first absorbed by the waiting accumulated before k.
    waited = 0
    delay = INF
    for s in first[1:]:
        waited += s.start - s.arrive
        delay = min(delay, waited + _late(inst, s) - s.start)
    delay = max(0, min(delay, waited, vehicle.tw_late - first[-1].arrive + waited))
    starts = sorted({vehicle.tw_early + delay, vehicle.tw_early}, reverse=True)
    best: tuple[int, int, list[Stop], list[str], int] | None = None
    for t in starts:
        # Latest leg first: on a tie the driver works before resting.
        options: list[int | None] = [None] if vehicle.brk is None else list(range(len(route.visits), -1, -1))
        if vehicle.brk is not None:
            plain = _walk(inst, route, t, None)
            if plain[0][-1].arrive <= vehicle.brk.latest_start:
                options = [None]
        for at in options:
            stops, violations, dist = _walk(inst, route, t, at)
            violations += _route_checks(inst, route, stops)
            key = (len(violations), stops[-1].arrive - stops[0].depart)
            if best is None or key < best[:2]:
                best = (*key, stops, violations, dist)
            if not violations and vehicle.brk is None:
                break
        if best is not None and best[0] == 0:
            break
    assert best is not None
    _, _, stops, violations, dist = best
    return RouteSchedule(vehicle=route.vehicle, stops=stops, distance=dist, violations=violations)


def _route_checks(inst: Instance, route: RoutePlan, stops: list[Stop]) -> list[str]:
    vehicle = inst.vehicle_list()[route.vehicle]
    end = stops[-1]
    out = []
    if inst.disposal and route.visits and route.visits[-1].kind != "disposal":
        out.append("last stop before the depot is not a disposal site")
    if inst.disposal and end.load_after > 0:
        out.append("returns to the depot loaded")
    if end.arrive > vehicle.tw_late:
        out.append(f"returns at {end.arrive}, after the shift ends at {vehicle.tw_late}")
    if end.arrive - stops[0].depart > vehicle.max_duration:
        out.append(f"lasts {end.arrive - stops[0].depart}, more than the maximum {vehicle.max_duration}")
    return out


def _late(inst: Instance, stop: Stop) -> int:
    return inst.clients[stop.index].tw_late if stop.kind == "bin" else INF


def _walk(
    inst: Instance, route: RoutePlan, t: int, break_at: int | None
) -> tuple[list[Stop], list[str], int]:
    """Times from start ``t``; the break, if any, in the leg towards stop ``break_at`` (the depot last)."""
    vehicle = inst.vehicle_list()[route.vehicle]
    home = inst.depots[vehicle.depot]
    stops = [Stop("depot", vehicle.depot, home.loc, t, t, t, 0)]
    violations: list[str] = []
    load = 0
    dist = 0
    brk = vehicle.brk if break_at is not None else None
    plan = [(v.kind, v.index) for v in route.visits] + [("depot", vehicle.depot)]
    for leg, (kind, index) in enumerate(plan):
        prev = stops[-1]
        loc = home.loc if kind == "depot" else _loc(inst, kind, index)
        travel = int(inst.dur[prev.loc, loc])
        if kind == "client":
            job = inst.clients[index]
            early, late, service = job.tw_early, job.tw_late, job.service
        elif kind == "disposal":
            early, late, service = 0, INF, inst.disposal[index].service
        else:
            early, late, service = 0, INF, 0
        if brk is not None and leg == break_at:
            if prev.depart > brk.latest_start:
                violations.append(f"break cannot start by {brk.latest_start}")
            # As late as allowed, so that it overlaps any waiting at the next stop.
            b_start = max(prev.depart, min(brk.latest_start, early - travel - brk.duration))
            stops.append(
                Stop("break", -1, prev.loc, b_start, b_start, b_start + brk.duration, prev.load_after)
            )
            prev = stops[-1]
        arrive = prev.depart + travel
        start = max(arrive, early)
        dist += int(inst.dist[prev.loc, loc])
        if start > late:
            name = inst.clients[index].id if kind == "client" else str(index)
            violations.append(f"{kind} {name}: service starts {start}, after its window closes at {late}")
        if kind == "client":
            load += inst.clients[index].demand
            if load > vehicle.capacity:
                violations.append(
                    f"bin {inst.clients[index].id}: load {load} exceeds capacity {vehicle.capacity}"
                )
        kind_out: StopKind = "bin" if kind == "client" else "disposal" if kind == "disposal" else "depot"
        if kind == "disposal":
            stops.append(Stop(kind_out, index, loc, arrive, start, start + service, 0, unloaded=load))
            load = 0
        else:
            stops.append(Stop(kind_out, index, loc, arrive, start, start + service, load))
    return stops, violations, dist
