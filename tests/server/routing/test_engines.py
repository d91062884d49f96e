"""The two engines called directly, on tiny instances whose optimum is known by hand.

The planner's tests (test_planner.py) go through :func:`solve_instance`, which checks and may
combine the engines; these call :func:`solve_pyvrp` and :func:`solve_ortools` on a
:class:`Network` and check what each returns with a walk of their own, independent of
:mod:`binsight.server.routing.schedule`.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from binsight.server.routing.instance import Instance, Job, Site, Vehicle
from binsight.server.routing.instance_builder import build_instance, parse_problem
from binsight.server.routing.network import Network
from binsight.server.routing.ortools_engine import solve_ortools
from binsight.server.routing.planner import check
from binsight.server.routing.pyvrp_engine import solve_pyvrp
from binsight.server.routing.solution import EngineSolution

from .conftest import at_km, bin_at, problem

ENGINES = {
    "pyvrp": lambda net: solve_pyvrp(net, 0.3, seed=1),
    "ortools": lambda net: solve_ortools(net, 0.5),
}


def line_instance(xs: list[int], clients: list[Job], vehicles: list[Vehicle]) -> Instance:
    """Locations on a line at ``xs`` (the depot first); distance and travel time are |x - x'|."""
    x = np.asarray(xs, dtype=np.int64)
    dist = np.abs(x[:, None] - x[None, :])
    xy = np.stack([x, np.zeros_like(x)], axis=1).astype(float)
    return Instance("line", "vrptw", dist, dist.copy(), [Site("depot", 0)], clients, vehicles, xy=xy)


def capacity_instance() -> Instance:
    """Two bins of 6 east of the depot, trucks of 10: two trips, 2*10 + 2*20 = 60 (one trip: 40)."""
    clients = [Job("a", 1, demand=6), Job("b", 2, demand=6)]
    return line_instance([0, 10, 20], clients, [Vehicle("t", capacity=10, count=2)])


def window_instance() -> Instance:
    """One bin either side of the depot, the west one due by 15: west first, 10 + 20 + 10 = 40."""
    clients = [Job("east", 1, demand=1, tw_late=100), Job("west", 2, demand=1, tw_late=15)]
    return line_instance([0, 10, -10], clients, [Vehicle("t", capacity=10, tw_late=200)])


def walk(inst: Instance, solution: EngineSolution) -> tuple[int, list[list[str]]]:
    """Total distance and the client ids per route; asserts capacity, windows, shifts, coverage."""
    vehicles = inst.vehicle_list()
    total, orders, seen = 0, [], []
    for route in solution.routes:
        veh = vehicles[route.vehicle]
        home = inst.depots[veh.depot].loc
        prev, t, load = home, veh.tw_early, 0
        for visit in route.visits:
            assert visit.kind == "client"  # no disposal sites in these instances
            job = inst.clients[visit.index]
            total += int(inst.dist[prev, job.loc])
            t = max(t + int(inst.dur[prev, job.loc]), job.tw_early)
            assert t <= job.tw_late, f"{job.id} served at {t}, due by {job.tw_late}"
            t += job.service
            load += job.demand
            prev = job.loc
        assert load <= veh.capacity, f"truck {route.vehicle} carries {load} > {veh.capacity}"
        total += int(inst.dist[prev, home])
        assert t + int(inst.dur[prev, home]) <= veh.tw_late
        orders.append([inst.clients[v.index].id for v in route.visits])
        seen += route.clients
    assert len(seen) == len(set(seen)), "a bin visited twice"
    assert {i for i, c in enumerate(inst.clients) if c.required} <= set(seen), "a mandatory bin left out"
    return total, orders


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_makes_two_trips(engine: str) -> None:
    """Neither truck carries more than 10, so each bin gets its own trip: the optimum, 60."""
    inst = capacity_instance()
    solution = ENGINES[engine](Network.build(inst))
    total, orders = walk(inst, solution)
    assert solution.engine == engine
    assert total == 60
    assert sorted(orders) == [["a"], ["b"]]


@pytest.mark.parametrize("engine", ENGINES)
def test_time_window_decides_the_order(engine: str) -> None:
    """The west bin is due by 15, so it comes first; both orders cost the optimum, 40."""
    inst = window_instance()
    solution = ENGINES[engine](Network.build(inst))
    total, orders = walk(inst, solution)
    assert total == 40
    assert orders == [["west", "east"]]


@pytest.mark.parametrize(("prize", "taken"), [(10, False), (1000, True)])
def test_ortools_takes_an_optional_bin_only_when_worth_the_detour(prize: int, taken: bool) -> None:
    """An optional bin 50 out (a 100 detour) is skipped for a prize of 10 and taken for 1000."""
    clients = [Job("near", 1, demand=1), Job("far", 2, demand=1, required=False, prize=prize)]
    inst = line_instance([0, 10, 50], clients, [Vehicle("t", capacity=10)])
    solution = solve_ortools(Network.build(inst), 0.5)
    total, orders = walk(inst, solution)
    assert orders == ([["near", "far"]] if taken else [["near"]])
    assert total == (100 if taken else 20)
    # Objective = distance + prizes of skipped bins: the optimum of the prize-collecting problem.
    assert solution.detail == f"ortools objective {100 if taken else 20 + prize}"


def test_ortools_warm_started_from_pyvrp_keeps_the_optimum() -> None:
    """PyVRP's routes are read into OR-Tools as its first solution and the optimum survives."""
    inst = capacity_instance()
    net = Network.build(inst)
    first = solve_pyvrp(net, 0.3, seed=1)
    solution = solve_ortools(net, 0.5, initial=first)
    total, _ = walk(inst, solution)
    assert total == 60


def test_ortools_leaves_out_a_mandatory_bin_no_truck_can_serve() -> None:
    """A bin due before any truck can reach it: OR-Tools drops it (at its prohibitive price) rather
    than fail, so the exact check names it as the unserved mandatory bin."""
    inst = line_instance([0, 10], [Job("late", 1, demand=1, tw_late=5)], [Vehicle("t", capacity=10)])
    solution = solve_ortools(Network.build(inst), 0.3)
    assert solution.routes == []
    assert check(inst, solution).unserved_required == [0]


def test_ortools_warm_start_with_disposal_sites_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    """With disposal sites (route ends are nodes of their own) PyVRP's routes still reach OR-Tools as
    its first solution, so its plan is no worse than PyVRP's."""
    p = problem(
        [bin_at(f"b{i}", 1 + i, (-1) ** i, volume_l=400) for i in range(8)],
        trucks=[{"id": f"t{i}", "depot": "depot", "capacity_l": 1000} for i in (1, 2)],
        disposal=[{"id": "tip", **at_km(4, 2), "service_min": 5}],
    )
    inst = build_instance(parse_problem(p)).inst
    net = Network.build(inst)
    first = check(inst, solve_pyvrp(net, 0.3, seed=1))
    assert first.feasible
    with caplog.at_level(logging.INFO, logger="binsight.server.routing.ortools_engine"):
        polished = check(inst, solve_ortools(net, 0.5, initial=first.solution))
    assert "warm start rejected" not in caplog.text
    assert polished.feasible and polished.objective <= first.objective
