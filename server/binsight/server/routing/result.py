"""The plan a person reads: timed stops, loads, and why each bin was taken or left."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from binsight.server.routing.instance import INF

if TYPE_CHECKING:
    from binsight.server.routing.instance_builder import Built
    from binsight.server.routing.planner import Outcome

__all__ = ["plan_result"]


def _hhmm(seconds: int) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def plan_result(built: Built, outcome: Outcome) -> dict[str, Any]:
    """Turn a checked outcome into the contract's result dict."""
    inst = built.inst
    trucks = inst.vehicle_list()
    problem = built.problem
    routes = []
    where: dict[int, str] = {}
    for sched in outcome.schedules:
        truck = trucks[sched.vehicle]
        stops = []
        for s in sched.stops:
            stop: dict[str, Any] = {"kind": s.kind}
            if s.kind == "bin":
                job = inst.clients[s.index]
                stop.update(id=job.id, lat=job.lat, lon=job.lon, volume_l=job.volume, fill=job.fill)
                where[s.index] = truck.id
            elif s.kind == "disposal":
                site = inst.disposal[s.index]
                stop.update(id=site.id, lat=site.lat, lon=site.lon, unloaded_l=s.unloaded)
            elif s.kind == "depot":
                depot = inst.depots[s.index]
                stop.update(id=depot.id, lat=depot.lat, lon=depot.lon)
            else:
                lat, lon = _latlon(built, s.loc)
                stop.update(id="break", lat=lat, lon=lon)
            stop.update(
                arrive=_hhmm(s.arrive),
                start=_hhmm(s.start),
                depart=_hhmm(s.depart),
                load_after_l=s.load_after,
            )
            stops.append(stop)
        routes.append(
            {
                "truck": truck.id,
                "stops": stops,
                "distance_km": round(sched.distance / 1000, 3),
                "duration_min": round(sched.duration / 60, 1),
                "collected_l": sched.collected,
                "disposal_trips": sum(1 for s in sched.stops if s.kind == "disposal"),
                "violations": sched.violations,
            }
        )
    included, skipped = _reasons(built, outcome, where)
    return {
        "name": problem.name,
        "feasible": outcome.feasible,
        "cost": round(outcome.distance / 1000, 3),
        "cost_unit": "km",
        "penalty_km": round(outcome.penalty / 1000, 3),
        "vehicles": len(routes),
        "routes": routes,
        "included": included,
        "skipped": skipped,
        "violations": outcome.violations,
        "engine": outcome.solution.engine,
        "engine_detail": outcome.solution.detail,
        "elapsed_s": round(outcome.elapsed_s, 2),
        **({"portfolio": [run.summary() for run in outcome.runs]} if outcome.runs else {}),
    }


def _latlon(built: Built, loc: int) -> tuple[float | None, float | None]:
    xy = built.inst.xy
    if xy is None:
        return None, None
    return float(xy[loc, 1]), float(xy[loc, 0])


def _reasons(
    built: Built, outcome: Outcome, where: dict[int, str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    inst = built.inst
    dist = inst.dist
    # Arcs actually driven, to price inserting a skipped bin or removing a taken one.
    arcs: list[tuple[int, int]] = []
    prev_next: dict[int, tuple[int, int]] = {}
    for sched in outcome.schedules:
        locs = [s for s in sched.stops if s.kind != "break"]
        arcs += [(x.loc, y.loc) for x, y in itertools.pairwise(locs)]
        for k, s in enumerate(locs):
            if s.kind == "bin":
                prev_next[s.index] = (locs[k - 1].loc, locs[k + 1].loc)
    arc_a = np.asarray([a for a, _ in arcs], dtype=np.int64)
    arc_b = np.asarray([b for _, b in arcs], dtype=np.int64)
    base = dist[arc_a, arc_b]
    included, skipped = [], []
    for i, job in enumerate(inst.clients):
        fill = "unknown" if job.fill is None else f"{job.fill:.0%}"
        if i in where:
            if job.required:
                reason = f"mandatory (forecast to pass the threshold); fill {fill}; on {where[i]}"
            else:
                a, b = prev_next[i]
                saving = int(dist[a, job.loc] + dist[job.loc, b] - dist[a, b])
                reason = (
                    f"optional, fill {fill}: worth a detour of {job.prize / 1000:.2f} km, "
                    f"costs {saving / 1000:.2f} km on {where[i]}"
                )
            included.append({"id": job.id, "reason": reason})
            continue
        if job.required:
            skipped.append({"id": job.id, "reason": "mandatory, but no feasible route was found for it"})
            continue
        cheapest = int((dist[arc_a, job.loc] + dist[job.loc, arc_b] - base).min()) if arcs else INF
        if cheapest >= INF:
            reason = f"optional, fill {fill}: worth {job.prize / 1000:.2f} km, less than any trip to it"
        elif cheapest > job.prize:
            reason = (
                f"optional, fill {fill}: the cheapest detour is {cheapest / 1000:.2f} km, more than the "
                f"{job.prize / 1000:.2f} km it is worth"
            )
        else:
            reason = (
                f"optional, fill {fill}: a {cheapest / 1000:.2f} km detour would do, but no truck has "
                "capacity or time left where it passes"
            )
        skipped.append({"id": job.id, "reason": reason})
    skipped += [{"id": bid, "reason": why} for bid, why in built.pre_skipped]
    return included, skipped
