"""``binsight twin``: argument parsing only (the work is in :mod:`binsight.server.twin.commands`).

Every installed part's cli module is imported to build ``binsight --help``, so this one imports
nothing heavy: no SQLAlchemy, no solver (tests/device/test_device_imports.py checks a camera's run).
"""

from __future__ import annotations

import argparse
from typing import Any

from binsight.server.config import WEEKDAYS
from binsight.server.twin.sensing import DEFAULT_MAE, POLICIES

__all__ = ["add_arguments", "register"]


# long: one add_argument per twin option, read top to bottom like --help
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The twin's options (also used by bench/twin.py and the tests)."""
    p.add_argument("--bins", type=int, default=300, help="bins in the city (default 300)")
    p.add_argument("--weeks", type=int, default=8, help="measured weeks after a 2-week warm-up (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", help="several seeds: means and their spread")
    p.add_argument(
        "--policies",
        nargs="+",
        default=list(POLICIES),
        choices=POLICIES,
        metavar="POLICY",
        help=f"some of {', '.join(POLICIES)} (default all)",
    )
    p.add_argument("--time-limit", type=float, default=1.0, help="route planner seconds per day (default 1)")
    p.add_argument("--mae", type=float, default=DEFAULT_MAE, help="fill model's mean absolute error")
    p.add_argument("--outages", type=float, default=0.05, help="camera outages per camera and week")
    p.add_argument("--unusable", type=float, default=0.03, help="share of unusable frames")
    p.add_argument("--interval-h", type=int, default=1, help="hours between camera readings")
    p.add_argument(
        "--model-mae",
        type=float,
        nargs="+",
        metavar="MAE",
        help="sensitivity: rerun threshold and binsight at each model error",
    )
    p.add_argument(
        "--outage-rates",
        type=float,
        nargs="+",
        metavar="PER_WEEK",
        help="sensitivity: rerun threshold and binsight at each outage rate",
    )
    p.add_argument(
        "--service-days",
        nargs="+",
        default=list(WEEKDAYS[:6]),
        choices=WEEKDAYS,
        metavar="DAY",
        help="the fleet's service days, for every policy (default mon..sat)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="experiment: the server's forecast.threshold, 'full' (default 0.8, the server's)",
    )
    p.add_argument(
        "--optional-min-fill",
        type=float,
        default=0.3,
        help="experiment: the server's fleet.optional_min_fill (default 0.3, the server's)",
    )
    p.add_argument(
        "--lookahead-days",
        type=int,
        default=1,
        help="experiment: the server's fleet.optional_lookahead_days (default 1; 0: any bin may go early)",
    )
    p.add_argument(
        "--no-skip-quiet-days",
        dest="skip_quiet_days",
        action="store_false",
        help="experiment: the server's fleet.skip_quiet_days off (drive every service day)",
    )
    p.add_argument(
        "--quiet-overflow-h",
        type=float,
        default=12.0,
        help="experiment: the server's fleet.quiet_overflow_h (default 12): a day stays quiet unless a "
        "bin would overflow more than this many hours before the next service day starts",
    )
    p.add_argument(
        "--consolidate-days",
        type=int,
        default=2,
        help="experiment: the server's fleet.consolidate_days (default 2): a driven day takes the bins "
        "full before this many service days later",
    )
    p.add_argument(
        "--near-km",
        type=float,
        default=1.0,
        help="experiment: the server's fleet.optional_near_km (default 1; negative: anywhere)",
    )
    p.add_argument(
        "--optional-detour-km",
        type=float,
        help="experiment: detour km an optional bin is worth when full (planner default 3)",
    )
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--plot", metavar="FILE.png", help="write a plot of the figures (needs matplotlib)")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "twin", help="simulate a city over weeks and measure collection policies with the real planner"
    )
    add_arguments(p)
    p.set_defaults(func=_twin)


def _twin(args: argparse.Namespace) -> int:
    from binsight.server.twin.commands import twin

    return twin(args)
