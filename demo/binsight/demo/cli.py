"""``binsight demo``: the whole system on embedded defaults."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("demo", help="run the whole system on embedded defaults")
    p.add_argument("--duration", type=float, default=None, help="run headless for S seconds, then exit")
    p.add_argument("--data", default=".binsight-demo", help="folder for the demo's data and cache")
    p.add_argument("--port", type=int, default=8000, help="web page port")
    p.add_argument("--bins", type=int, default=30, help="simulated cameras")
    p.add_argument("--mqtt-port", type=int, default=1883, help="broker port (embedded amqtt if none listens)")
    p.add_argument(
        "--history-h",
        type=float,
        default=48.0,
        help="hours of camera history replayed (fast) up to now before the cameras run in real time",
    )
    p.add_argument(
        "--capture-every",
        type=float,
        default=None,
        help="seconds between a live camera's readings after the replay (default 30; its frame changes "
        "every 20 min)",
    )
    p.add_argument("--plan-every", type=float, default=60.0, help="seconds between route plans")
    p.add_argument("--first-plan-after", type=float, default=20.0, help="seconds before the first plan")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from binsight.demo import run_demo

    return run_demo(args)
