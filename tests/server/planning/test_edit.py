"""Moving a bin to another truck: re-timed, a tip trip added when the truck would overfill, and every
limit the move still breaks named with how far over (issue #18)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from binsight.server.planning.edit import EditError, move_bin

KM_LON = 1 / 111.195  # degrees of longitude per km on the equator


def _bin(bin_id: str, x_km: float, volume_l: float = 100) -> dict[str, Any]:
    return {"id": bin_id, "lat": 0.0, "lon": x_km * KM_LON, "volume_l": volume_l}


def _problem(bins: list[dict[str, Any]], trucks: list[dict[str, Any]]) -> dict[str, Any]:
    """Depot at 0 km, the tip at 1 km, straight lines at 60 km/h: 1 km takes 1 minute."""
    return {
        "name": "2026-12-09",
        "distance": {"method": "haversine", "detour": 1.0, "speed_kmh": 60},
        "depots": [{"id": "depot", "lat": 0.0, "lon": 0.0}],
        "disposal_sites": [{"id": "tip", "lat": 0.0, "lon": 1 * KM_LON}],
        "trucks": trucks,
        "bins": bins,
    }


def _truck(truck_id: str, capacity_l: float = 10_000, shift: tuple[str, str] = ("06:00", "14:00")) -> dict:
    return {"id": truck_id, "depot": "depot", "capacity_l": capacity_l, "shift": list(shift)}


def _plan(problem: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
    """A result with each bin on the truck ``where`` names, built by moves from an empty plan."""
    result: dict[str, Any] = {"routes": [], "skipped": []}
    for bin_id, truck in where.items():
        result = move_bin(problem, result, bin_id, truck)
    return result


def _bins_of(result: dict[str, Any], truck: str) -> list[str]:
    route = next((r for r in result["routes"] if r["truck"] == truck), {"stops": []})
    return [s["id"] for s in route["stops"] if s["kind"] == "bin"]


def test_a_move_that_fits_is_retimed_and_breaks_nothing() -> None:
    """The bin leaves t1 for t2; t2's route is timed from the depot; nothing is broken."""
    problem = _problem([_bin("a", 10), _bin("b", 20)], [_truck("t1"), _truck("t2")])
    before = _plan(problem, {"a": "t1", "b": "t1"})
    after = move_bin(problem, before, "b", "t2")
    assert _bins_of(after, "t1") == ["a"] and _bins_of(after, "t2") == ["b"]
    t2 = next(r for r in after["routes"] if r["truck"] == "t2")
    # depot -> b (20 km) -> tip (19 km) -> depot (1 km): 40 minutes.
    assert [s["kind"] for s in t2["stops"]] == ["depot", "bin", "disposal", "depot"]
    assert t2["duration_min"] == pytest.approx(40, abs=0.5)
    assert after["breaches"] == [] and after["edit"] == {"moved": "b", "to": "t2", "tip_trip_added": False}


def test_overfilling_adds_a_tip_trip_when_the_shift_allows() -> None:
    """600 L on a 1,000 L truck plus a 600 L bin: one more unloading before the bin, nothing broken."""
    problem = _problem(
        [_bin("a", 5, 600), _bin("b", 6, 600)], [_truck("t1", capacity_l=1000), _truck("t2", capacity_l=1000)]
    )
    before = _plan(problem, {"a": "t1", "b": "t2"})
    after = move_bin(problem, before, "b", "t1")
    t1 = next(r for r in after["routes"] if r["truck"] == "t1")
    assert [s["kind"] for s in t1["stops"]].count("disposal") == 2
    assert max(s["load_after_l"] for s in t1["stops"]) <= 1000
    assert after["breaches"] == [] and after["edit"]["tip_trip_added"] is True


def test_overload_is_named_with_the_litres_over() -> None:
    """A bin larger than what is left, and no time for a tip trip: the capacity breach says by how much."""
    problem = _problem(
        [_bin("a", 5, 700), _bin("b", 6, 500)],
        [_truck("t1", capacity_l=1000, shift=("06:00", "06:14")), _truck("t2")],
    )
    before = _plan(problem, {"a": "t1", "b": "t2"})
    assert before["breaches"] == []
    after = move_bin(problem, before, "b", "t1")
    capacity = [b for b in after["breaches"] if b["limit"] == "capacity"]
    assert len(capacity) == 1, after["breaches"]
    assert capacity[0]["truck"] == "t1" and capacity[0]["over"] == 200 and capacity[0]["unit"] == "L"
    # Named after the bin where the load peaks (a or b: both orders cost the same here).
    assert re.fullmatch(
        r"t1 carries 1,200 L after bin [ab], 200 L over its 1,000 L capacity", capacity[0]["text"]
    )


def test_running_past_the_shift_end_is_named_with_the_minutes_over() -> None:
    """A far bin on a one-hour shift: back at 07:21, 21 min after the shift ends at 07:00."""
    problem = _problem(
        [_bin("a", 10), _bin("far", 40)], [_truck("t1", shift=("06:00", "07:00")), _truck("t2")]
    )
    before = _plan(problem, {"a": "t1", "far": "t2"})
    after = move_bin(problem, before, "far", "t1")
    t1 = next(r for r in after["routes"] if r["truck"] == "t1")
    back = t1["stops"][-1]["arrive"]
    over = (int(back[:2]) - 7) * 60 + int(back[3:])
    assert over > 0
    shift = [b for b in after["breaches"] if b["limit"] == "shift_end"]
    assert [(b["truck"], b["over"], b["unit"]) for b in shift] == [("t1", over, "min")]
    assert shift[0]["text"] == f"t1 is back at the depot at {back}, {over} min after its shift ends at 07:00"


def test_a_limit_the_plan_already_broke_is_not_blamed_on_the_move() -> None:
    """t1 was already late; moving a bin that costs it nothing more of the shift is not refused."""
    problem = _problem(
        [_bin("far", 40), _bin("near", 40.0)], [_truck("t1", shift=("06:00", "07:00")), _truck("t2")]
    )
    before = _plan(problem, {"far": "t1", "near": "t2"})
    assert any("after the shift ends" in v for v in before["violations"])
    after = move_bin(problem, before, "near", "t1")
    assert after["breaches"] == []


@pytest.mark.parametrize(
    ("bin_id", "truck", "message"),
    [
        ("a", "t9", "truck 't9' is not in this plan"),
        ("zz", "t2", "bin 'zz' is not in"),
        ("a", "t1", "already on"),
    ],
)
def test_bad_moves_are_refused(bin_id: str, truck: str, message: str) -> None:
    """Unknown truck or bin, or a bin already on that truck: an EditError naming it."""
    problem = _problem([_bin("a", 10)], [_truck("t1"), _truck("t2")])
    with pytest.raises(EditError, match=message):
        move_bin(problem, _plan(problem, {"a": "t1"}), bin_id, truck)
