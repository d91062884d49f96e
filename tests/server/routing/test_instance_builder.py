"""binsight problems: each constraint changes the plan, and impossible bins are named.

Distances are straight lines at 60 km/h, so 1 km takes 1 minute (see conftest.problem).
"""

from __future__ import annotations

from typing import Any

import pytest

from binsight.errors import DataError
from binsight.server.routing import plan
from binsight.server.routing.instance_builder import InfeasibleProblem, plan_problem

from .conftest import at_km, bin_at, hhmm, problem

ENGINES = ["auto", "ortools"]


def stops(route: dict[str, Any]) -> list[str]:
    return [s["id"] for s in route["stops"]]


def solve(p: dict[str, Any], engine: str = "auto", limit: float = 1.0) -> dict[str, Any]:
    result = plan_problem(p, limit, engine=engine)  # type: ignore[arg-type]
    assert result["feasible"], result["violations"]
    return result


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_forces_a_second_disposal_trip(engine: str) -> None:
    """Two 600 l bins, a 1000 l truck: it unloads between them (one trip would do without capacity)."""
    p = problem(
        [bin_at("a", 1, volume_l=600), bin_at("b", 2, volume_l=600)],
        trucks=[{"id": "t1", "depot": "depot", "capacity_l": 1000}],
        disposal=[{"id": "tip", **at_km(1.5)}],
    )
    r = solve(p, engine)
    (route,) = r["routes"]
    assert stops(route).count("tip") == 2
    assert max(s["load_after_l"] for s in route["stops"]) <= 1000
    assert route["collected_l"] == 1200


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_without_disposal_sites_needs_two_trucks(engine: str) -> None:
    """Without disposal sites a truck unloads at the depot, so 1200 l needs two 1000 l trucks."""
    trucks = [{"id": f"t{i}", "depot": "depot", "capacity_l": 1000} for i in (1, 2)]
    r = solve(problem([bin_at("a", 1, volume_l=600), bin_at("b", 2, volume_l=600)], trucks=trucks), engine)
    assert len(r["routes"]) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_last_stop_before_the_depot_is_a_disposal_site(engine: str) -> None:
    """The tip 5 km away is visited before going home, although home is 1 km from the bin."""
    p = problem([bin_at("a", 1)], disposal=[{"id": "tip", **at_km(5), "service_min": 10}])
    r = solve(p, engine)
    (route,) = r["routes"]
    assert stops(route) == ["depot", "a", "tip", "depot"]
    assert route["distance_km"] == pytest.approx(10, abs=0.01)
    assert route["stops"][-1]["load_after_l"] == 0


def test_nearest_disposal_site_is_chosen_for_the_last_unload() -> None:
    """Of two tips, the one on the way home is used."""
    p = problem(
        [bin_at("a", 4)],
        disposal=[{"id": "far", **at_km(-6)}, {"id": "near", **at_km(2)}],
    )
    (route,) = solve(p)["routes"]
    assert stops(route) == ["depot", "a", "near", "depot"]


@pytest.mark.parametrize("engine", ENGINES)
def test_time_windows_split_the_work(engine: str) -> None:
    """Bins 10 km apart on both sides, both due by 06:15: one truck cannot serve both in time."""
    trucks = [
        {"id": f"t{i}", "depot": "depot", "capacity_l": 1000, "shift": ["06:00", "14:00"]} for i in (1, 2)
    ]
    bins = [bin_at("east", 10, window=["06:00", "06:15"]), bin_at("west", -10, window=["06:00", "06:15"])]
    r = solve(problem(bins, trucks=trucks), engine)
    assert len(r["routes"]) == 2
    for route in r["routes"]:
        for s in route["stops"]:
            if s["kind"] == "bin":
                assert hhmm("06:00") <= hhmm(s["start"]) <= hhmm("06:15")


@pytest.mark.parametrize("engine", ENGINES)
def test_time_window_orders_the_stops(engine: str) -> None:
    """The far bin opens first, so it is served first, against the nearest-first order."""
    bins = [bin_at("near", 1, 1, window=["07:00", "07:30"]), bin_at("far", 3, window=["06:00", "06:10"])]
    (route,) = solve(problem(bins), engine)["routes"]
    assert stops(route) == ["depot", "far", "near", "depot"]


@pytest.mark.parametrize("engine", ENGINES)
def test_maximum_duration_needs_a_second_truck(engine: str) -> None:
    """Bins 10 km each side, 30 min per route at most: two routes of 20 min, not one of 40."""
    trucks = [{"id": f"t{i}", "depot": "depot", "capacity_l": 1000, "max_duration_min": 30} for i in (1, 2)]
    r = solve(problem([bin_at("east", 10), bin_at("west", -10)], trucks=trucks), engine)
    assert len(r["routes"]) == 2
    assert all(route["duration_min"] <= 30 for route in r["routes"])


