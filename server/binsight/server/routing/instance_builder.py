"""binsight route problems: JSON -> checked instance -> plan with a reason for every bin.

Units inside: metres and seconds after midnight of the service day. Optional bins are prizes worth
``optional.detour_km_at_full * fill ** optional.exponent`` km of driving; mandatory bins must be
collected. Bins that no truck could ever collect are caught before solving: a mandatory one is an
:class:`InfeasibleProblem` naming the bin, an optional one is skipped with that reason.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from binsight.config import format_validation_error
from binsight.errors import DataError
from binsight.server.routing import Engine
from binsight.server.routing.distances import matrices
from binsight.server.routing.instance import INF, Break, Instance, Job, Site, Vehicle
from binsight.server.routing.spec import BinSpec, RouteProblem

__all__ = ["Built", "InfeasibleProblem", "build_instance", "parse_problem", "plan_problem"]

logger = logging.getLogger(__name__)


class InfeasibleProblem(DataError):
    """No plan can exist: names the bin (or truck) that makes it so."""


def parse_problem(problem: dict[str, Any] | RouteProblem) -> RouteProblem:
    """Validate a problem dict; errors name the key (``bins.3.volume_l: ...``)."""
    if isinstance(problem, RouteProblem):
        return problem
    try:
        return RouteProblem.model_validate(problem)
    except ValidationError as exc:
        raise DataError(format_validation_error(exc, "route problem")) from exc


@dataclass
class Built:
    """An instance built from a problem, and the bins left out before solving (with why)."""

    problem: RouteProblem
    inst: Instance
    bin_of_job: list[int]  # Instance.clients[k] is problem.bins[bin_of_job[k]]
    pre_skipped: list[tuple[str, str]]


def _prize_m(problem: RouteProblem, b: BinSpec) -> int:
    fill = 1.0 if b.fill is None else min(1.0, b.fill)
    return round(problem.optional.detour_km_at_full * 1000 * float(fill**problem.optional.exponent))


def build_instance(problem: RouteProblem, base_dir: Path | None = None) -> Built:
    """Distances, trucks and bins in integer units; unreachable bins caught here.

    Raises
    ------
    InfeasibleProblem
        A mandatory bin holds more than any truck carries, or no truck can reach it within both
        its window and the truck's shift (and maximum duration).
    """
    places = [*problem.depots, *problem.disposal_sites, *problem.bins]
    ids = [p.id for p in places]
    lat = np.asarray([p.lat for p in places], dtype=float)
    lon = np.asarray([p.lon for p in places], dtype=float)
    dist, dur = matrices(problem.distance, ids, lat, lon, base_dir)
    nd, ns = len(problem.depots), len(problem.disposal_sites)
    depots = [Site(d.id, i, 0, d.lat, d.lon) for i, d in enumerate(problem.depots)]
    disposal = [
        Site(s.id, nd + i, round(s.service_min * 60), s.lat, s.lon)
        for i, s in enumerate(problem.disposal_sites)
    ]
    vehicles = _vehicles(problem)
    max_cap = max(v.capacity for v in vehicles)
    jobs: list[Job] = []
    bin_of_job: list[int] = []
    pre_skipped: list[tuple[str, str]] = []
    for k, b in enumerate(problem.bins):
        job = _job(problem, b, loc=nd + ns + k)
        why = _why_uncollectable(job, b, vehicles, max_cap=max_cap, depots=depots, disposal=disposal, dur=dur)
        if why is not None:
            if b.mandatory:
                raise InfeasibleProblem(f"bin {b.id}: {why}")
            pre_skipped.append((b.id, f"optional; skipped because {why}"))
            continue
        jobs.append(job)
        bin_of_job.append(k)
    inst = Instance(
        name=problem.name,
        kind="binsight",
        dist=dist,
        dur=dur,
        depots=depots,
        clients=jobs,
        vehicles=vehicles,
        disposal=disposal,
        cost_scale=1000.0,
        xy=np.stack([lon, lat], axis=1),
    )
    return Built(problem, inst, bin_of_job, pre_skipped)


def _vehicles(problem: RouteProblem) -> list[Vehicle]:
    """The trucks in seconds and whole litres, each at the index of its depot."""
    depot_index = {d.id: i for i, d in enumerate(problem.depots)}
    vehicles = []
    for t in problem.trucks:
        start, end = round(t.shift[0] * 60), round(t.shift[1] * 60)
        brk = None
        if t.break_ is not None and t.break_.duration_min > 0:
            brk = Break(start + round(t.break_.after_min * 60), round(t.break_.duration_min * 60))
        vehicles.append(
            Vehicle(
                id=t.id,
                capacity=math.floor(t.capacity_l),
                depot=depot_index[t.depot],
                count=t.count,
                tw_early=start,
                tw_late=end,
                max_duration=round(t.max_duration_min * 60) if t.max_duration_min else INF,
                brk=brk,
            )
        )
    return vehicles


def _job(problem: RouteProblem, b: BinSpec, loc: int) -> Job:
    """Bin ``b`` at matrix index ``loc`` as a job: litres rounded up, minutes as seconds."""
    return Job(
        id=b.id,
        loc=loc,
        demand=math.ceil(b.volume_l - 1e-9),
        service=round(b.service_min * 60),
        tw_early=round(b.window[0] * 60) if b.window else 0,
        tw_late=round(b.window[1] * 60) if b.window else INF,
        required=b.mandatory,
        prize=0 if b.mandatory else _prize_m(problem, b),
        lat=b.lat,
        lon=b.lon,
        volume=b.volume_l,
        fill=b.fill,
    )


def _why_uncollectable(
    job: Job,
    b: BinSpec,
    vehicles: list[Vehicle],
    *,
    max_cap: int,
    depots: list[Site],
    disposal: list[Site],
    dur: np.ndarray,
) -> str | None:
    """Why no truck could ever collect ``job`` (too heavy, or out of reach in time); None if one can."""
    if job.demand > max_cap:
        return f"its load of {job.demand} l exceeds every truck's capacity (largest {max_cap} l)"
    window = (job.tw_early, job.tw_late, job.service)

    def reaches(v: Vehicle) -> bool:
        return _reachable(v, depots[v.depot].loc, job.loc, window=window, dur=dur, disposal=disposal)

    if not any(reaches(v) for v in vehicles):
        span = f"window {_hhmm(job.tw_early)}-{_hhmm(job.tw_late)}" if b.window else "service"
        return f"no truck can reach it for its {span} and return within its shift and maximum duration"
    return None


def _reachable(
    v: Vehicle, home: int, loc: int, *, window: tuple[int, int, int], dur: np.ndarray, disposal: list[Site]
) -> bool:
    early, late, service = window
    arrive = v.tw_early + int(dur[home, loc])
    start = max(arrive, early)
    if start > late:
        return False
    if disposal:
        back = min(int(dur[loc, d.loc]) + d.service + int(dur[d.loc, home]) for d in disposal)
    else:
        back = int(dur[loc, home])
    # Leaving the depot as late as the window allows gives the shortest possible route.
    shortest = int(dur[home, loc]) + service + back
    return start + service + back <= v.tw_late and shortest <= v.max_duration


def _hhmm(seconds: int) -> str:
    if seconds >= INF:
        return "end of day"
    minutes = round(seconds / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def plan_problem(
    problem: dict[str, Any] | RouteProblem,
    time_limit_s: float,
    seed: int = 0,
    engine: Engine = "auto",
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Plan a binsight problem; the result dict of docs/contracts.md (JSON-ready)."""
    from binsight.server.routing import ENGINES
    from binsight.server.routing.planner import solve_instance
    from binsight.server.routing.result import plan_result

    if engine not in ENGINES:
        raise DataError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    t0 = time.perf_counter()
    parsed = parse_problem(problem)
    built = build_instance(parsed, base_dir)
    # The limit covers the whole call: distances first, and a little kept for checking and reasons.
    left = time_limit_s - (time.perf_counter() - t0) - 0.05 * time_limit_s
    outcome = solve_instance(built.inst, max(0.1, left), seed=seed, engine=engine)
    return {**plan_result(built, outcome), "engine_requested": engine}
