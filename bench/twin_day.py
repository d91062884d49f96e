"""One day's route problems of a large twin city: how long the server's planner takes (issue #14).

    nice .venv/bin/python bench/twin_day.py --bins 5000 --limits 1 10

Builds the world, runs the 14-day warm-up (the ``fixed`` schedule, no routing), then hands the first
measured day's problems of ``fixed`` and ``oracle`` (the planner's rule on the true levels) to
``routing.plan`` at each time limit, and prints one JSON line per plan: bins, wall time, km, routes.
"""

from __future__ import annotations

import argparse
import json
import time

from binsight.server.twin.policies import Fixed, Oracle
from binsight.server.twin.simulate import TwinConfig, _initial_state, _warmup_lifts, prepare, solve
from binsight.server.twin.world import WorldConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limits", type=float, nargs="+", default=[1.0])
    args = ap.parse_args()
    tw = TwinConfig(world=WorldConfig(bins=args.bins, weeks=1, seed=args.seed), policies=("fixed", "oracle"))
    run = prepare(tw)
    w = run.world
    state, warm = _initial_state(w), Fixed(w)
    for d in range(w.cfg.warmup_days):
        lifts: dict[int, list[tuple[int, float]]] = {}
        for h in range(24):
            if h == tw.plan_hour and run.is_service_day(d):
                lifts = _warmup_lifts(warm, run.view(state, d))
            state.advance(24 * d + h, w.inflow[:, 24 * d + h], lifts.get(24 * d + h, []), None)
    view = run.view(state, w.cfg.warmup_days)
    for name, policy in (("fixed", Fixed(w)), ("oracle", Oracle())):
        problem = policy.problem(view)
        for limit in args.limits:
            t0, c0 = time.perf_counter(), time.process_time()
            result = solve(problem, limit)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            line = {
                "policy": name,
                "bins": len(problem["bins"]),
                "mandatory": sum(b["mandatory"] for b in problem["bins"]),
                "trucks": len(problem["trucks"]),
                "limit_s": limit,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "km": round(sum(r["distance_km"] for r in result["routes"]), 1),
                "routes": len(result["routes"]),
                "engine": result.get("engine"),
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