@pytest.mark.parametrize("engine", ENGINES)
def test_break_is_taken_by_its_latest_start(engine: str) -> None:
    """A route from 06:00 past 07:00 holds a 30 min break starting by 07:00 (60 min into the shift)."""
    truck = {
        "id": "t1",
        "depot": "depot",
        "capacity_l": 1000,
        "shift": ["06:00", "14:00"],
        "break": {"after_min": 60, "duration_min": 30},
    }
    bins = [bin_at("early", 20, window=["06:00", "06:25"]), bin_at("late", 20, 1, window=["07:10", "08:00"])]
    (route,) = solve(problem(bins, trucks=[truck]), engine)["routes"]
    breaks = [s for s in route["stops"] if s["kind"] == "break"]
    assert len(breaks) == 1
    assert hhmm(breaks[0]["start"]) <= hhmm("07:00")
    assert hhmm(breaks[0]["depart"]) - hhmm(breaks[0]["start"]) == 30
    assert route["duration_min"] >= 40 + 1 + 30  # driving + the break


def test_break_that_does_not_fit_needs_a_second_truck() -> None:
    """A 60 min break due by 06:30 cannot fit between bins due at 06:40 and 07:20 (20 km apart)."""
    trucks = [
        {
            "id": f"t{i}",
            "depot": "depot",
            "capacity_l": 1000,
            "shift": ["06:00", "10:00"],
            "break": {"after_min": 30, "duration_min": 60},
        }
        for i in (1, 2)
    ]
    bins = [bin_at("a", 10, window=["06:00", "06:40"]), bin_at("b", -10, window=["06:00", "07:20"])]
    r = solve(problem(bins, trucks=trucks), "auto", limit=2.0)
    assert len(r["routes"]) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_mandatory_bin_is_collected_however_far(engine: str) -> None:
    """An empty mandatory bin 30 km out is collected; an optional one like it is not."""
    bins = [
        bin_at("must", 30, fill=0.0, mandatory=True),
        bin_at("may", -30, fill=0.0, mandatory=False),
    ]
    r = solve(problem(bins), engine)
    assert {i["id"] for i in r["included"]} == {"must"}
    assert {s["id"] for s in r["skipped"]} == {"may"}
    assert "mandatory" in r["included"][0]["reason"]


@pytest.mark.parametrize("engine", ENGINES)
def test_prize_collecting_takes_full_bins_on_the_way(engine: str) -> None:
    """A 95% bin 0.5 km off the way is taken; a 50% bin 5 km off it is skipped, with both reasons."""
    bins = [
        bin_at("route", 10, mandatory=True),
        bin_at("full-nearby", 5, 0.25, fill=0.95, mandatory=False),
        bin_at("half-far", 5, 2.5, fill=0.5, mandatory=False),
    ]
    r = solve(problem(bins), engine)
    included = {i["id"]: i["reason"] for i in r["included"]}
    skipped = {s["id"]: s["reason"] for s in r["skipped"]}
    assert set(included) == {"route", "full-nearby"}
    assert set(skipped) == {"half-far"}
    assert "fill 95%" in included["full-nearby"]
    assert "more than" in skipped["half-far"]


def test_heterogeneous_fleet_uses_the_big_truck_for_the_big_load() -> None:
    """A 3000 l load fits only the larger truck."""
    trucks = [
        {"id": "small", "depot": "depot", "capacity_l": 1000},
        {"id": "big", "depot": "depot", "capacity_l": 5000},
    ]
    r = solve(problem([bin_at("a", 1, volume_l=3000)], trucks=trucks))
    assert [route["truck"] for route in r["routes"]] == ["big"]


def test_several_depots_each_serve_their_side() -> None:
    """Two depots 40 km apart each take the bin next to them."""
    p = problem(
        [bin_at("w", -19), bin_at("e", 19)],
        trucks=[
            {"id": "tw", "depot": "west", "capacity_l": 1000},
            {"id": "te", "depot": "east", "capacity_l": 1000},
        ],
    )
    p["depots"] = [{"id": "west", **at_km(-20)}, {"id": "east", **at_km(20)}]
    r = solve(p)
    served = {route["truck"]: [s for s in stops(route) if s in ("w", "e")] for route in r["routes"]}
    assert served == {"tw": ["w"], "te": ["e"]}


def test_bin_bigger_than_every_truck_is_named() -> None:
    """A mandatory bin that fits no truck is an error naming it, not an empty plan."""
    p = problem([bin_at("ok", 1), bin_at("huge-bin", 2, volume_l=50000)])
    with pytest.raises(InfeasibleProblem, match="bin huge-bin: its load of 50000 l exceeds every truck"):
        plan(p, 1.0)


def test_window_outside_every_shift_is_named() -> None:
    """A mandatory bin open only in the evening cannot be served by day shifts."""
    p = problem([bin_at("night-bin", 1, window=["20:00", "21:00"])])
    with pytest.raises(
        InfeasibleProblem, match="bin night-bin: no truck can reach it for its window 20:00-21:00"
    ):
        plan(p, 1.0)


