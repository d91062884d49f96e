"""Small instances whose optimum is known by brute force are solved exactly, by both engines."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from binsight.server.routing.instance import Instance, Job, Site, Vehicle
from binsight.server.routing.planner import solve_instance


def random_instance(seed: int, n: int, windows: bool) -> Instance:
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 100, size=(n + 1, 2)).astype(float)
    dist = np.floor(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + 0.5).astype(np.int64)
    clients = []
    for i in range(1, n + 1):
        early, late = 0, 10**6
        if windows:
            early = int(rng.integers(0, 200))
            late = max(early, int(dist[0, i])) + int(rng.integers(30, 120))
        clients.append(Job(str(i), i, int(rng.integers(1, 5)), service=5, tw_early=early, tw_late=late))
    return Instance(
        name=f"rand{seed}",
        kind="vrptw" if windows else "cvrp",
        dist=dist,
        dur=dist.copy(),
        depots=[Site("0", 0)],
        clients=clients,
        vehicles=[Vehicle("v", capacity=8, count=n, tw_late=10**6)],
        xy=xy,
    )


def brute_force(inst: Instance) -> int:
    """Optimum over every customer order, each split optimally into feasible routes (Beasley's split)."""
    d, n = inst.dist, len(inst.clients)
    cap = inst.vehicles[0].capacity

    def route_cost(seq: tuple[int, ...]) -> int | None:
        t, load, cost, prev = 0, 0, 0, 0
        for c in seq:
            job = inst.clients[c]
            load += job.demand
            t = max(t + d[prev, job.loc], job.tw_early)
            if load > cap or t > job.tw_late:
                return None
            t += job.service
            cost += d[prev, job.loc]
            prev = job.loc
        return int(cost + d[prev, 0])

    best = 10**18
    for perm in itertools.permutations(range(n)):
        f = [0] + [10**18] * n
        for i in range(n):
            if f[i] >= best:
                continue
            for j in range(i + 1, n + 1):
                c = route_cost(perm[i:j])
                if c is None:
                    break
                f[j] = min(f[j], f[i] + c)
        best = min(best, f[n])
    return best


@pytest.mark.parametrize("engine", ["pyvrp", "ortools"])
@pytest.mark.parametrize(("seed", "windows"), [(1, False), (2, False), (3, True), (4, True)])
def test_small_instances_reach_the_brute_force_optimum(seed: int, windows: bool, engine: str) -> None:
    """Seven customers, capacity for about three each: both engines find the proven optimum."""
    inst = random_instance(seed, 7, windows)
    optimum = brute_force(inst)
    # OR-Tools' guided local search needs longer than PyVRP here, more so on a busy machine.
    out = solve_instance(inst, 1.0 if engine == "pyvrp" else 3.0, engine=engine)  # type: ignore[arg-type]
    assert out.feasible
    assert out.distance == optimum


def test_same_seed_same_plan() -> None:
    """Seeded runs are reproducible."""
    inst = random_instance(5, 7, False)
    a = solve_instance(inst, 0.5, seed=3)
    b = solve_instance(inst, 0.5, seed=3)
    assert [r.visits for r in a.solution.routes] == [r.visits for r in b.solution.routes]


def test_unknown_engine() -> None:
    """An engine name that does not exist is refused."""
    with pytest.raises(ValueError, match="unknown engine"):
        solve_instance(random_instance(1, 3, False), 1.0, engine="gurobi")  # type: ignore[arg-type]
