"""``binsight device ...``: argument parsing only; needs nothing beyond ``binsight-device``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("device", help="run a camera agent")
    dsub = p.add_subparsers(dest="device_command", metavar="ACTION")

    r = dsub.add_parser("run", help="run one agent until stopped")
    r.add_argument("--config", required=True, help="device.toml")
    r.add_argument("--check", action="store_true", help="print the resolved config and exit (1 if bad)")
    r.set_defaults(func=_run)

    s = dsub.add_parser("simulate", help="run N agents in one process on image-folder sources")
    s.add_argument("--bins", type=int, required=True)
    s.add_argument("--images", required=True, help="folder of images (or one subfolder per bin)")
    s.add_argument("--config", help="device.toml used as a template (mqtt, model, outbox dir)")
    s.add_argument("--interval", type=float, default=None, help="seconds between captures")
    s.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    s.add_argument("--model", default=None, help="model file (default: model in --config)")
    s.add_argument(
        "--broker", default=None, help="HOST:PORT (default: [mqtt] in --config, else 127.0.0.1:1883)"
    )
    s.add_argument("--state-dir", default="sim-state", help="outboxes and model copies, one folder per bin")
    s.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulation only: reading timestamps run this many times faster than wall time",
    )
    s.set_defaults(func=_simulate)


def _run(args: argparse.Namespace) -> int:
    from binsight.device.commands import run

    return run(args)


def _simulate(args: argparse.Namespace) -> int:
    from binsight.device.commands import simulate

    return simulate(args)