def test_unreachable_optional_bin_is_skipped_with_reason() -> None:
    """An optional bin no truck can reach is left out, and the plan says why."""
    r = solve(problem([bin_at("a", 1), bin_at("night", 1, 1, window=["20:00", "21:00"], mandatory=False)]))
    (skip,) = r["skipped"]
    assert skip["id"] == "night" and "no truck can reach it" in skip["reason"]


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"trucks": []}, "trucks"),
        ({"bins": [{"id": "b", "lat": 0, "lon": 0, "volume_l": -5}]}, r"bins\.0\.volume_l"),
        ({"bins": [{"id": "b", "lat": 0, "lon": 0, "volume_l": 5, "colour": "red"}]}, "colour: unknown key"),
        ({"bins": [{"id": "b", "lat": 0, "lon": 0, "volume_l": 5, "window": ["9h", "10:00"]}]}, "not a time"),
        ({"trucks": [{"id": "t", "depot": "nowhere", "capacity_l": 5}]}, "unknown depot 'nowhere'"),
        ({"distance": {"method": "osrm"}}, "needs 'url'"),
    ],
)
def test_malformed_problem_names_the_key(patch: dict[str, Any], match: str) -> None:
    """Malformed problems are DataErrors naming the offending key."""
    p = problem([bin_at("a", 1)])
    p.update(patch)
    with pytest.raises(DataError, match=match):
        plan(p, 1.0)


def test_result_has_the_contract_fields() -> None:
    """The result carries the fields docs/contracts.md promises, stops timed and loaded."""
    r = solve(problem([bin_at("a", 1, fill=0.5, service_min=3)], disposal=[{"id": "tip", **at_km(2)}]))
    assert {"feasible", "cost", "routes", "included", "skipped"} <= set(r)
    route = r["routes"][0]
    assert {"truck", "stops", "distance_km", "duration_min", "collected_l"} <= set(route)
    stop = route["stops"][1]
    assert {"id", "kind", "lat", "lon", "arrive", "depart", "load_after_l", "volume_l", "fill"} <= set(stop)
    assert stop["load_after_l"] == 100 and stop["kind"] == "bin"
    assert hhmm(stop["depart"]) - hhmm(stop["arrive"]) == 3
    assert r["cost"] == pytest.approx(4.0, abs=0.01)


def test_no_bins_no_routes() -> None:
    """An empty day is a feasible plan without routes."""
    r = solve(problem([]))
    assert r["routes"] == [] and r["included"] == [] and r["skipped"] == []


def test_only_worthless_optional_bins_send_no_truck() -> None:
    """A 10% bin 50 km away is not worth a trip; the reason says so."""
    r = solve(problem([bin_at("x", 50, fill=0.1, mandatory=False)], disposal=[{"id": "tip", **at_km(1)}]))
    assert r["routes"] == []
    assert r["skipped"] == [
        {"id": "x", "reason": "optional, fill 10%: worth 0.03 km, less than any trip to it"}
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_disposal_trips_reach_the_brute_force_optimum(engine: str) -> None:
    """Six bins, two tips, one truck holding two bins: the plan's distance is the proven optimum."""
    import itertools

    from binsight.server.routing.instance_builder import build_instance, parse_problem

    xy = [(3, 1), (-2, 4), (5, -3), (-4, -2), (1, 6), (6, 3)]
    p = problem(
        [bin_at(f"b{k}", x, y, volume_l=400) for k, (x, y) in enumerate(xy)],
        trucks=[{"id": "t1", "depot": "depot", "capacity_l": 800}],
        disposal=[{"id": "tip-e", **at_km(4, 0)}, {"id": "tip-w", **at_km(-3, 2)}],
    )
    inst = build_instance(parse_problem(p)).inst
    d = inst.dist
    tips = [s.loc for s in inst.disposal]
    bins = [c.loc for c in inst.clients]

    def via(a: int, b: int) -> int:
        return min(int(d[a, s] + d[s, b]) for s in tips)

    best = 10**12
    for perm in itertools.permutations(bins):
        f = [0] + [10**12] * len(perm)  # f[j]: best cost with perm[:j] collected, truck at perm[j-1]
        for j in range(1, len(perm) + 1):
            for i in range(max(0, j - 2), j):  # a trip holds at most two bins
                link = d[0, perm[i]] if i == 0 else via(perm[i - 1], perm[i])
                inner = sum(int(d[perm[k], perm[k + 1]]) for k in range(i, j - 1))
                f[j] = min(f[j], f[i] + int(link) + inner)
        best = min(best, f[-1] + via(perm[-1], 0))
    r = solve(p, engine, limit=2.0)
    assert round(r["cost"] * 1000) == best
