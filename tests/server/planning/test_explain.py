"""Skip reasons checked against the plan: a detour that fits is the solver's miss, not "no capacity"."""

from __future__ import annotations

from typing import Any

from binsight.server.planning.explain import CLAIM, explain_skips

CLAIMED = f"optional, fill 90%: a 0.30 km detour would do, but {CLAIM} where it passes"


def _problem(capacity_l: float = 10_000, shift_end: str = "14:00") -> dict[str, Any]:
    return {
        "name": "2026-12-04",
        "distance": {"method": "haversine", "detour": 1.3, "speed_kmh": 25},
        "depots": [{"id": "depot", "lat": 52.37, "lon": 4.89}],
        "disposal_sites": [{"id": "tip", "lat": 52.38, "lon": 4.90, "service_min": 10}],
        "trucks": [
            {"id": "truck-1", "depot": "depot", "capacity_l": capacity_l, "shift": ["06:00", shift_end]},
            {"id": "truck-2", "depot": "depot", "capacity_l": capacity_l, "shift": ["06:00", shift_end]},
        ],
        "bins": [
            {"id": "a", "lat": 52.372, "lon": 4.892, "volume_l": 900, "fill": 0.9, "mandatory": True},
            {"id": "b", "lat": 52.374, "lon": 4.894, "volume_l": 900, "fill": 0.9, "mandatory": True},
            {
                "id": "near",
                "lat": 52.3735,
                "lon": 4.8935,
                "volume_l": 900,
                "fill": 0.9,
                "mandatory": False,
                "service_min": 2,
            },
        ],
    }


def _result(load_after_b: float = 1800, back: str = "09:15") -> dict[str, Any]:
    stops = [
        {"kind": "depot", "id": "depot", "arrive": "06:00", "depart": "06:00", "load_after_l": 0},
        {"kind": "bin", "id": "a", "arrive": "06:05", "depart": "06:07", "load_after_l": 900},
        {"kind": "bin", "id": "b", "arrive": "06:10", "depart": "06:12", "load_after_l": load_after_b},
        {"kind": "disposal", "id": "tip", "arrive": "06:20", "depart": "06:30", "load_after_l": 0},
        {"kind": "depot", "id": "depot", "arrive": back, "depart": back, "load_after_l": 0},
    ]
    return {
        "routes": [{"truck": "truck-1", "stops": stops}],
        "skipped": [{"id": "near", "reason": CLAIMED}, {"id": "x", "reason": "no usable reading yet"}],
    }


def test_a_detour_that_fits_is_the_solvers_miss() -> None:
    """truck-1 has room and hours left: the reason says the solver did not find it, and names idle truck-2."""
    skipped = explain_skips(_problem(), _result())
    reason = next(s["reason"] for s in skipped if s["id"] == "near")
    assert CLAIM not in reason
    assert "on truck-1 after a" in reason or "on truck-1 after b" in reason
    assert "did not find it within its time limit" in reason
    assert "idle truck-2" in reason
    assert {"id": "x", "reason": "no usable reading yet"} in skipped


def test_a_full_truck_is_said_full() -> None:
    """An extra bin anywhere before the tip adds to the 1,800 L on board there: a 2,000 L truck is full.

    (After the last tip it would need another trip to the tip, so that leg is no place for it.)
    """
    problem = _problem(capacity_l=2000)
    problem["trucks"] = problem["trucks"][:1]
    reason = explain_skips(problem, _result(load_after_b=1800))[0]["reason"]
    assert "finds the truck full (1,800 of 2,000 L on board, the bin holds 900 L)" in reason
    assert "idle" not in reason


def test_no_time_left_is_said_so() -> None:
    """A route that ends at its shift's end leaves no time for any detour."""
    problem = _problem(shift_end="09:15")
    problem["trucks"] = problem["trucks"][:1]
    reason = explain_skips(problem, _result(back="09:15"))[0]["reason"]
    assert "would make the truck late: its shift or a later stop's window leaves 0 min" in reason


def test_an_unreadable_problem_keeps_the_planners_reasons() -> None:
    """Checking must never cost the plan: a broken problem leaves the reasons as they were."""
    assert explain_skips({"trucks": []}, _result())[0]["reason"] == CLAIMED


def test_a_closing_window_later_on_leaves_no_time() -> None:
    """Hours left at the end do not help when a later stop's window closes as the truck arrives there."""
    problem = _problem()
    problem["trucks"] = problem["trucks"][:1]
    for b in problem["bins"]:
        if b["id"] == "b":
            b["window"] = ["06:00", "06:10"]
    result = _result()
    # Only the legs before b (depot->a, a->b) are cheap; b starts at 06:10, as its window closes.
    result["routes"][0]["stops"][2]["start"] = "06:10"
    for s in result["routes"][0]["stops"]:
        s.setdefault("start", s["arrive"])
    reason = explain_skips(problem, result)[0]["reason"]
    # Before b the detour would make b miss its window; after b it still fits (b's window is behind).
    assert "after a" not in reason and "after depot" not in reason
    assert "after b" in reason
