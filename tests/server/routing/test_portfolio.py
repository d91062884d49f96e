"""Every engine plans the planner's kind of day feasibly; the portfolio keeps the better plan, says
which engine won, and survives an engine that raises, dies or never answers.

The members that misbehave are module-level functions here: the portfolio sends each member to
its own process by name, so they must be importable there.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from binsight.server.routing import ENGINES, plan
from binsight.server.routing.instance import Instance
from binsight.server.routing.instance_builder import build_instance, parse_problem
from binsight.server.routing.portfolio import pyvrp_member, solve_portfolio
from binsight.server.routing.solution import EngineSolution, RoutePlan, Visit

from .conftest import at_km, bin_at, hhmm, problem


def day() -> dict[str, Any]:
    """Two trucks, windows, capacity that forces unloading, a break, one optional bin worth taking."""
    trucks = [
        {
            "id": f"t{i}",
            "depot": "depot",
            "capacity_l": 1000,
            "shift": ["06:00", "10:00"],
            "break": {"after_min": 120, "duration_min": 20},
        }
        for i in (1, 2)
    ]
    bins = [
        bin_at("n1", 3, 4, volume_l=600, window=["06:00", "07:00"]),
        bin_at("n2", 4, 5, volume_l=500),
        bin_at("e1", 8, 0, volume_l=400, window=["08:00", "09:30"]),
        bin_at("s1", 2, -6, volume_l=700),
        bin_at("s2", 1, -7, volume_l=300, window=["06:30", "08:00"]),
        bin_at("w1", -5, 0, volume_l=450),
        bin_at("opt", 3.5, 4.5, volume_l=100, mandatory=False, fill=0.9),
    ]
    return problem(bins, trucks=trucks, disposal=[{"id": "tip", **at_km(0, 2), "service_min": 5}])


def check_plan(p: dict[str, Any], result: dict[str, Any]) -> None:
    """Every mandatory bin served once, within its window; loads within capacity; no violation."""
    assert result["feasible"], result["violations"]
    windows = {b["id"]: b.get("window") for b in p["bins"]}
    served = [s["id"] for r in result["routes"] for s in r["stops"] if s["kind"] == "bin"]
    assert len(served) == len(set(served))
    assert {b["id"] for b in p["bins"] if b.get("mandatory", True)} <= set(served)
    for route in result["routes"]:
        assert not route["violations"]
        assert all(s["load_after_l"] <= 1000 for s in route["stops"])
        for s in route["stops"]:
            w = windows.get(s["id"]) if s["kind"] == "bin" else None
            if w:
                assert hhmm(w[0]) <= hhmm(s["start"]) <= hhmm(w[1]), (s["id"], s["start"], w)


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_plans_a_feasible_day(engine: str) -> None:
    """auto, pyvrp, ortools and portfolio all give a feasible plan that names its engine."""
    p = day()
    result = plan(p, 2.0, engine=engine)  # type: ignore[arg-type]
    check_plan(p, result)
    assert result["engine_requested"] == engine
    assert result["engine"] in ("pyvrp", "ortools")
    if engine in ("pyvrp", "ortools"):
        assert result["engine"] == engine


def test_portfolio_records_both_engines_and_the_winner() -> None:
    """Both engines answer; exactly one is marked won, and its cost is the plan's and the lowest."""
    result = plan(day(), 2.0, engine="portfolio")
    runs = {r["engine"]: r for r in result["portfolio"]}
    assert set(runs) == {"pyvrp", "ortools"}
    assert all(r["status"] == "ok" and r["feasible"] for r in runs.values())
    (winner,) = [r for r in runs.values() if r["won"]]
    assert winner["engine"] == result["engine"]
    assert winner["cost"] == pytest.approx(result["cost"], abs=1e-3)
    assert winner["cost"] <= min(r["cost"] for r in runs.values()) + result["penalty_km"] + 1e-9


