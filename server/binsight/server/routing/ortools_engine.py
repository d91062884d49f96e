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
import time
from dataclasses import dataclass
from typing import Any

from binsight.server.routing.instance import INF
from binsight.server.routing.network import Network
from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

__all__ = ["OrToolsSettings", "solve_ortools"]

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


@dataclass(frozen=True)
class OrToolsSettings:
    """How OR-Tools searches: first solution, metaheuristic, and how far its moves look.

    ``first_solution`` names a ``FirstSolutionStrategy`` (None: parallel cheapest insertion when
    clients have windows, savings otherwise); ``metaheuristic`` a ``LocalSearchMetaheuristic``.
    ``neighbors`` restricts the local-search operators to each node's that many nearest nodes
    (None: all), which makes each move cheaper on larger problems. ``iterated`` turns on OR-Tools'
    iterated local search (ruin and recreate perturbations between descents). ``trim_fleet``: on
    problems without time limits, a fleet type far larger than the load needs (the literature's
    "unlimited" CVRP fleet is one vehicle per customer) is cut to what capacity needs plus a margin,
    since every idle vehicle is searched over too.
    """

    first_solution: str | None = None
    metaheuristic: str = "GUIDED_LOCAL_SEARCH"
    neighbors: int | None = None
    iterated: bool = False
    trim_fleet: bool = True


#: The settings ``--engine ortools`` uses (chosen by ``bench/routing_ortools.py``; see docs/routing.md).
SETTINGS = OrToolsSettings()


@dataclass
class _Model:
    """One network as an OR-Tools routing model, with what reading its solution back needs."""

    routing: Any
    manager: Any
    #: The network node behind each OR-Tools node (disposal copies map to their site's node).
    node_of: list[int]
    #: Per disposal site, the OR-Tools nodes that stand for it (the original first).
    site_nodes: list[list[int]]
    #: Service time per OR-Tools node.
    service: list[int]
    #: The truck (index into ``Instance.vehicle_list()``) behind each OR-Tools vehicle.
    fleet: list[int]
    #: What leaving a mandatory bin out costs: far more than any route could save by it.
    drop_mandatory: int = 0

    @property
    def n_vehicles(self) -> int:
        return len(self.fleet)


def solve_ortools(
    net: Network,
    time_limit_s: float,
    seed: int = 0,
    initial: EngineSolution | None = None,
    settings: OrToolsSettings | None = None,
) -> EngineSolution:
    """Solve with OR-Tools for ``time_limit_s`` seconds (default :data:`SETTINGS`).

    ``initial`` (e.g. PyVRP's routes, or a previous plan's) is read with ``ReadAssignmentFromRoutes``
    and used as the first solution; without it, or when OR-Tools rejects it, the first solution
    strategy of ``settings`` builds one.
    """
    del seed  # OR-Tools' local search is deterministic for given parameters
    settings = settings or SETTINGS
    t0 = time.perf_counter()
    fleet = _fleet(net, initial) if settings.trim_fleet else None
    model = _build_model(net, fleet)
    solution = _solve(net, model, _search_parameters(net, time_limit_s, settings), initial)
    if solution is None and fleet is not None and len(fleet) < net.inst.num_vehicles:
        logger.info(
            "ortools: no solution with %d of %d vehicles; retrying with all",
            len(fleet),
            net.inst.num_vehicles,
        )
        model = _build_model(net)
        left = max(0.05, time_limit_s - (time.perf_counter() - t0))
        solution = _solve(net, model, _search_parameters(net, left, settings), initial)
    if solution is None:
        return EngineSolution(routes=[], engine="ortools", detail=f"ortools status {model.routing.status()}")
    return EngineSolution(
        routes=_extract(net, model, solution),
        engine="ortools",
        detail=f"ortools objective {solution.ObjectiveValue()}",
    )


def _fleet(net: Network, initial: EngineSolution | None) -> list[int]:
    """The trucks worth modelling: all of them, unless nothing but capacity limits the routes."""
    inst = net.inst
    everyone = list(range(inst.num_vehicles))
    timed = any(c.tw_early > 0 or c.tw_late < INF for c in inst.clients) or any(
        v.tw_late < INF or v.max_duration < INF or v.brk is not None for v in inst.vehicles
    )
    if timed or inst.disposal:
        return everyone
    total = sum(c.demand for c in inst.clients)
    keep: list[int] = []
    first = 0
    for v in inst.vehicles:
        need = math.ceil(1.1 * total / max(1, v.capacity)) + 2
        keep += range(first, first + min(v.count, need))
        first += v.count
    if initial is not None:  # a warm start's trucks must exist in the model
        keep += [r.vehicle for r in initial.routes]
    return sorted(set(keep))


