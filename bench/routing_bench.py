"""Route quality against the literature: every engine in one run, gaps to best-known as ratios.

For every instance (CVRPLIB X ``.vrp``, Solomon ``.txt``) with a ``.sol`` best-known solution next
to it, every time limit and every solver, prints the cost and its ratio to the BKS. Solvers:

- ``pyvrp``: plain ``pyvrp.solve`` with its defaults on the literature's data;
- ``binsight-ENGINE`` (ENGINE: auto, pyvrp, ortools, portfolio): the planner's ``solve_instance``;
- ``ortools:FSS/META/NEIGHBORS/ils``: OR-Tools alone with other settings (``FSS`` a first
  solution strategy or ``shape``, ``META`` a metaheuristic, ``NEIGHBORS`` a number or ``all``,
  ``ils`` for iterated local search, ``full`` to keep the whole fleet), e.g.
  ``ortools:SAVINGS/GUIDED_LOCAL_SEARCH/40``;
- ``warm-ortools:SHARE``: PyVRP for SHARE of the time (e.g. 0.3), then OR-Tools from its routes
  (ReadAssignmentFromRoutes) for the rest.

``--cities BINS:TRUCKS:SEED ...`` adds generated binsight problems (windows, breaks, disposal
trips, optional bins; no BKS): their ratio is to the best objective any solver found in the run.

    nice -n 10 .venv/bin/python bench/routing_bench.py /work/shared/datasets/vrp \\
        --instances 'cvrp/X-n1*' --time-limits 10 60 --jobs 1 --out results.json \\
        --solvers pyvrp binsight-auto binsight-ortools binsight-portfolio

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
from concurrent.futures import ProcessPoolExecutor, as_completed
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


def read(source: str) -> Any:
    """The instance behind ``source``: a benchmark file, or ``city:BINS:TRUCKS:SEED``."""
    from binsight.server.routing.readers import read_cvrp, read_solomon

    if source.startswith("city:"):
        from binsight.server.routing.generate import city_problem
        from binsight.server.routing.instance_builder import build_instance, parse_problem

        bins, trucks, seed = (int(x) for x in source.split(":")[1:])
        return build_instance(parse_problem(city_problem(bins, trucks, seed=seed))).inst
    path = Path(source)
    return read_cvrp(path) if path.suffix == ".vrp" else read_solomon(path)


def ortools_settings(spec: str) -> Any:
    """``FSS/META/NEIGHBORS[/ils][/full]`` as OrToolsSettings (see the module docstring)."""
    from binsight.server.routing.ortools_engine import OrToolsSettings

    fss, meta, neighbors, *flags = spec.split("/")
    return OrToolsSettings(
        first_solution=None if fss == "shape" else fss,
        metaheuristic=meta,
        neighbors=None if neighbors == "all" else int(neighbors),
        iterated="ils" in flags,
        trim_fleet="full" not in flags,
    )


def planner(source: str, time_limit: float, seed: int, solver: str) -> dict[str, Any]:
    """One binsight solver (engine, OR-Tools variant or warm start) on ``source``, checked exactly."""
    from binsight.server.routing.network import Network
    from binsight.server.routing.ortools_engine import solve_ortools
    from binsight.server.routing.planner import check, solve_instance
    from binsight.server.routing.pyvrp_engine import solve_pyvrp

    t0 = time.perf_counter()
    inst = read(source)
    left = time_limit - (time.perf_counter() - t0)
    extra: dict[str, Any] = {}
    if solver.startswith("binsight-"):
        out = solve_instance(inst, left, seed=seed, engine=solver.removeprefix("binsight-"))  # type: ignore[arg-type]
        extra = {"engine": out.solution.engine, "runs": [r.summary() for r in out.runs]}
    elif solver.startswith("ortools:"):
        net = Network.build(inst)
        out = check(inst, solve_ortools(net, left, seed, settings=ortools_settings(solver[8:])))
    elif solver.startswith("warm-ortools:"):
        net = Network.build(inst)
        first = check(inst, solve_pyvrp(net, float(solver.split(":")[1]) * left, seed))
        rest = time_limit - (time.perf_counter() - t0)
        out = check(inst, solve_ortools(net, rest, seed, initial=first.solution))
        extra = {"pyvrp_first": first.cost, "pyvrp_first_feasible": first.feasible}
    else:
        raise SystemExit(f"unknown solver {solver!r}")
    return {
        "cost": out.cost if inst.kind != "binsight" else (out.distance + out.penalty) / 1000,
        "feasible": out.feasible,
        "vehicles": sum(1 for r in out.solution.routes if r.clients),
        "elapsed_s": time.perf_counter() - t0,
        **extra,
    }


def run_one(job: tuple[str, str, float, int]) -> dict[str, Any]:
    solver, source, time_limit, seed = job
    if solver == "pyvrp":
        if source.startswith("city:"):
            raise SystemExit("plain pyvrp reads benchmark files only; use binsight-pyvrp for cities")
        res = plain_pyvrp(Path(source), time_limit, seed)
    else:
        res = planner(source, time_limit, seed, solver)
    best = math.nan if source.startswith("city:") else bks(Path(source))
    res.update(
        instance=source if source.startswith("city:") else Path(source).stem,
        solver=solver,
        time_limit=time_limit,
        seed=seed,
        bks=best,
        gap_pct=100.0 * (res["cost"] - best) / best if res["feasible"] else math.nan,
    )
    return res


def with_city_references(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """City problems have no BKS: use the best feasible objective found at any limit in the run."""
    best: dict[str, float] = {}
    for r in results:
        if r["instance"].startswith("city:") and r["feasible"]:
            best[r["instance"]] = min(best.get(r["instance"], math.inf), r["cost"])
    out = []
    for r in results:
        if r["instance"].startswith("city:"):
            ref = best.get(r["instance"], math.nan)
            gap = 100.0 * (r["cost"] - ref) / ref if r["feasible"] else math.nan
            out.append({**r, "bks": ref, "gap_pct": gap})
        else:
            out.append(r)
    return out


def _family(r: dict[str, Any]) -> str:
    if r["instance"].startswith("city:"):
        return "CITY"
    return "CVRP" if r["instance"].startswith("X-") else "VRPTW"


def table(results: list[dict[str, Any]]) -> str:
    results = with_city_references(results)
    rows: dict[tuple[str, float], dict[str, dict[str, Any]]] = {}
    solvers: list[str] = []
    for r in results:
        rows.setdefault((r["instance"], r["time_limit"]), {})[r["solver"]] = r
        if r["solver"] not in solvers:
            solvers.append(r["solver"])
    head = f"{'instance':<16}{'limit':>6}{'BKS':>10}" + "".join(f"{s[-20:]:>22}{'ratio':>8}" for s in solvers)
    lines = [head, "-" * len(head)]
    for (name, tl), by in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        bk = next(iter(by.values()))["bks"]
        line = f"{name:<16}{tl:>6g}{bk:>10.6g}"
        for s in solvers:
            r = by.get(s)
            if r is None:
                line += f"{'-':>22}{'-':>8}"
            elif not r["feasible"]:
                line += f"{'infeasible':>22}{'-':>8}"
            else:
                line += f"{r['cost']:>22.6g}{1 + r['gap_pct'] / 100:>8.4f}"
        lines.append(line)
    lines += summary(results, solvers)
    return "\n".join(lines)


def summary(results: list[dict[str, Any]], solvers: list[str]) -> list[str]:
    """Per family, limit and solver: the mean of cost / BKS over feasible runs (the geometric mean,
    so one bad instance weighs as a ratio, not as its absolute cost), and how many were feasible."""
    lines = [f"{'family':<6}{'limit':>6}  {'solver':<44}{'mean ratio':>11}{'worst':>8}  feasible"]
    for family in ("CVRP", "VRPTW", "CITY"):
        for tl in sorted({r["time_limit"] for r in results}):
            for s in solvers:
                sel = [
                    r for r in results if r["solver"] == s and r["time_limit"] == tl and _family(r) == family
                ]
                if not sel:
                    continue
                ratios = [1 + r["gap_pct"] / 100 for r in sel if r["feasible"]]
                mean = f"{statistics.geometric_mean(ratios):.4f}" if ratios else "-"
                worst = f"{max(ratios):.4f}" if ratios else "-"
                lines.append(f"{family:<6}{tl:>6g}  {s:<44}{mean:>11}{worst:>8}  {len(ratios)} of {len(sel)}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="folder holding cvrp/ and vrptw/ (or instance files)")
    ap.add_argument("--instances", nargs="*", default=["*"], help="globs relative to root, e.g. 'cvrp/X-n1*'")
    ap.add_argument("--time-limits", nargs="+", type=float, default=[10.0, 60.0])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--solvers", nargs="+", default=["binsight-auto", "pyvrp"], help="see above")
    ap.add_argument("--cities", nargs="*", default=[], help="generated problems BINS:TRUCKS:SEED")
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
    sources = [(str(p), p.stem) for p in files] + [(f"city:{c}", f"city:{c}") for c in args.cities]
    have = {(r["instance"], r["solver"], r["time_limit"], r["seed"]) for r in done}
    jobs = []
    for tl in args.time_limits:
        for source, name in sources:
            for s in args.solvers:
                if s == "pyvrp" and source.startswith("city:"):
                    continue
                if (name, s, tl, args.seed) not in have:
                    jobs.append((s, source, tl, args.seed))
    print(f"{len(sources)} instances, {len(jobs)} runs to do", flush=True)
    results = list(done)
    # Fresh, non-daemonic workers (a Pool's are daemonic, and the portfolio starts processes).
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=ctx, max_tasks_per_child=1) as pool:
        for future in as_completed([pool.submit(run_one, job) for job in jobs]):
            res = future.result()
            results.append(res)
            print(
                f"{res['instance']:<16}{res['solver']:<24}{res['time_limit']:>5g}s cost {res['cost']:<10g}"
                f" gap {res['gap_pct']:.2f}% feasible {res['feasible']} ({res['elapsed_s']:.1f}s)",
                flush=True,
            )
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(res) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
