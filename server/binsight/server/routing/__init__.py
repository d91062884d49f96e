"""Route planning with PyVRP as the main engine, and OR-Tools for exact driver breaks and as a rival.

What ``engine="auto"`` does (see :mod:`binsight.server.routing.planner` and docs/routing.md): PyVRP
plans every problem it models, which is all of them but driver breaks; with breaks, PyVRP plans a
safely tightened problem and OR-Tools, which models breaks exactly, repairs its routes only when
the exact check still finds a violation. ``ortools`` runs OR-Tools alone, ``pyvrp`` PyVRP alone,
and ``portfolio`` both at once in two processes, keeping the better plan.

Importing this package is cheap; :func:`plan` loads the solvers on first use.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = ["ENGINES", "Engine", "plan"]

#: The route engines a plan can ask for (``[fleet] engine``, ``POST /api/plans`` ``engine``).
Engine = Literal["auto", "pyvrp", "ortools", "portfolio"]
ENGINES: tuple[Engine, ...] = get_args(Engine)


def plan(
    problem: dict[str, Any], time_limit_s: float, seed: int = 0, engine: Engine = "auto"
) -> dict[str, Any]:
    """Plan a route problem (the JSON of docs/contracts.md) within about ``time_limit_s`` seconds.

    Returns the result dict of docs/contracts.md: ``feasible``, ``cost`` (km), ``routes`` with
    timed stops, ``included`` and ``skipped`` bins with a reason each, and diagnostics, among them
    ``engine`` (the engine whose plan this is), ``engine_requested`` and, for a portfolio,
    ``portfolio`` (how each engine fared).

    Raises
    ------
    binsight.errors.DataError
        The problem is malformed (the message names the key), the engine is unknown, or
        :class:`~binsight.server.routing.instance_builder.InfeasibleProblem` when a mandatory bin cannot be
        collected by any truck (the message names the bin).
    """
    from binsight.server.routing.instance_builder import plan_problem

    return plan_problem(problem, time_limit_s, seed=seed, engine=engine)
