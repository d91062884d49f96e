"""The solver-neutral instance every reader produces and every engine consumes.

All quantities are integers (PyVRP and OR-Tools both need them): distances and durations in the
instance's own units (rounded Euclidean for VRPLIB CVRP, tenths for Solomon, metres and seconds for
binsight problems). ``cost_scale`` turns the integer objective back into the reported cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["INF", "Break", "Instance", "Job", "Site", "Vehicle"]

INF = 2**40  # "unconstrained" for time windows and durations; far from int64 overflow when summed
Kind = Literal["cvrp", "vrptw", "binsight"]
IntMatrix = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Site:
    """A depot or a disposal site: ``loc`` indexes the matrices; ``service`` is spent per visit."""

    id: str
    loc: int
    service: int = 0
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Job:
    """A customer or bin to collect ``demand`` from, within ``[tw_early, tw_late]`` (service start).

    Optional jobs (``required=False``) may be skipped at the cost of ``prize``.
    """

    id: str
    loc: int
    demand: int
    service: int = 0
    tw_early: int = 0
    tw_late: int = INF
    required: bool = True
    prize: int = 0
    lat: float | None = None
    lon: float | None = None
    volume: float | None = None
    fill: float | None = None


@dataclass(frozen=True)
class Break:
    """A driver break of ``duration`` that must start by ``latest_start`` once the route lasts that long."""

    latest_start: int
    duration: int


@dataclass(frozen=True)
class Vehicle:
    """``count`` identical trucks based at ``depots[depot]``, working within ``[tw_early, tw_late]``."""

    id: str
    capacity: int
    depot: int = 0
    count: int = 1
    tw_early: int = 0
    tw_late: int = INF
    max_duration: int = INF
    brk: Break | None = None


@dataclass
class Instance:
    """A routing problem: locations with integer ``dist``/``dur`` matrices and what sits at them.

    With ``disposal`` sites, trucks unload there when full and the last stop before the depot is
    always a disposal site; without, trucks unload at their depot (classic CVRP).
    """

    name: str
    kind: Kind
    dist: IntMatrix
    dur: IntMatrix
    depots: list[Site]
    clients: list[Job]
    vehicles: list[Vehicle]
    disposal: list[Site] = field(default_factory=list)
    cost_scale: float = 1.0  # reported cost = integer distance / cost_scale
    time_unit_s: float = 1.0  # seconds per duration unit (binsight problems); 1 for benchmarks
    xy: np.ndarray | None = None  # per location (x, y) or (lon, lat); lets PyVRP use polar sectors

    def __post_init__(self) -> None:
        n = self.dist.shape[0]
        if self.dist.shape != (n, n) or self.dur.shape != (n, n):
            raise ValueError(f"{self.name}: distance/duration matrices must be square and equal in shape")
        if not self.depots:
            raise ValueError(f"{self.name}: at least one depot is needed")
        if not self.vehicles:
            raise ValueError(f"{self.name}: at least one vehicle is needed")

    @property
    def num_vehicles(self) -> int:
        return sum(v.count for v in self.vehicles)

    def vehicle_list(self) -> list[Vehicle]:
        """One entry per physical truck (types with ``count > 1`` repeated)."""
        return [v for v in self.vehicles for _ in range(v.count)]
