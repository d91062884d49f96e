"""Handler of ``binsight twin``: build the configs, run the seeds and the sweeps, print the figures."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from binsight.server.twin.report import ProgressBar, combine_seeds, comparisons, plot, table
from binsight.server.twin.sensing import SensingConfig
from binsight.server.twin.sensitivity import SENSING_POLICIES, sensitivity
from binsight.server.twin.simulate import TwinConfig, run_policies
from binsight.server.twin.world import WorldConfig

__all__ = ["config_from_args", "run_twin", "twin"]


def config_from_args(args: argparse.Namespace, seed: int) -> TwinConfig:
    """The run's :class:`TwinConfig` for one seed; bad values raise ValueError naming the option."""
    if args.bins < 1 or args.weeks < 1:
        raise ValueError("--bins and --weeks must be at least 1")
    sensing = SensingConfig(
        interval_h=args.interval_h, mae=args.mae, unusable=args.unusable, outages_per_week=args.outages
    )
    world = WorldConfig(bins=args.bins, weeks=args.weeks, seed=seed)
    return TwinConfig(
        world=world,
        sensing=sensing,
        policies=tuple(args.policies),
        time_limit_s=args.time_limit,
        service_days=tuple(args.service_days),
        optional_min_fill=args.optional_min_fill,
        lookahead_days=args.lookahead_days,
        skip_quiet_days=args.skip_quiet_days,
        quiet_overflow_h=args.quiet_overflow_h,
        consolidate_days=args.consolidate_days,
        near_km=None if args.near_km < 0 else args.near_km,
        optional_detour_km=args.optional_detour_km,
        threshold=args.threshold,
    )


def _steps(args: argparse.Namespace, seeds: list[int]) -> int:
    days = 14 + 7 * args.weeks
    sweeps = len(args.model_mae or []) + len(args.outage_rates or [])
    return int(days * (len(seeds) * len(args.policies) + sweeps * len(SENSING_POLICIES)))


def run_twin(args: argparse.Namespace, progress: Any = None) -> dict[str, Any]:
    """Every seed, combined; the sensitivity sweeps on the first seed; the comparisons."""
    seeds = args.seeds or [args.seed]
    runs = [run_policies(config_from_args(args, s), progress) for s in seeds]
    result = combine_seeds(runs)
    result["comparisons"] = comparisons(result["policies"])
    if args.model_mae or args.outage_rates:
        result["sensitivity"] = {
            "seed": seeds[0],
            **sensitivity(config_from_args(args, seeds[0]), args.model_mae, args.outage_rates, progress),
        }
    return result


def twin(args: argparse.Namespace) -> int:
    """Run the twin; one JSON object on stdout with ``--json``, else a table (progress on stderr)."""
    seeds = args.seeds or [args.seed]
    try:
        config_from_args(args, seeds[0])
    except ValueError as exc:
        print(f"binsight twin: {exc}", file=sys.stderr)
        return 2
    bar = None if args.json else ProgressBar(_steps(args, seeds))
    try:
        result = run_twin(args, bar)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
        for part, values in result.get("sensitivity", {}).items():
            if part == "seed":
                continue
            for value, policies in values.items():
                print(
                    table(
                        {"bins": args.bins, "weeks": args.weeks, "seed": seeds[0], "policies": policies}
                    ).replace("seed(s)", f"{part} = {value}, seed")
                )
    if args.plot:
        plot(result, args.plot)
    return 0
