"""Large problems by decomposition: by depot, then by angular sector (a sweep), solved one by one.

1. Each bin goes to the nearest depot that has trucks.
2. Around each depot the bins are sorted by polar angle and cut into ``ceil(n / SECTOR_SIZE)``
   sectors of equal count (Gillett and Miller's sweep), never more sectors than the depot's trucks.
3. The depot's trucks are shared among its sectors in proportion to each sector's load (at least
   one each), and the time limit in proportion to each sector's bin count.
4. Each sector is an independent problem for PyVRP, with 85% of the time in all.
5. Repair: routes the exact check rejects are dissolved; their mandatory bins and those the sectors
   could not fit, with every truck left unused (each from its own depot), form one more problem,
   solved in the remaining time.

Routes never cross a sector boundary, which costs some distance at the seams; what it buys is a
time per problem that grows linearly with the number of bins.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from binsight.server.routing.instance import Instance
from binsight.server.routing.schedule import schedule_route
from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

# The planner's solve_instance(inst, time_limit_s, ...) -> Outcome, as this module calls it.
SolveOne = Callable[..., Any]

__all__ = ["SECTOR_SIZE", "sectors", "solve_decomposed"]

logger = logging.getLogger(__name__)

SECTOR_SIZE = 800
REPAIR_SHARE = 0.15


def sectors(inst: Instance, size: int | None = None) -> list[tuple[int, list[int], list[int]]]:
    """``(depot, client indices, physical vehicle indices)`` per sector of about ``size`` clients."""
    size = size or SECTOR_SIZE
    vehicles = inst.vehicle_list()
    by_depot: dict[int, list[int]] = {}
    for k, v in enumerate(vehicles):
        by_depot.setdefault(v.depot, []).append(k)
    depots = sorted(by_depot)
    depot_locs = np.asarray([inst.depots[d].loc for d in depots])
    client_locs = np.asarray([c.loc for c in inst.clients])
    nearest = inst.dist[np.ix_(client_locs, depot_locs)].argmin(axis=1)
    out = []
    for j, d in enumerate(depots):
        members = np.flatnonzero(nearest == j)
        if len(members) == 0:
            continue
        trucks = by_depot[d]
        k = max(1, min(len(trucks), math.ceil(len(members) / size)))
        if inst.xy is not None:
            origin = inst.xy[inst.depots[d].loc]
            rel = inst.xy[client_locs[members]] - origin
            order = members[np.argsort(np.arctan2(rel[:, 1], rel[:, 0]))]
        else:
            order = members
        parts = np.array_split(order, k)
        # Work per sector: half by load (unloading trips), half by bin count (service and driving).
        demand = np.asarray([sum(inst.clients[i].demand for i in p) for p in parts], dtype=float)
        count = np.asarray([len(p) for p in parts], dtype=float)
        share = _apportion(demand / max(1.0, demand.sum()) + count / count.sum(), len(trucks))
        start = 0
        for p, n_trucks in zip(parts, share, strict=True):
            out.append((d, [int(i) for i in p], trucks[start : start + n_trucks]))
            start += n_trucks
    return out


def _apportion(weights: np.ndarray, total: int) -> list[int]:
    """``total`` split in proportion to ``weights``, at least one each (largest remainders)."""
    k = len(weights)
    base = np.ones(k, dtype=int)
    rest = total - k
    if rest > 0 and weights.sum() > 0:
        exact = weights / weights.sum() * rest
        floor = np.floor(exact).astype(int)
        base += floor
        for i in np.argsort(-(exact - floor))[: rest - floor.sum()]:
            base[i] += 1
    return [int(x) for x in base]


def _sub_instance(inst: Instance, clients: list[int], trucks: list[int]) -> Instance:
    """The problem of ``clients`` for ``trucks``, with the depots those trucks start from."""
    vehicles = inst.vehicle_list()
    depots = sorted({vehicles[t].depot for t in trucks})
    new_depot = {d: k for k, d in enumerate(depots)}
    nd, ns = len(depots), len(inst.disposal)
    locs = [
        *(inst.depots[d].loc for d in depots),
        *(s.loc for s in inst.disposal),
        *(inst.clients[i].loc for i in clients),
    ]
    idx = np.asarray(locs)
    return Instance(
        name=f"{inst.name}/{'+'.join(inst.depots[d].id for d in depots)}",
        kind=inst.kind,
        dist=inst.dist[np.ix_(idx, idx)],
        dur=inst.dur[np.ix_(idx, idx)],
        depots=[replace(inst.depots[d], loc=k) for k, d in enumerate(depots)],
        clients=[replace(inst.clients[i], loc=nd + ns + k) for k, i in enumerate(clients)],
        vehicles=[replace(vehicles[t], depot=new_depot[vehicles[t].depot], count=1) for t in trucks],
        disposal=[replace(s, loc=nd + k) for k, s in enumerate(inst.disposal)],
        cost_scale=inst.cost_scale,
        time_unit_s=inst.time_unit_s,
        xy=inst.xy[idx] if inst.xy is not None else None,
    )


def solve_decomposed(inst: Instance, time_limit_s: float, seed: int, solve: SolveOne) -> EngineSolution:
    """Solve each sector in turn with ``solve`` (the planner's ``solve_instance``), then a repair
    round, and join the routes.

    The repair round gets 15% of the time: mandatory bins the sectors could not fit go, with every
    truck left unused (from whichever depot), into one more problem. ``solve`` is passed in rather
    than imported, so that the planner uses this module and not the other way round.
    """
    t0 = time.perf_counter()
    # Building sub-problems, re-checking every route and the last search iterations overrun a little.
    time_limit_s *= 0.95
    parts = sectors(inst)
    reserve = REPAIR_SHARE * time_limit_s
    routes: list[RoutePlan] = []
    for n, (_, clients, trucks) in enumerate(parts):
        left = time_limit_s - reserve - (time.perf_counter() - t0)
        remaining = sum(len(c) for _, c, _ in parts[n:])
        budget = max(1.0, left * len(clients) / max(1, remaining))
        logger.info(
            "sector %d/%d: %d bins, %d trucks, %.0f s", n + 1, len(parts), len(clients), len(trucks), budget
        )
        routes += _solve_part(inst, clients, trucks, budget=budget, seed=seed, solve=solve)
    # Routes the exact check rejects are dissolved: their bins and trucks join the repair.
    kept = [r for r in routes if not schedule_route(inst, r).violations]
    served = {i for r in kept for i in r.clients}
    used = {r.vehicle for r in kept}
    missing = [i for _, c, _ in parts for i in c if i not in served and inst.clients[i].required]
    free = [k for k in range(inst.num_vehicles) if k not in used]
    repaired = 0
    if missing and free:
        budget = max(1.0, time_limit_s - (time.perf_counter() - t0))
        logger.info("repair: %d mandatory bins, %d free trucks, %.0f s", len(missing), len(free), budget)
        routes = kept + _solve_part(inst, missing, free, budget=budget, seed=seed, solve=solve)
        repaired = len(missing)
    detail = f"decomposed into {len(parts)} sectors of {len(inst.clients)} clients, {repaired} bins repaired"
    return EngineSolution(routes=routes, engine="decomposed", detail=detail)


def _solve_part(
    inst: Instance,
    clients: list[int],
    trucks: list[int],
    *,
    budget: float,
    seed: int,
    solve: SolveOne,
) -> list[RoutePlan]:
    sub = _sub_instance(inst, clients, trucks)
    # PyVRP alone: in a sector's few seconds OR-Tools could not even start from scratch, and the
    # exact check below dissolves whatever routes still break a constraint.
    outcome = solve(sub, budget, seed=seed, engine="pyvrp", decompose=False)
    out = []
    for r in outcome.solution.routes:
        visits = [Visit(v.kind, clients[v.index]) if v.kind == "client" else v for v in r.visits]
        out.append(RoutePlan(vehicle=trucks[r.vehicle], visits=visits))
    return out
