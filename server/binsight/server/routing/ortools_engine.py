"""OR-Tools routing as the second engine: exact driver breaks, and a polish for PyVRP's routes.

Disposal trips use the construction from OR-Tools' own ``cvrp_reload`` sample: each disposal site
is copied into several optional nodes whose demand is ``-capacity`` and whose capacity slack may
absorb up to ``capacity``, so a visit resets the load to anything down to zero; the slack is pinned
to zero everywhere else. The final unloading is folded into the route-end arcs (see
:mod:`binsight.server.routing.network`). Breaks are OR-Tools interval variables on the time
dimension, due by the break's latest start (they may fall after the route's end when it ends before).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from binsight.server.routing.instance import INF
from binsight.server.routing.network import Network
from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

__all__ = ["solve_ortools"]

logger = logging.getLogger(__name__)


def _copies_per_site(net: Network) -> int:
    inst = net.inst
    if not inst.disposal:
        return 0
    total = sum(c.demand for c in inst.clients)
    cap = min(v.capacity for v in inst.vehicles)
    # Enough unloadings for the whole demand, spread over the sites, plus slack for imbalance.
    need = math.ceil(total / max(1, cap)) + inst.num_vehicles
    return max(2, min(need, 4 * inst.num_vehicles + 4))


def solve_ortools(
    net: Network,
    time_limit_s: float,
    seed: int = 0,
    initial: EngineSolution | None = None,
) -> EngineSolution:
    """Solve with OR-Tools guided local search for ``time_limit_s`` seconds.

    ``initial`` (e.g. PyVRP's routes) is read with ``ReadAssignmentFromRoutes`` and used as the
    first solution; without it the first solution strategy is chosen by problem shape (parallel
    cheapest insertion when there are time windows, savings otherwise).
    """
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    del seed  # OR-Tools' local search is deterministic for given parameters
    inst = net.inst
    vehicles = inst.vehicle_list()
    copies = _copies_per_site(net)
    # OR-Tools nodes: the network's nodes, then extra copies of each disposal site.
    node_of = list(range(len(net.loc)))
    site_nodes: list[list[int]] = [[d] for d in net.disposal_nodes]
    for s, d in enumerate(net.disposal_nodes):
        for _ in range(copies - 1):
            site_nodes[s].append(len(node_of))
            node_of.append(d)
    n = len(node_of)
    starts = [v.depot for v in vehicles]
    ends = [net.end_node[v.depot] for v in vehicles]
    manager = pywrapcp.RoutingIndexManager(n, len(vehicles), starts, ends)
    routing = pywrapcp.RoutingModel(manager)

    dist = net.dist[node_of][:, node_of]
    svc = [0] * n
    demand = [0] * n
    cmax = max(v.capacity for v in vehicles)
    for i, c in enumerate(inst.clients):
        svc[net.client_offset + i] = c.service
        demand[net.client_offset + i] = c.demand
    for s, nodes in enumerate(site_nodes):
        for node in nodes:
            svc[node] = inst.disposal[s].service
            demand[node] = -cmax
    dur = net.dur[node_of][:, node_of] + [[x] for x in svc]

    dist_cb = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)

    load_cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(
        load_cb, cmax if inst.disposal else 0, [v.capacity for v in vehicles], True, "load"
    )
    load = routing.GetDimensionOrDie("load")

    horizon = max(
        [v.tw_late for v in vehicles if v.tw_late < INF]
        + [c.tw_late for c in inst.clients if c.tw_late < INF]
        + [int(net.dur.max()) * (len(inst.clients) + 2)]
    )
    time_cb = routing.RegisterTransitMatrix(dur.tolist())
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time = routing.GetDimensionOrDie("time")

    disposal_set = {node for nodes in site_nodes for node in nodes}
    for node in range(n):
        if node in starts or node in ends:
            continue
        index = manager.NodeToIndex(node)
        if node in disposal_set:
            routing.AddDisjunction([index], 0)
            continue
        if node < net.client_offset:  # a depot or route end that no truck uses
            routing.AddDisjunction([index], 0)
            routing.ActiveVar(index).SetValue(0)
            continue
        load.SlackVar(index).SetValue(0)
        job = inst.clients[node - net.client_offset]
        time.CumulVar(index).SetRange(job.tw_early, min(job.tw_late, horizon))
        if not job.required:
            routing.AddDisjunction([index], job.prize)
    solver = routing.solver()
    # Break constraints want service times by routing index, not node.
    visit_transit = [svc[manager.IndexToNode(i)] for i in range(routing.Size())]
    for v, veh in enumerate(vehicles):
        load.SlackVar(routing.Start(v)).SetValue(0)
        late = min(veh.tw_late, horizon)
        time.CumulVar(routing.Start(v)).SetRange(veh.tw_early, late)
        time.CumulVar(routing.End(v)).SetRange(veh.tw_early, late)
        if veh.max_duration < INF:
            time.SetSpanUpperBoundForVehicle(veh.max_duration, v)
        if veh.brk is not None:
            interval = solver.FixedDurationIntervalVar(
                veh.tw_early, max(veh.tw_early, veh.brk.latest_start), veh.brk.duration, False, f"break {v}"
            )
            time.SetBreakIntervalsOfVehicle([interval], v, visit_transit)
        routing.AddVariableMinimizedByFinalizer(time.CumulVar(routing.End(v)))
        routing.AddVariableMaximizedByFinalizer(time.CumulVar(routing.Start(v)))

    params = pywrapcp.DefaultRoutingSearchParameters()
    has_tw = any(c.tw_late < INF or c.tw_early > 0 for c in inst.clients)
    fss = routing_enums_pb2.FirstSolutionStrategy
    params.first_solution_strategy = fss.PARALLEL_CHEAPEST_INSERTION if has_tw else fss.SAVINGS
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(max(50, int(time_limit_s * 1000)))

    solution = None
    if initial is not None:
        warm = _warm_routes(net, initial, site_nodes, len(vehicles))
        assignment = routing.ReadAssignmentFromRoutes(warm, True)
        if assignment is not None:
            solution = routing.SolveFromAssignmentWithParameters(assignment, params)
        else:
            logger.info("ortools: warm start rejected (infeasible for exact constraints); solving cold")
    if solution is None:
        solution = routing.SolveWithParameters(params)
    if solution is None:
        return EngineSolution(routes=[], engine="ortools", detail=f"ortools status {routing.status()}")
    return EngineSolution(
        routes=_extract(
            net,
            routing=routing,
            manager=manager,
            solution=solution,
            node_of=node_of,
            n_vehicles=len(vehicles),
        ),
        engine="ortools",
        detail=f"ortools objective {solution.ObjectiveValue()}",
    )


def _warm_routes(
    net: Network, initial: EngineSolution, site_nodes: list[list[int]], n_vehicles: int
) -> list[list[int]]:
    used = [0] * len(site_nodes)
    routes: list[list[int]] = [[] for _ in range(n_vehicles)]
    for route in initial.routes:
        visits = route.visits[:-1] if net.inst.disposal else route.visits  # last unload = route end
        nodes = []
        for visit in visits:
            if visit.kind == "client":
                nodes.append(net.client_offset + visit.index)
            elif used[visit.index] < len(site_nodes[visit.index]):
                nodes.append(site_nodes[visit.index][used[visit.index]])
                used[visit.index] += 1
        routes[route.vehicle] = nodes
    return routes


def _extract(
    net: Network, *, routing: Any, manager: Any, solution: Any, node_of: list[int], n_vehicles: int
) -> list[RoutePlan]:
    inst = net.inst
    vehicles = inst.vehicle_list()
    disposal_index = {node: s for s, node in enumerate(net.disposal_nodes)}
    plans = []
    for v in range(n_vehicles):
        index = solution.Value(routing.NextVar(routing.Start(v)))
        visits: list[Visit] = []
        last = vehicles[v].depot
        while not routing.IsEnd(index):
            node = node_of[manager.IndexToNode(index)]
            if node >= net.client_offset:
                visits.append(Visit("client", node - net.client_offset))
            elif node in disposal_index:
                visits.append(Visit("disposal", disposal_index[node]))
            last = node
            index = solution.Value(routing.NextVar(index))
        if not any(x.kind == "client" for x in visits):
            continue
        if inst.disposal:
            visits.append(Visit("disposal", int(net.final_site[last, vehicles[v].depot])))
        plans.append(RoutePlan(vehicle=v, visits=visits))
    return plans
