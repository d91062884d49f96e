"""``binsight route ...``: argument parsing only."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("route", help="plan vehicle routes")
    rsub = p.add_subparsers(dest="route_command", metavar="ACTION")
    s = rsub.add_parser("solve", help="solve a VRPLIB CVRP, Solomon VRPTW or binsight JSON instance")
    s.add_argument("instance")
    s.add_argument("--time-limit", type=float, default=10.0, help="seconds")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--engine", default="auto", help="auto | pyvrp | ortools | portfolio")
    s.set_defaults(func=_solve)


def _solve(args: argparse.Namespace) -> int:
    from binsight.server.routing.commands import solve

    return solve(args)
