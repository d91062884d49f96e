"""Choose an engine per problem, run it, and check the answer exactly.

``auto``: PyVRP for everything it models. When trucks take breaks, PyVRP solves a conservatively
tightened problem (see :func:`~binsight.server.routing.pyvrp_engine.break_safe_windows`) with 70% of
the time; if its routes are not exactly feasible, OR-Tools, which models breaks exactly, starts from
them for the rest; if they are, PyVRP continues from them for the rest. Problems above
:data:`DECOMPOSE_ABOVE` clients are split first (:mod:`binsight.server.routing.decompose`).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass, field

from binsight.server.routing import ENGINES, Engine
from binsight.server.routing.instance import Instance
from binsight.server.routing.network import Network
from binsight.server.routing.schedule import RouteSchedule, schedule_route
from binsight.server.routing.solution import EngineRun, EngineSolution

__all__ = ["DECOMPOSE_ABOVE", "ENGINES", "Outcome", "solve_instance"]

logger = logging.getLogger(__name__)

DECOMPOSE_ABOVE = 1500
STALL_MIN = 2_000  # PyVRP iterations without improvement before a binsight problem stops early
STALL_PER_CLIENT = 50


@dataclass
class Outcome:
    """A checked solution: schedules per route, what is violated, what is left out, the cost."""

    inst: Instance
    solution: EngineSolution
    schedules: list[RouteSchedule]
    unserved_required: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    #: With ``engine="portfolio"``: how each engine fared (the one kept has ``won``).
    runs: list[EngineRun] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [
            f"{self.inst.vehicle_list()[s.vehicle].id}: {v}" for s in self.schedules for v in s.violations
        ]

    @property
    def feasible(self) -> bool:
        return not self.violations and not self.unserved_required

    @property
    def distance(self) -> int:
        return sum(s.distance for s in self.schedules)

    @property
    def served(self) -> set[int]:
        return {i for r in self.solution.routes for i in r.clients}

    @property
    def penalty(self) -> int:
        served = self.served
        return sum(c.prize for i, c in enumerate(self.inst.clients) if not c.required and i not in served)

    @property
    def objective(self) -> int:
        """What the engines minimise: distance plus the worth of optional bins left out."""
        return self.distance + self.penalty

    @property
    def cost(self) -> float:
        """Total distance in the instance's reporting unit (VRPLIB/DIMACS convention for benchmarks)."""
        value = self.distance / self.inst.cost_scale
        return round(value, 1) if self.inst.cost_scale == 10 else value


def check(inst: Instance, solution: EngineSolution, elapsed_s: float = 0.0) -> Outcome:
    """Schedule every route exactly and collect violations and unserved mandatory clients."""
    solution.routes = [r.tidy() for r in solution.routes if r.clients]
    schedules = [schedule_route(inst, r) for r in solution.routes if r.visits]
    seen: set[int] = set()
    duplicates = []
    for r in solution.routes:
        for i in r.clients:
            if i in seen:
                duplicates.append(i)
            seen.add(i)
    if duplicates:
        raise RuntimeError(f"engine {solution.engine} visited clients twice: {duplicates[:5]}")
    unserved = [i for i, c in enumerate(inst.clients) if c.required and i not in seen]
    return Outcome(inst, solution, schedules, unserved, elapsed_s)


def better(a: Outcome, b: Outcome) -> Outcome:
    """The feasible one; between equals, the lower distance plus skipped worth (``a`` on a tie)."""
    if a.feasible != b.feasible:
        return a if a.feasible else b
    return a if a.objective <= b.objective else b


def solve_instance(
    inst: Instance, time_limit_s: float, seed: int = 0, engine: Engine = "auto", decompose: bool = True
) -> Outcome:
    """Plan ``inst`` within about ``time_limit_s`` seconds with ``engine`` and check the result.

    With ``engine`` auto or pyvrp and ``decompose``, problems above :data:`DECOMPOSE_ABOVE` clients
    are solved in sectors. ``portfolio`` runs PyVRP and OR-Tools in two processes at once and keeps
    the better plan (:mod:`binsight.server.routing.portfolio`).
    """
    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "portfolio":
        from binsight.server.routing.portfolio import solve_portfolio

        return solve_portfolio(inst, time_limit_s, seed)
    if engine in ("auto", "pyvrp") and decompose and len(inst.clients) > DECOMPOSE_ABOVE:
        from binsight.server.routing.decompose import solve_decomposed

        sol = solve_decomposed(inst, time_limit_s, seed, solve=solve_instance)
        return check(inst, sol, time.perf_counter() - t0)
    net = Network.build(inst)
    if engine == "ortools":
        from binsight.server.routing.ortools_engine import solve_ortools

        sol = solve_ortools(net, time_limit_s - (time.perf_counter() - t0), seed)
        return check(inst, sol, time.perf_counter() - t0)
    from binsight.server.routing.pyvrp_engine import solve_pyvrp

    has_breaks = any(v.brk is not None for v in inst.vehicles)
    share = 0.7 if engine == "auto" and has_breaks else 1.0
    budget = share * time_limit_s - (time.perf_counter() - t0)
    # binsight problems stop early once the search stalls (a 10-bin day need not take the full
    # limit); benchmark instances always use the whole time, as the literature's runs do.
    stall = max(STALL_MIN, STALL_PER_CLIENT * len(inst.clients)) if inst.kind == "binsight" else None
    outcome = check(inst, solve_pyvrp(net, budget, seed, stall=stall), time.perf_counter() - t0)
    if engine == "pyvrp" or not has_breaks:
        return outcome
    rest = time_limit_s - (time.perf_counter() - t0)
    if outcome.feasible:
        # The exact check agrees: spend the time kept for OR-Tools searching on from PyVRP's best
        # (unless the search had already stalled).
        stalled = time.perf_counter() - t0 < 0.9 * share * time_limit_s
        if rest > 0.5 and not stalled:
            more = check(
                inst, solve_pyvrp(net, rest, seed + 1, initial=outcome.solution.raw, stall=stall), 0.0
            )
            outcome = better(more, outcome)
        outcome.elapsed_s = time.perf_counter() - t0
        return outcome
    if importlib.util.find_spec("ortools") is None:  # binsight-server installs it; be clear if not
        logger.warning(
            "OR-Tools is not installed: keeping PyVRP's plan, which breaks %d constraints",
            len(outcome.violations),
        )
        return outcome
    from binsight.server.routing.ortools_engine import solve_ortools

    logger.info("PyVRP plan breaks %d constraints; polishing with OR-Tools", len(outcome.violations))
    rest = max(1.0, rest)
    polished = check(inst, solve_ortools(net, rest, seed, initial=outcome.solution), 0.0)
    best = better(polished, outcome)
    best.elapsed_s = time.perf_counter() - t0
    return best