def _build_model(net: Network, fleet: list[int] | None = None) -> _Model:
    """The routing model over ``fleet`` (default: every truck): nodes, arc costs, load and time."""
    from ortools.constraint_solver import pywrapcp

    everyone = net.inst.vehicle_list()
    fleet = fleet if fleet is not None else list(range(len(everyone)))
    vehicles = [everyone[k] for k in fleet]
    node_of, site_nodes = _node_map(net)
    starts = [v.depot for v in vehicles]
    ends = [net.end_node[v.depot] for v in vehicles]
    manager = pywrapcp.RoutingIndexManager(len(node_of), len(vehicles), starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    service, demand = _service_and_demand(net, len(node_of), site_nodes)
    drop = 100 * (int(net.dist.max()) + 1) * (len(net.inst.disposal) + 2)
    model = _Model(routing, manager, node_of, site_nodes, service, fleet, drop)

    dist = net.dist[node_of][:, node_of]
    dist_cb = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(dist_cb)

    load_cb = routing.RegisterUnaryTransitVector(demand)
    routing.AddDimensionWithVehicleCapacity(
        load_cb, _max_capacity(net) if net.inst.disposal else 0, [v.capacity for v in vehicles], True, "load"
    )
    horizon = _horizon(net)
    dur = net.dur[node_of][:, node_of] + [[x] for x in service]
    time_cb = routing.RegisterTransitMatrix(dur.tolist())
    routing.AddDimension(time_cb, horizon, horizon, False, "time")

    _constrain_nodes(net, model, set(starts) | set(ends), horizon)
    _constrain_vehicles(net, model, horizon)
    return model


def _node_map(net: Network) -> tuple[list[int], list[list[int]]]:
    """OR-Tools nodes: the network's nodes, then extra copies of each disposal site."""
    copies = _copies_per_site(net)
    node_of = list(range(len(net.loc)))
    site_nodes: list[list[int]] = [[d] for d in net.disposal_nodes]
    for s, d in enumerate(net.disposal_nodes):
        for _ in range(copies - 1):
            site_nodes[s].append(len(node_of))
            node_of.append(d)
    return node_of, site_nodes


def _max_capacity(net: Network) -> int:
    return max(v.capacity for v in net.inst.vehicle_list())


def _service_and_demand(net: Network, n: int, site_nodes: list[list[int]]) -> tuple[list[int], list[int]]:
    """Service time and load change per OR-Tools node; a disposal visit may empty the fullest truck."""
    inst = net.inst
    service = [0] * n
    demand = [0] * n
    cmax = _max_capacity(net)
    for i, c in enumerate(inst.clients):
        service[net.client_offset + i] = c.service
        demand[net.client_offset + i] = c.demand
    for s, nodes in enumerate(site_nodes):
        for node in nodes:
            service[node] = inst.disposal[s].service
            demand[node] = -cmax
    return service, demand


def _horizon(net: Network) -> int:
    """The time dimension's bound: the latest finite window, or a route long enough to visit all."""
    inst = net.inst
    return max(
        [v.tw_late for v in inst.vehicle_list() if v.tw_late < INF]
        + [c.tw_late for c in inst.clients if c.tw_late < INF]
        + [int(net.dur.max()) * (len(inst.clients) + 2)]
    )


def _constrain_nodes(net: Network, model: _Model, route_ends: set[int], horizon: int) -> None:
    """Disposal copies and unused depots are optional; clients get their windows and prizes."""
    routing, manager = model.routing, model.manager
    load = routing.GetDimensionOrDie("load")
    time = routing.GetDimensionOrDie("time")
    disposal_set = {node for nodes in model.site_nodes for node in nodes}
    for node in range(len(model.node_of)):
        if node in route_ends:
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
        job = net.inst.clients[node - net.client_offset]
        time.CumulVar(index).SetRange(job.tw_early, min(job.tw_late, horizon))
        # A mandatory bin may be dropped too, at a price no detour comes near: then the first
        # solution heuristics always finish (with unloading trips they often fail to fit every
        # bin), and the search pulls the dropped ones in. The exact check still reports any left.
        routing.AddDisjunction([index], job.prize if not job.required else model.drop_mandatory)


def _constrain_vehicles(net: Network, model: _Model, horizon: int) -> None:
    """Shift windows, maximum durations and driver breaks; routes start late and end early."""
    routing, manager = model.routing, model.manager
    load = routing.GetDimensionOrDie("load")
    time = routing.GetDimensionOrDie("time")
    solver = routing.solver()
    # Break constraints want service times by routing index, not node.
    visit_transit = [model.service[manager.IndexToNode(i)] for i in range(routing.Size())]
    everyone = net.inst.vehicle_list()
    for v, k in enumerate(model.fleet):
        veh = everyone[k]
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


def _search_parameters(net: Network, time_limit_s: float, settings: OrToolsSettings) -> Any:
    """OR-Tools search parameters for ``settings`` on this problem."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    params = pywrapcp.DefaultRoutingSearchParameters()
    fss = routing_enums_pb2.FirstSolutionStrategy
    first = settings.first_solution
    if first is None:
        has_tw = any(c.tw_late < INF or c.tw_early > 0 for c in net.inst.clients)
        first = "PARALLEL_CHEAPEST_INSERTION" if has_tw else "SAVINGS"
    params.first_solution_strategy = _enum(fss, first, "first solution strategy")
    params.local_search_metaheuristic = _enum(
        routing_enums_pb2.LocalSearchMetaheuristic, settings.metaheuristic, "metaheuristic"
    )
    if settings.neighbors is not None:
        nodes = max(1, len(net.loc))
        params.ls_operator_neighbors_ratio = min(1.0, settings.neighbors / nodes)
        params.ls_operator_min_neighbors = settings.neighbors
    if settings.iterated:
        _iterated_local_search(params)
    params.time_limit.FromMilliseconds(max(50, int(time_limit_s * 1000)))
    return params


def _iterated_local_search(params: Any) -> None:
    """OR-Tools' iterated local search with SISR ruins (Christiaens and Vanden Berghe 2020, their
    defaults: strings of up to 10 visits, 10 removed on average), recreated by cheapest insertion."""
    params.use_iterated_local_search = True
    ruin = params.iterated_local_search_parameters.ruin_recreate_parameters.ruin_strategies.add()
    ruin.sisr.max_removed_sequence_size = 10
    ruin.sisr.avg_num_removed_visits = 10
    ruin.sisr.bypass_factor = 0.01


def _enum(holder: Any, name: str, what: str) -> int:
    """The value of OR-Tools enum ``name`` (e.g. ``SAVINGS``); a clear error for a wrong one."""
    names = [v.name for v in holder.DESCRIPTOR.enum_types_by_name["Value"].values]
    if name not in names:
        raise ValueError(f"OR-Tools {what} {name!r}: expected one of {', '.join(names)}")
    return int(getattr(holder, name))


def _solve(net: Network, model: _Model, params: Any, initial: EngineSolution | None) -> Any:
    """The best assignment found (from ``initial`` when OR-Tools accepts it), or None."""
    routing = model.routing
    solution = None
    if initial is not None:
        warm = _warm_routes(net, initial, model)
        assignment = routing.ReadAssignmentFromRoutes(warm, True)
        if assignment is not None:
            # When the time runs out before the search reports anything, the start is still a plan.
            solution = routing.SolveFromAssignmentWithParameters(assignment, params) or assignment
        else:
            logger.info("ortools: warm start rejected (infeasible for exact constraints); solving cold")
    if solution is None:
        solution = routing.SolveWithParameters(params)
    return solution


def _warm_routes(net: Network, initial: EngineSolution, model: _Model) -> list[list[int]]:
    """``initial``'s routes per model vehicle as OR-Tools *indices*, which ``ReadAssignmentFromRoutes``
    wants (disposal visits on unused copies).

    Indices are not nodes: the manager numbers the nodes that are no route's start or end first,
    so with disposal sites (whose route ends are nodes of their own) every index is off.
    """
    site_nodes = model.site_nodes
    slot = {k: v for v, k in enumerate(model.fleet)}
    used = [0] * len(site_nodes)
    routes: list[list[int]] = [[] for _ in range(model.n_vehicles)]
    for route in initial.routes:
        visits = route.visits[:-1] if net.inst.disposal else route.visits  # last unload = route end
        nodes = []
        for visit in visits:
            if visit.kind == "client":
                nodes.append(net.client_offset + visit.index)
            elif used[visit.index] < len(site_nodes[visit.index]):
                nodes.append(site_nodes[visit.index][used[visit.index]])
                used[visit.index] += 1
        routes[slot[route.vehicle]] = [model.manager.NodeToIndex(n) for n in nodes]
    return routes


def _extract(net: Network, model: _Model, solution: Any) -> list[RoutePlan]:
    """The routes of ``solution`` as visits of the network (copies read as their disposal site)."""
    routing, manager, node_of = model.routing, model.manager, model.node_of
    inst = net.inst
    vehicles = inst.vehicle_list()
    disposal_index = {node: s for s, node in enumerate(net.disposal_nodes)}
    plans = []
    for v, truck in enumerate(model.fleet):
        index = solution.Value(routing.NextVar(routing.Start(v)))
        visits: list[Visit] = []
        last = vehicles[truck].depot
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
            visits.append(Visit("disposal", int(net.final_site[last, vehicles[truck].depot])))
        plans.append(RoutePlan(vehicle=truck, visits=visits))
    return plans
