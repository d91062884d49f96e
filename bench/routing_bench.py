"""Route quality against the literature: binsight's planner and plain PyVRP side by side.

For every instance (CVRPLIB X ``.vrp``, Solomon ``.txt``) with a ``.sol`` best-known solution next
to it, and every time limit, runs ``binsight.server.routing.planner.solve_instance`` (engine auto,
or --engine) and plain ``pyvrp.solve`` on the same data, and prints the gap to the BKS of each.

    nice .venv/bin/python bench/routing_bench.py /work/shared/datasets/vrp \\
        --instances 'cvrp/X-n1*' --time-limits 10 60 --jobs 1 --out results.json

Each run is a fresh process, one per job slot (``--jobs``); on a shared machine keep jobs at or
below the free cores, or the figures measure contention. Results are appended to ``--out`` as they
arrive, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any


def bks(path: Path) -> float:
    """Best-known cost: the ``Cost N`` line of the ``.sol`` file next to the instance."""
    for line in path.with_suffix(".sol").read_text().splitlines():
        if line.lower().startswith("cost"):
            return float(line.split()[1])
    raise ValueError(f"{path}: no Cost line in the .sol file")


def plain_pyvrp(path: Path, time_limit: float, seed: int) -> dict[str, Any]:
    """PyVRP with its defaults on the instance as the literature defines it."""
    import numpy as np
    import pyvrp
    from pyvrp.stop import MaxRuntime

    t0 = time.perf_counter()
    if path.suffix == ".vrp":
        data = pyvrp.read(path, round_func="round")
        scale = 1.0
    else:
        import vrplib

        raw = vrplib.read_instance(path, instance_format="solomon", compute_edge_weights=False)
        xy = np.asarray(raw["node_coord"], dtype=float)
        d = np.floor(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) * 10).astype(np.int64)
        tw = np.round(np.asarray(raw["time_window"]) * 10).astype(np.int64)
        st = np.round(np.asarray(raw["service_time"]) * 10).astype(np.int64)
        locs = [pyvrp.Location(x=float(x), y=float(y)) for x, y in xy]
        clients = [
            pyvrp.Client(
                location=i,
                delivery=[int(raw["demand"][i])],
                service_duration=int(st[i]),
                tw_early=int(tw[i, 0]),
                tw_late=int(tw[i, 1]),
            )
            for i in range(1, len(xy))
        ]
        vt = pyvrp.VehicleType(
            num_available=int(raw["vehicles"]),
            capacity=[int(raw["capacity"])],
            tw_early=int(tw[0, 0]),
            tw_late=int(tw[0, 1]),
        )
        data = pyvrp.ProblemData(locs, clients, [pyvrp.Depot(0)], [vt], [d], [d])
        scale = 10.0
    res = pyvrp.solve(data, stop=MaxRuntime(time_limit), seed=seed, collect_stats=False)
    best = res.best
    return {
        "cost": best.distance() / scale,
        "feasible": bool(best.is_feasible()),
        "vehicles": best.num_routes(),
        "elapsed_s": time.perf_counter() - t0,
    }


def planner(path: Path, time_limit: float, seed: int, engine: str) -> dict[str, Any]:
    from binsight.server.routing.planner import solve_instance
    from binsight.server.routing.readers import read_cvrp, read_solomon

    t0 = time.perf_counter()
    inst = read_cvrp(path) if path.suffix == ".vrp" else read_solomon(path)
    out = solve_instance(inst, time_limit - (time.perf_counter() - t0), seed=seed, engine=engine)  # type: ignore[arg-type]
    return {
        "cost": out.cost,
        "feasible": out.feasible,
        "vehicles": sum(1 for r in out.solution.routes if r.clients),
        "elapsed_s": time.perf_counter() - t0,
    }


def run_one(job: tuple[str, str, float, int, str]) -> dict[str, Any]:
    solver, path_s, time_limit, seed, engine = job
    path = Path(path_s)
    res = (
        plain_pyvrp(path, time_limit, seed) if solver == "pyvrp" else planner(path, time_limit, seed, engine)
    )
    best = bks(path)
    res.update(
        instance=path.stem,
        solver=solver if solver == "pyvrp" else f"binsight-{engine}",
        time_limit=time_limit,
        seed=seed,
        bks=best,
        gap_pct=100.0 * (res["cost"] - best) / best if res["feasible"] else math.nan,
    )
    return res


def _family(r: dict[str, Any]) -> str:
    return "CVRP" if r["instance"].startswith("X-") else "VRPTW"


def table(results: list[dict[str, Any]]) -> str:
    rows: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    solvers: list[str] = []
    for r in results:
        rows.setdefault((r["instance"], r["time_limit"]), {})[r["solver"]] = r
        if r["solver"] not in solvers:
            solvers.append(r["solver"])
    head = f"{'instance':<14}{'limit':>6}{'BKS':>10}" + "".join(
        f"{s + ' cost':>22}{'gap%':>8}" for s in solvers
    )
    lines = [head, "-" * len(head)]
    for (name, tl), by in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        bk = next(iter(by.values()))["bks"]
        line = f"{name:<14}{tl:>6g}{bk:>10g}"
        for s in solvers:
            r = by.get(s)
            if r is None:
                line += f"{'-':>22}{'-':>8}"
            elif not r["feasible"]:
                line += f"{'infeasible':>22}{'-':>8}"
            else:
                line += f"{r['cost']:>22g}{r['gap_pct']:>8.2f}"
        lines.append(line)
    for tl in sorted({r["time_limit"] for r in results}):
        for family in ("CVRP", "VRPTW"):
            for s in solvers:
                sel = [
                    r for r in results if r["solver"] == s and r["time_limit"] == tl and _family(r) == family
                ]
                if not sel:
                    continue
                gaps = [r["gap_pct"] for r in sel if r["feasible"]]
                mean = f"{statistics.fmean(gaps):.2f}%" if gaps else "-"
                lines.append(
                    f"mean gap {family:<5} {tl:>4g}s "
                    f"{s:<16} {mean:>8} over {len(gaps)} feasible of {len(sel)}"
                )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="folder holding cvrp/ and vrptw/ (or instance files)")
    ap.add_argument("--instances", nargs="*", default=["*"], help="globs relative to root, e.g. 'cvrp/X-n1*'")
    ap.add_argument("--time-limits", nargs="+", type=float, default=[10.0, 60.0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", default="auto", help="binsight engine: auto | pyvrp | ortools")
    ap.add_argument("--solvers", nargs="+", default=["binsight", "pyvrp"])
    ap.add_argument("--out", type=Path, help="append results as JSON lines; rerun prints the table")
    ap.add_argument("--table-only", action="store_true", help="print the table of --out and exit")
    args = ap.parse_args()

    done: list[dict[str, Any]] = []
    if args.out and args.out.exists():
        done = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
    if args.table_only:
        print(table(done))
        return
    files = sorted(
        p
        for p in args.root.rglob("*")
        if p.suffix in (".vrp", ".txt")
        and p.with_suffix(".sol").exists()
        and any(fnmatch.fnmatch(str(p.relative_to(args.root)), g) for g in args.instances)
    )
    have = {(r["instance"], r["solver"], r["time_limit"], r["seed"]) for r in done}
    jobs = []
    for tl in args.time_limits:
        for p in files:
            for s in args.solvers:
                name = s if s == "pyvrp" else f"binsight-{args.engine}"
                if (p.stem, name, tl, args.seed) not in have:
                    jobs.append((s, str(p), tl, args.seed, args.engine))
    print(f"{len(files)} instances, {len(jobs)} runs to do", flush=True)
    results = list(done)
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs, maxtasksperchild=1) as pool:
        for res in pool.imap_unordered(run_one, jobs):
            results.append(res)
            print(
                f"{res['instance']:<14}{res['solver']:<16}{res['time_limit']:>5g}s cost {res['cost']:<10g}"
                f" gap {res['gap_pct']:.2f}% feasible {res['feasible']} ({res['elapsed_s']:.1f}s)",
                flush=True,
            )
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(res) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
