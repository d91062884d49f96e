"""Handler of ``binsight route solve``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from binsight.errors import BinsightError

__all__ = ["benchmark_result", "solve"]

logger = logging.getLogger(__name__)


def benchmark_result(outcome: Any) -> dict[str, Any]:
    """The route result (docs/contracts.md) of a VRPLIB/Solomon instance: customer ids per route, no depot."""
    inst = outcome.inst
    return {
        "name": inst.name,
        "cost": outcome.cost,
        "routes": [[inst.clients[i].id for i in r.clients] for r in outcome.solution.routes if r.clients],
        "vehicles": sum(1 for r in outcome.solution.routes if r.clients),
        "feasible": outcome.feasible,
        "violations": outcome.violations,
        "engine": outcome.solution.engine,
        "elapsed_s": round(outcome.elapsed_s, 2),
        **({"portfolio": [run.summary() for run in outcome.runs]} if outcome.runs else {}),
    }


def solve(args: argparse.Namespace) -> int:
    """Solve ``args.instance`` and print the result (one JSON object with ``--json``)."""
    from binsight.server.routing import ENGINES
    from binsight.server.routing.instance_builder import plan_problem
    from binsight.server.routing.planner import solve_instance
    from binsight.server.routing.readers import read_instance_file

    if args.engine not in ENGINES:
        raise BinsightError(f"--engine {args.engine}: expected one of {', '.join(ENGINES)}")
    if args.time_limit <= 0:
        raise BinsightError(f"--time-limit {args.time_limit}: must be positive")
    loaded = read_instance_file(args.instance)
    if isinstance(loaded, dict):
        base = Path(args.instance).resolve().parent
        result = plan_problem(loaded, args.time_limit, seed=args.seed, engine=args.engine, base_dir=base)
    else:
        result = benchmark_result(solve_instance(loaded, args.time_limit, seed=args.seed, engine=args.engine))
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_human(result)
    return 0


def _print_human(result: dict[str, Any]) -> None:
    print(f"cost {result['cost']}  feasible {result['feasible']}  engine {result.get('engine')}")
    for k, route in enumerate(result["routes"], 1):
        if isinstance(route, dict):
            stops = " ".join(s["id"] for s in route["stops"])
            print(f"{route['truck']}: {stops}  ({route['distance_km']} km, {route['duration_min']} min)")
        else:
            print(f"Route #{k}: {' '.join(route)}")
    for v in result.get("violations", []):
        print(f"violation: {v}")
