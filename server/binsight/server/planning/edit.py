"""A dispatcher's edit of a finished plan: move one bin to another truck, re-timed and re-checked.

The bin leaves its route (or the skipped list) and goes where it lengthens the target truck's route
least; both routes are then timed again by the routing package's exact schedule. When the extra load
overfills the truck, the edit first tries what a dispatcher would do by hand: one more trip to the
tip (disposal site) before the truck is full, kept if that fits. Whatever the edit still breaks is
named in the dispatcher's terms, each with how far over the limit it goes (:class:`Breach`: "truck-2
carries 9,100 L after bin b7, 1,100 L over its 8,000 L capacity"; "back at the depot at 14:35, 35 min
after its shift ends at 14:00"). Only what the move breaks counts: a limit the solver's plan already
broke is not blamed on it. Nothing is changed in place: the edit becomes a new plan that records
what it was made from, so the solver's plan stays as it was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from binsight.errors import BinsightError

if TYPE_CHECKING:
    from binsight.server.routing.instance import Instance
    from binsight.server.routing.planner import Outcome
    from binsight.server.routing.solution import RoutePlan

__all__ = ["Breach", "EditError", "move_bin"]

Limit = Literal["capacity", "shift_end", "max_duration", "window", "break", "unloading"]


class EditError(BinsightError):
    """The edit does not fit the plan: an unknown bin or truck, or a bin already on that truck."""


@dataclass(frozen=True)
class Breach:
    """One limit a route breaks: which, on which truck (and stop), by how much, and in words."""

    truck: str
    limit: Limit
    #: How far over: litres for ``capacity``, minutes for the time limits, 0 where there is no amount.
    over: float
    unit: Literal["L", "min", ""]
    text: str
    stop: str | None = None

    def key(self) -> tuple[str, str, str | None]:
        """The same breach, whatever the amount: same truck and limit (and bin, for a window)."""
        return (self.truck, self.limit, self.stop if self.limit == "window" else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def move_bin(problem: dict[str, Any], result: dict[str, Any], bin_id: str, truck: str) -> dict[str, Any]:
    """``result`` with ``bin_id`` on ``truck``, every route re-timed.

    Returns the edited plan's result; its ``breaches`` (dicts of :class:`Breach`) list what the move
    breaks that the plan did not, and ``edit`` says what was moved and whether a tip trip was added.
    ``violations`` keeps the routing package's own list for the whole plan.
    """
    from binsight.server.routing.instance_builder import build_instance, parse_problem
    from binsight.server.routing.planner import check
    from binsight.server.routing.result import plan_result
    from binsight.server.routing.solution import RoutePlan

    built = build_instance(parse_problem(problem))
    inst = built.inst
    vehicles = [v.id for v in inst.vehicle_list()]
    if truck not in vehicles:
        raise EditError(f"truck {truck!r} is not in this plan (its trucks: {', '.join(vehicles)})")
    client_of = {c.id: i for i, c in enumerate(inst.clients)}
    if bin_id not in client_of:
        raise EditError(f"bin {bin_id!r} is not in this plan's problem (left out before planning?)")
    routes = _routes(inst, result, client_of, vehicles)
    moving = client_of[bin_id]
    target = routes.get(truck) or RoutePlan(vehicles.index(truck), [])
    if moving in target.clients:
        raise EditError(f"bin {bin_id} is already on {truck}")
    before = breaches(inst, check(inst, _solution(routes, "before")))
    for r in routes.values():
        r.visits = [v for v in r.visits if not (v.kind == "client" and v.index == moving)]
    candidates = [_insert(inst, target, moving)]
    repaired = _with_tip_trip(inst, candidates[0])
    if repaired is not None:
        candidates.append(repaired)
    best: tuple[tuple[int, int], Outcome, list[Breach], bool] | None = None
    for i, route in enumerate(candidates):
        outcome = check(inst, _solution({**routes, truck: route}, f"moved {bin_id}"))
        new = _new(before, breaches(inst, outcome))
        rank = (len(new), sum(s.distance for s in outcome.schedules))
        if best is None or rank < best[0]:
            best = (rank, outcome, new, i == 1)
    assert best is not None
    _, outcome, new, tip_added = best
    out = plan_result(built, outcome)
    # Bins the server left out before planning are not in the problem: keep them listed.
    planned = {b["id"] for b in problem.get("bins", [])}
    out["skipped"] += [s for s in result.get("skipped", []) if s.get("id") not in planned]
    out["breaches"] = [b.to_dict() for b in new]
    out["edit"] = {"moved": bin_id, "to": truck, "tip_trip_added": tip_added}
    return out


def _routes(
    inst: Instance, result: dict[str, Any], client_of: dict[str, int], vehicles: list[str]
) -> dict[str, RoutePlan]:
    from binsight.server.routing.solution import RoutePlan, Visit

    disposal_of = {s.id: i for i, s in enumerate(inst.disposal)}
    routes: dict[str, RoutePlan] = {}
    for route in result.get("routes", []):
        visits = []
        for s in route.get("stops", []):
            if s.get("kind") == "bin":
                visits.append(Visit("client", client_of[s["id"]]))
            elif s.get("kind") == "disposal":
                visits.append(Visit("disposal", disposal_of[s["id"]]))
        routes[route["truck"]] = RoutePlan(vehicles.index(route["truck"]), visits)
    return routes


def _solution(routes: dict[str, RoutePlan], detail: str) -> Any:
    from binsight.server.routing.solution import EngineSolution

    return EngineSolution([r for r in routes.values() if r.clients], engine="manual", detail=detail)


def _new(before: list[Breach], after: list[Breach]) -> list[Breach]:
    """The breaches of ``after`` that ``before`` did not have, or that got worse."""
    was: dict[tuple[str, str, str | None], float] = {}
    for b in before:
        was[b.key()] = max(was.get(b.key(), 0.0), b.over)
    return [b for b in after if b.key() not in was or b.over > was[b.key()] + 1e-9]


def _insert(inst: Instance, route: RoutePlan, client: int) -> RoutePlan:
    """``route`` with ``client`` where it adds the least distance (before the final unloading)."""
    from binsight.server.routing.solution import RoutePlan, Visit

    vehicle = inst.vehicle_list()[route.vehicle]
    home = inst.depots[vehicle.depot].loc
    visits = list(route.visits)
    if inst.disposal and (not visits or visits[-1].kind != "disposal"):
        visits.append(Visit("disposal", _nearest_tip(inst, inst.clients[client].loc)))
    locs = [home, *(_loc(inst, v) for v in visits), home]
    last = len(visits) - 1 if inst.disposal else len(visits)  # never after the final unloading
    loc = inst.clients[client].loc
    best = min(
        range(last + 1),
        key=lambda k: inst.dist[locs[k], loc] + inst.dist[loc, locs[k + 1]] - inst.dist[locs[k], locs[k + 1]],
    )
    visits.insert(best, Visit("client", client))
    return RoutePlan(route.vehicle, visits)


def _with_tip_trip(inst: Instance, route: RoutePlan) -> RoutePlan | None:
    """``route`` with one more unloading just before the first bin that would overfill the truck.

    None when the route never overfills, or there is no disposal site, or no single trip is enough.
    """
    from binsight.server.routing.solution import RoutePlan, Visit

    if not inst.disposal:
        return None
    capacity = inst.vehicle_list()[route.vehicle].capacity
    load = 0
    for k, v in enumerate(route.visits):
        if v.kind == "disposal":
            load = 0
            continue
        load += inst.clients[v.index].demand
        if load > capacity:
            if k == 0 or route.visits[k - 1].kind == "disposal":
                return None  # the bin alone overfills the truck: no trip helps
            tip = _nearest_tip(inst, _loc(inst, route.visits[k - 1]))
            return RoutePlan(route.vehicle, [*route.visits[:k], Visit("disposal", tip), *route.visits[k:]])
    return None


def _nearest_tip(inst: Instance, loc: int) -> int:
    return min(range(len(inst.disposal)), key=lambda k: inst.dist[loc, inst.disposal[k].loc])


def _loc(inst: Instance, visit: Any) -> int:
    return int(inst.clients[visit.index].loc if visit.kind == "client" else inst.disposal[visit.index].loc)


def breaches(inst: Instance, outcome: Outcome) -> list[Breach]:
    """Every limit the routes of ``outcome`` break, in the dispatcher's terms (times are HH:MM)."""
    out: list[Breach] = []
    trucks = inst.vehicle_list()
    for sched in outcome.schedules:
        vehicle = trucks[sched.vehicle]
        name = vehicle.id
        worst: tuple[int, str] | None = None  # the fullest moment of each load between unloadings
        for s in sched.stops:
            if s.kind == "bin":
                job = inst.clients[s.index]
                if s.load_after > vehicle.capacity and (worst is None or s.load_after > worst[0]):
                    worst = (s.load_after, job.id)
                if s.start > job.tw_late:
                    late = (s.start - job.tw_late) / 60
                    out.append(
                        Breach(
                            name,
                            "window",
                            round(late),
                            "min",
                            f"{name} reaches bin {job.id} at {_hhmm(s.start)}, {_minutes(late)} after its "
                            f"window closes at {_hhmm(job.tw_late)}",
                            job.id,
                        )
                    )
            elif s.kind in ("disposal", "depot") and worst is not None:
                load, at = worst
                out.append(
                    Breach(
                        name,
                        "capacity",
                        load - vehicle.capacity,
                        "L",
                        f"{name} carries {_litres(load)} after bin {at}, {_litres(load - vehicle.capacity)} "
                        f"over its {_litres(vehicle.capacity)} capacity",
                        at,
                    )
                )
                worst = None
        end = sched.stops[-1]
        if end.arrive > vehicle.tw_late:
            late = (end.arrive - vehicle.tw_late) / 60
            out.append(
                Breach(
                    name,
                    "shift_end",
                    round(late),
                    "min",
                    f"{name} is back at the depot at {_hhmm(end.arrive)}, {_minutes(late)} after its shift "
                    f"ends at {_hhmm(vehicle.tw_late)}",
                )
            )
        if sched.duration > vehicle.max_duration:
            over = (sched.duration - vehicle.max_duration) / 60
            out.append(
                Breach(
                    name,
                    "max_duration",
                    round(over),
                    "min",
                    f"{name}'s route lasts {_minutes(sched.duration / 60)}, {_minutes(over)} over its "
                    f"longest working day of {_minutes(vehicle.max_duration / 60)}",
                )
            )
        for v in sched.violations:
            if v.startswith("break cannot start"):
                assert vehicle.brk is not None
                out.append(
                    Breach(
                        name,
                        "break",
                        0,
                        "",
                        f"{name}'s driver cannot start the break by {_hhmm(vehicle.brk.latest_start)}",
                    )
                )
            elif v.startswith(("returns to the depot loaded", "last stop before the depot")):
                out.append(Breach(name, "unloading", 0, "", f"{name} returns to the depot without unloading"))
    return out


def _hhmm(seconds: int) -> str:
    m = round(seconds / 60)
    return f"{m // 60:02d}:{m % 60:02d}"


def _minutes(m: float) -> str:
    whole = max(1, round(m))
    return f"{whole} min" if whole < 60 else f"{whole // 60} h {whole % 60:02d} min"


def _litres(x: float) -> str:
    return f"{round(x):,} L"