def instance() -> Instance:
    return build_instance(parse_problem(day())).inst


def one_truck_per_bin(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    """A feasible but poor plan: every bin on a truck of its own while trucks last, then the rest
    on the last truck (checked like any engine's answer)."""
    del time_limit_s, seed
    n = inst.num_vehicles
    routes = [RoutePlan(k, [Visit("client", k), Visit("disposal", 0)]) for k in range(n - 1)]
    rest = [Visit("client", i) for i in range(n - 1, len(inst.clients))]
    routes.append(RoutePlan(n - 1, [v for c in rest for v in (c, Visit("disposal", 0))]))
    return EngineSolution(routes=routes, engine="poor")


def raises(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    raise ValueError("engine exploded")


def dies(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    os._exit(3)  # as a crash in native code or the OOM killer would end it: no answer, no exception


def hangs(inst: Instance, time_limit_s: float, seed: int) -> EngineSolution:
    time.sleep(3600)
    raise AssertionError("not reached")


@pytest.mark.parametrize("poor_first", [True, False])
def test_portfolio_keeps_the_better_plan_whichever_answers_first(poor_first: bool) -> None:
    """A real engine beats a poor one, listed first or second; the winner is recorded."""
    members = {"poor": one_truck_per_bin, "pyvrp": pyvrp_member}
    if not poor_first:
        members = dict(reversed(members.items()))
    out = solve_portfolio(instance(), 1.0, members=members)
    runs = {r.engine: r for r in out.runs}
    assert runs["poor"].status == runs["pyvrp"].status == "ok"
    assert runs["pyvrp"].won and not runs["poor"].won
    assert out.objective == runs["pyvrp"].objective < runs["poor"].objective
    assert out.solution.engine == "pyvrp"


@pytest.mark.parametrize(
    ("member", "status", "error"),
    [
        (raises, "failed", "ValueError: engine exploded"),
        (dies, "failed", "exit code 3"),
        (hangs, "timed out", "without an answer"),
    ],
)
def test_portfolio_survives_an_engine_that_fails(
    member: Any, status: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The other engine's plan is kept; the failure is recorded with its reason and logged."""
    t0 = time.perf_counter()
    out = solve_portfolio(instance(), 1.0, members={"pyvrp": pyvrp_member, "broken": member})
    runs = {r.engine: r for r in out.runs}
    assert out.feasible and runs["pyvrp"].won
    assert runs["broken"].status == status and error in (runs["broken"].error or "")
    assert f"broken {status}" in caplog.text
    assert time.perf_counter() - t0 < 60  # a hung engine is stopped, not waited for


def test_portfolio_raises_when_every_engine_fails() -> None:
    """Nothing to keep: one error that gives each engine's reason."""
    with pytest.raises(RuntimeError, match=r"raises failed: ValueError.*dies failed: .*exit code 3"):
        solve_portfolio(instance(), 1.0, members={"raises": raises, "dies": dies})


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_portfolio_works_on_one_core() -> None:
    """Pinned to one CPU (children inherit it), both engines still answer and a plan comes back."""
    code = (
        "import json, os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "sys.path.insert(0, sys.argv[1]); "
        "from routing.test_portfolio import day; from binsight.server.routing import plan; "
        "r = plan(day(), 2.0, engine='portfolio'); "
        "print(json.dumps([r['feasible'], [x['status'] for x in r['portfolio']]]))"
    )
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == '[true, ["ok", "ok"]]'


def _portfolio_in_worker() -> tuple[bool, list[str]]:
    out = solve_portfolio(instance(), 1.0, members={"pyvrp": pyvrp_member, "raises": raises})
    return out.feasible, [r.status for r in out.runs]


def test_portfolio_in_a_daemonic_pool_worker_runs_the_engines_in_turn() -> None:
    """A Pool worker may not start processes: the engines take turns, and a failure is still recorded."""
    with mp.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_portfolio_in_worker) == (True, ["ok", "failed"])
