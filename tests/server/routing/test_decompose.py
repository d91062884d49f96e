"""Decomposition of large problems: sectors cover every bin once, and the joined plan is feasible."""

from __future__ import annotations

import pytest

from binsight.server.routing import planner
from binsight.server.routing.decompose import sectors
from binsight.server.routing.generate import city_problem
from binsight.server.routing.instance_builder import build_instance, parse_problem, plan_problem


def test_sectors_partition_bins_and_trucks() -> None:
    """Every bin lands in exactly one sector; every sector has a truck of its own depot."""
    built = build_instance(parse_problem(city_problem(300, 9, seed=2, n_depots=2)))
    parts = sectors(built.inst, size=60)
    clients = sorted(i for _, c, _ in parts for i in c)
    assert clients == list(range(len(built.inst.clients)))
    trucks = [t for _, _, ts in parts for t in ts]
    assert len(trucks) == len(set(trucks)) <= 9
    vehicles = built.inst.vehicle_list()
    for depot, _, ts in parts:
        assert ts and all(vehicles[t].depot == depot for t in ts)


def test_decomposed_plan_is_feasible(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the threshold lowered, a 120-bin problem is solved in sectors and checked whole."""
    monkeypatch.setattr(planner, "DECOMPOSE_ABOVE", 50)
    monkeypatch.setattr("binsight.server.routing.decompose.SECTOR_SIZE", 40)
    result = plan_problem(city_problem(120, 6, seed=3, breaks=False), 6.0)
    assert result["engine"] == "decomposed"
    assert result["feasible"], result["violations"]
    served = {i["id"] for i in result["included"]} | {s["id"] for s in result["skipped"]}
    assert len(served) == 120


def test_repair_round_uses_trucks_the_sectors_left_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sector given one 1000 l truck for 1200 l: its route is dissolved and a free truck helps."""
    from binsight.server.routing import decompose

    from .conftest import bin_at, problem

    trucks = [{"id": f"t{i}", "depot": "depot", "capacity_l": 1000} for i in (1, 2)]
    p = problem([bin_at("a", 1, volume_l=600), bin_at("b", -1, volume_l=600)], trucks=trucks)
    monkeypatch.setattr(planner, "DECOMPOSE_ABOVE", 1)
    monkeypatch.setattr(decompose, "sectors", lambda inst: [(0, [0, 1], [0])])
    result = plan_problem(p, 3.0)
    assert result["feasible"], result["violations"]
    assert "2 bins repaired" in result["engine_detail"]
    assert sorted(r["truck"] for r in result["routes"]) == ["t1", "t2"]
