"""PyVRP (iterated local search, MIT) as the main engine.

It models CVRP, VRPTW, heterogeneous fleets, several depots, optional clients with prizes, maximum
route durations and -- through *reload depots* -- mid-route unloading at disposal sites. Driver
breaks it does not model; they are made safe conservatively (see :func:`break_safe_windows`) and
checked exactly afterwards by :mod:`binsight.server.routing.schedule`.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from binsight.server.routing.instance import INF, Instance, Vehicle
from binsight.server.routing.network import Network
from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

__all__ = ["break_safe_windows", "solve_pyvrp", "to_problem_data"]

logger = logging.getLogger(__name__)


def break_safe_windows(inst: Instance) -> tuple[list[int], list[tuple[int, int]]]:
    """Client latest starts and per-vehicle (shift end, max duration) that leave room for breaks.

    A break of length ``B`` due by ``T`` is taken at the last stop left before ``T``; every later
    stop is then at most ``B`` later than in the break-free schedule. Tightening, for the engine,
    the deadlines after ``T`` by ``B`` (and shift end and duration by ``B``) therefore keeps each
    break-free route feasible once its break is inserted. With several break rules the earliest
    ``T`` and the longest ``B`` are used, which is still safe.
    """
    breaks = [v.brk for v in inst.vehicles if v.brk is not None]
    late = [c.tw_late for c in inst.clients]
    shifts = [(v.tw_late, v.max_duration) for v in inst.vehicles]
    if not breaks:
        return late, shifts
    t_due = min(b.latest_start for b in breaks)
    b_max = max(b.duration for b in breaks)
    late = [tl if tl <= t_due or tl >= INF else max(t_due, tl - b_max) for tl in late]
    shifts = [
        (
            v.tw_late - v.brk.duration if v.brk and v.tw_late < INF else v.tw_late,
            v.max_duration - v.brk.duration if v.brk and v.max_duration < INF else v.max_duration,
        )
        for v in inst.vehicles
    ]
    return late, shifts


def to_problem_data(net: Network, safe_breaks: bool = True) -> Any:
    """Build a ``pyvrp.ProblemData`` over the network's nodes (one PyVRP location per node)."""
    import pyvrp

    inst = net.inst
    xy = inst.xy
    locations = []
    for loc in net.loc:
        x, y = (float(xy[loc, 0]), float(xy[loc, 1])) if xy is not None else (0.0, 0.0)
        locations.append(pyvrp.Location(x=x, y=y))
    depots = [pyvrp.Depot(location=h, name=d.id) for h, d in enumerate(inst.depots)]
    if inst.disposal:
        depots += [
            pyvrp.Depot(location=net.end_node[h], name=f"end:{d.id}") for h, d in enumerate(inst.depots)
        ]
        depots += [
            pyvrp.Depot(location=node, service_duration=s.service, name=s.id)
            for node, s in zip(net.disposal_nodes, inst.disposal, strict=True)
        ]
    late, shifts = break_safe_windows(inst) if safe_breaks else break_safe_windows_off(inst)
    clients = [
        pyvrp.Client(
            location=net.client_offset + i,
            pickup=[c.demand],
            service_duration=c.service,
            tw_early=c.tw_early,
            tw_late=late[i],
            prize=c.prize,
            required=c.required,
            name=c.id,
        )
        for i, c in enumerate(inst.clients)
    ]
    vtypes = [
        pyvrp.VehicleType(
            num_available=v.count,
            capacity=[v.capacity],
            start_depot=v.depot,
            end_depot=net.end_node[v.depot],
            tw_early=v.tw_early,
            tw_late=shift_end,
            shift_duration=max_dur,
            reload_depots=list(net.disposal_nodes),
            name=v.id,
        )
        for v, (shift_end, max_dur) in zip(inst.vehicles, shifts, strict=True)
    ]
    return pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vtypes,
        distance_matrices=[np.ascontiguousarray(net.dist)],  # type: ignore[list-item]
        duration_matrices=[np.ascontiguousarray(net.dur)],  # type: ignore[list-item]
    )


def break_safe_windows_off(inst: Instance) -> tuple[list[int], list[tuple[int, int]]]:
    """The instance's own windows and shifts, unchanged."""
    return [c.tw_late for c in inst.clients], [(v.tw_late, v.max_duration) for v in inst.vehicles]


def solve_pyvrp(
    net: Network,
    time_limit_s: float,
    seed: int = 0,
    *,
    safe_breaks: bool = True,
    initial: Any = None,
    stall: int | None = None,
) -> EngineSolution:
    """Solve with PyVRP for ``time_limit_s`` seconds; routes come back in instance terms.

    ``initial`` is a PyVRP solution of the same data (``EngineSolution.raw`` of an earlier call)
    to continue from. ``stall`` also stops the search after that many iterations without a better
    solution.

    An infeasible best solution is returned as is (the caller checks it): PyVRP penalises, rather
    than forbids, violated capacity and windows while it searches.
    """
    import pyvrp
    from pyvrp.stop import MaxRuntime, MultipleCriteria, NoImprovement

    inst = net.inst
    data = to_problem_data(net, safe_breaks=safe_breaks)
    stop: Any = MaxRuntime(max(0.05, time_limit_s))
    if stall is not None:
        stop = MultipleCriteria([stop, NoImprovement(stall)])
    with warnings.catch_warnings(record=True) as caught:
        # PyVRP warns (PenaltyBoundWarning) when feasibility is hard to reach; the exact check
        # reports what matters, so the warning goes to the log rather than to stderr.
        warnings.simplefilter("always")
        result = pyvrp.solve(
            data,
            stop=stop,
            seed=seed,
            collect_stats=False,
            initial_solution=initial,
        )
    for w in caught:
        logger.info("pyvrp: %s", str(w.message).strip().splitlines()[0])
    best = result.best
    logger.debug(
        "pyvrp: %s iterations, cost %s, feasible %s", result.num_iterations, result.cost(), best.is_feasible()
    )
    first_of_type = _first_vehicle_of_type(inst.vehicles)
    used: dict[int, int] = defaultdict(int)
    routes = []
    n_homes = net.n_depots
    disposal_base = n_homes * 2 if inst.disposal else n_homes
    for route in best.routes():
        vt = int(route.vehicle_type())
        vehicle = first_of_type[vt] + used[vt]
        used[vt] += 1
        visits: list[Visit] = []
        last_node = inst.vehicles[vt].depot
        for act in route.schedule():
            kind = str(act.type).rsplit(".", 1)[-1].upper()
            idx = int(act.idx)
            if kind == "CLIENT":
                visits.append(Visit("client", idx))
                last_node = net.client_offset + idx
            elif kind == "DEPOT" and idx >= disposal_base:
                visits.append(Visit("disposal", idx - disposal_base))
                last_node = net.disposal_nodes[idx - disposal_base]
        if inst.disposal:
            visits.append(Visit("disposal", int(net.final_site[last_node, inst.vehicles[vt].depot])))
        routes.append(RoutePlan(vehicle=vehicle, visits=visits))
    detail = f"pyvrp {result.num_iterations} iterations, feasible={best.is_feasible()}"
    return EngineSolution(routes=routes, engine="pyvrp", detail=detail, raw=best)


def _first_vehicle_of_type(vehicles: list[Vehicle]) -> list[int]:
    firsts, n = [], 0
    for v in vehicles:
        firsts.append(n)
        n += v.count
    return firsts
