"""Scale: generated city problems planned end to end (matrix, solve, exact check) against a time limit.

    nice .venv/bin/python bench/routing_scale.py --bins 1000 --trucks 20 --time-limit 60
    nice .venv/bin/python bench/routing_scale.py --bins 5000 --trucks 100 --depots 3 --time-limit 240

Prints wall time (including the distance matrix and the exact check), feasibility, distance and
how many bins were taken. Problems above 1,500 bins are decomposed (docs/routing.md).
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=1000)
    ap.add_argument("--trucks", type=int, default=20)
    ap.add_argument("--depots", type=int, default=1)
    ap.add_argument("--disposal", type=int, default=3)
    ap.add_argument("--radius-km", type=float, default=12.0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write the plan JSON here")
    args = ap.parse_args()

    from binsight.server.routing import plan
    from binsight.server.routing.generate import city_problem

    problem = city_problem(
        args.bins,
        args.trucks,
        seed=args.seed,
        n_depots=args.depots,
        n_disposal=args.disposal,
        radius_km=args.radius_km,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    result = plan(problem, args.time_limit, seed=args.seed)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0  # well below wall on a busy machine: the solver got less CPU
    mandatory = sum(1 for b in problem["bins"] if b["mandatory"])
    print(
        json.dumps(
            {
                "bins": args.bins,
                "mandatory": mandatory,
                "trucks": args.trucks,
                "depots": args.depots,
                "time_limit_s": args.time_limit,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "feasible": result["feasible"],
                "engine": result["engine"],
                "detail": result["engine_detail"],
                "distance_km": result["cost"],
                "routes": result["vehicles"],
                "included": len(result["included"]),
                "skipped": len(result["skipped"]),
                "disposal_trips": sum(r["disposal_trips"] for r in result["routes"]),
                "violations": result["violations"][:5],
            }
        )
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
