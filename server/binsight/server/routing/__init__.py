"""Route planning with OR-Tools (and PyVRP where it models the problem): CVRP, VRPTW and binsight's own.

Importing this package is cheap; :func:`plan` loads the solvers on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["plan"]


def plan(problem: dict[str, Any], time_limit_s: float, seed: int = 0) -> dict[str, Any]:
    """Plan a route problem (the JSON of docs/contracts.md) within about ``time_limit_s`` seconds.

    Returns the result dict of docs/contracts.md: ``feasible``, ``cost`` (km), ``routes`` with
    timed stops, ``included`` and ``skipped`` bins with a reason each, and diagnostics.

    Raises
    ------
    binsight.errors.DataError
        The problem is malformed (the message names the key), or
        :class:`~binsight.server.routing.instance_builder.InfeasibleProblem` when a mandatory bin cannot be
        collected by any truck (the message names the bin).
    """
    from binsight.server.routing.instance_builder import plan_problem

    return plan_problem(problem, time_limit_s, seed=seed)
