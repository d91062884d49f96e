"""The exact checker: it times routes and reports each violated constraint, whatever the engine did."""

from __future__ import annotations

import numpy as np

from binsight.server.routing.instance import Break, Instance, Job, Site, Vehicle
from binsight.server.routing.schedule import schedule_route
from binsight.server.routing.solution import RoutePlan, Visit


def line(vehicle: Vehicle, jobs: list[Job], disposal: bool = False) -> Instance:
    """Locations 0..4 on a line, 10 units apart; location 4 is a disposal site when asked."""
    x = np.arange(5) * 10
    d = np.abs(x[:, None] - x[None, :]).astype(np.int64)
    return Instance(
        "line",
        "binsight",
        d,
        d.copy(),
        [Site("depot", 0)],
        jobs,
        [vehicle],
        [Site("tip", 4)] if disposal else [],
    )


def violations(inst: Instance, visits: list[Visit]) -> list[str]:
    return schedule_route(inst, RoutePlan(0, visits)).violations


def test_capacity_violation_is_reported() -> None:
    inst = line(Vehicle("v", capacity=5), [Job("a", 1, 3), Job("b", 2, 3)])
    assert violations(inst, [Visit("client", 0), Visit("client", 1)]) == ["bin b: load 6 exceeds capacity 5"]


def test_window_violation_is_reported() -> None:
    inst = line(Vehicle("v", capacity=9), [Job("a", 1, 1, tw_late=5)])
    assert "client a: service starts 10, after its window closes at 5" in violations(
        inst, [Visit("client", 0)]
    )


def test_unloading_last_is_required_with_disposal_sites() -> None:
    inst = line(Vehicle("v", capacity=9), [Job("a", 1, 1)], disposal=True)
    found = violations(inst, [Visit("client", 0)])
    assert "last stop before the depot is not a disposal site" in found
    assert violations(inst, [Visit("client", 0), Visit("disposal", 0)]) == []


def test_max_duration_and_shift_end_are_reported() -> None:
    inst = line(Vehicle("v", capacity=9, tw_late=50, max_duration=30), [Job("a", 3, 1)])
    found = violations(inst, [Visit("client", 0)])
    assert "lasts 60, more than the maximum 30" in found
    assert "returns at 60, after the shift ends at 50" in found


def test_break_is_inserted_and_delays_the_rest() -> None:
    inst = line(
        Vehicle("v", capacity=9, brk=Break(latest_start=15, duration=7)), [Job("a", 1, 1), Job("b", 2, 1)]
    )
    sched = schedule_route(inst, RoutePlan(0, [Visit("client", 0), Visit("client", 1)]))
    kinds = [s.kind for s in sched.stops]
    assert kinds == ["depot", "bin", "break", "bin", "depot"]
    brk = sched.stops[2]
    assert brk.start == 10 and brk.depart == 17
    assert sched.stops[-1].arrive == 40 + 7


def test_late_start_avoids_waiting() -> None:
    """The truck leaves so as to arrive when the window opens, not at the shift start."""
    inst = line(Vehicle("v", capacity=9), [Job("a", 1, 1, tw_early=100, tw_late=120)])
    sched = schedule_route(inst, RoutePlan(0, [Visit("client", 0)]))
    assert sched.stops[0].depart == 90 and sched.duration == 20
