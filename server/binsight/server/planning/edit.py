"""A dispatcher's edit of a finished plan: move one bin to another truck, re-timed and re-checked.

The bin leaves its route (or the skipped list) and goes where it lengthens the target truck's route
least; both routes are then timed again by the routing package's exact schedule, which also names
every constraint the edit breaks (capacity, shift, window, break). Nothing is changed in place: the
edit becomes a new plan that records what it was made from, so the solver's plan stays as it was.
"""

from __future__ import annotations

from typing import Any

from binsight.errors import BinsightError

__all__ = ["EditError", "move_bin"]


class EditError(BinsightError):
    """The edit does not fit the plan: an unknown bin or truck, or a bin already on that truck."""


def move_bin(problem: dict[str, Any], result: dict[str, Any], bin_id: str, truck: str) -> dict[str, Any]:
    """``result`` with ``bin_id`` on ``truck``, every route re-timed; ``violations`` say what breaks."""
    from binsight.server.routing.instance_builder import build_instance, parse_problem
    from binsight.server.routing.planner import check
    from binsight.server.routing.result import plan_result
    from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

    built = build_instance(parse_problem(problem))
    inst = built.inst
    vehicles = [v.id for v in inst.vehicle_list()]
    if truck not in vehicles:
        raise EditError(f"truck {truck!r} is not in this plan (its trucks: {', '.join(vehicles)})")
    client_of = {c.id: i for i, c in enumerate(inst.clients)}
    if bin_id not in client_of:
        raise EditError(f"bin {bin_id!r} is not in this plan's problem (left out before planning?)")
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
    moving = client_of[bin_id]
    target = routes.get(truck) or RoutePlan(vehicles.index(truck), [])
    if moving in target.clients:
        raise EditError(f"bin {bin_id} is already on {truck}")
    for r in routes.values():
        r.visits = [v for v in r.visits if not (v.kind == "client" and v.index == moving)]
    routes[truck] = _insert(inst, target, moving)
    solution = EngineSolution(
        [r for r in routes.values() if r.clients], engine="manual", detail=f"moved {bin_id}"
    )
    out = plan_result(built, check(inst, solution))
    # Bins the server left out before planning are not in the problem: keep them listed.
    planned = {b["id"] for b in problem.get("bins", [])}
    out["skipped"] += [s for s in result.get("skipped", []) if s.get("id") not in planned]
    out["edit"] = {"moved": bin_id, "to": truck}
    return out


def _insert(inst: Any, route: Any, client: int) -> Any:
    """``route`` with ``client`` where it adds the least distance (before the final unloading)."""
    from binsight.server.routing.solution import RoutePlan, Visit

    vehicle = inst.vehicle_list()[route.vehicle]
    home = inst.depots[vehicle.depot].loc
    visits = list(route.visits)
    if inst.disposal and (not visits or visits[-1].kind != "disposal"):
        nearest = min(
            range(len(inst.disposal)), key=lambda k: inst.dist[inst.clients[client].loc, inst.disposal[k].loc]
        )
        visits.append(Visit("disposal", nearest))
    locs = [home, *(_loc(inst, v) for v in visits), home]
    last = len(visits) - 1 if inst.disposal else len(visits)  # never after the final unloading
    loc = inst.clients[client].loc
    best = min(
        range(last + 1),
        key=lambda k: inst.dist[locs[k], loc] + inst.dist[loc, locs[k + 1]] - inst.dist[locs[k], locs[k + 1]],
    )
    visits.insert(best, Visit("client", client))
    return RoutePlan(route.vehicle, visits)


def _loc(inst: Any, visit: Any) -> int:
    return int(inst.clients[visit.index].loc if visit.kind == "client" else inst.disposal[visit.index].loc)
