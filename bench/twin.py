"""The twin's benchmark (issue #14): 300 bins, 8 weeks, 3 seeds, every policy, with the wall time.

    nice .venv/bin/python bench/twin.py                      # the issue's run
    nice .venv/bin/python bench/twin.py --bins 100 --weeks 2 --seeds 0   # a quick look

Prints the table of ``binsight twin`` (means over the seeds), the spread per policy, the comparisons
the issue's goals name (binsight against fixed, threshold and oracle) and how long it took, then the
whole result as one JSON line (``--out`` also writes it to a file). Figures and conditions: docs/twin.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> None:
    from binsight.server.twin.cli import add_arguments
    from binsight.server.twin.commands import run_twin
    from binsight.server.twin.report import FIGURES, ProgressBar, table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    ap.add_argument("--out", help="write the result JSON here")
    ap.set_defaults(seeds=[0, 1, 2])
    args = ap.parse_args()
    days = 14 + 7 * args.weeks
    sweeps = len(args.model_mae or []) + len(args.outage_rates or [])
    bar = ProgressBar(days * (len(args.seeds) * len(args.policies) + 2 * sweeps))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        result = run_twin(args, bar)
    finally:
        bar.close()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(table(result))
    for name, spread in result.get("spread", {}).items():
        cells = [
            f"{FIGURES[f]} {s['min']:g}..{s['max']:g}"
            for f, s in spread.items()
            if f in ("truck_km", "overflow_bin_hours", "lifts", "mean_fill_at_lift")
        ]
        print(f"spread over seeds, {name}: " + ", ".join(cells))
    load = os.getloadavg()[0]
    print(
        f"wall {wall:.0f} s, CPU {cpu:.0f} s, load average {load:.1f} on {os.cpu_count()} cores; "
        f"solver limit {args.time_limit:g} s per plan"
    )
    result["bench"] = {
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load_avg_1m": round(load, 2),
        "cores": os.cpu_count(),
        "argv": sys.argv[1:],
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
