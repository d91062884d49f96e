"""Handlers of ``binsight device run|simulate`` (argument parsing is in :mod:`binsight.device.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from binsight.config import load_toml
from binsight.device.config import DeviceConfig
from binsight.device.sources import IMAGE_SUFFIXES
from binsight.errors import ConfigError
from binsight.protocol import BIN_ID_PATTERN
from binsight.secrets import read_secret

__all__ = ["check_config", "check_frame_times", "run", "simulate"]

logger = logging.getLogger(__name__)


def check_config(cfg: DeviceConfig, *, release_key: bool = True) -> None:
    """What ``--check`` verifies beyond the schema: secrets readable, the release key parses.

    ``release_key=False`` (``device run`` itself) skips parsing the release key: that imports
    ``cryptography`` (1.7 MB resident for good), and the updater parses the key anyway when a
    release arrives, refusing the release with the reason if the key is bad; readings go on.

    Raises
    ------
    ConfigError
        Naming the key at fault.
    """
    read_secret("mqtt_password", cfg.mqtt.password_file)
    if cfg.mqtt.tls:
        read_secret("mqtt_tls_key", cfg.mqtt.key_file)
    check_frame_times(cfg)
    if not release_key or (cfg.updates.public_key is None and cfg.updates.public_key_file is None):
        return
    from binsight.signing import SignatureError, load_public_key, parse_public_key

    try:
        if cfg.updates.public_key is not None:
            parse_public_key(cfg.updates.public_key)
        elif cfg.updates.public_key_file is not None:
            load_public_key(cfg.updates.public_key_file)
    except SignatureError as exc:
        raise ConfigError(f"updates.public_key: {exc}") from exc


def check_frame_times(cfg: DeviceConfig) -> None:
    """With ``camera.timestamps`` other than ``clock``: every image of the folder has a readable
    capture time (a back-test stops at its start, naming the image, not hours into it).

    Raises
    ------
    ConfigError
        ``camera.timestamps: ...`` naming the first image at fault and the expected form.
    """
    cam = cfg.camera
    if cam.timestamps == "clock":
        return
    from binsight.device.frametime import FrameTimeError
    from binsight.device.sources import ImageFolderSource, open_source

    try:
        source = open_source(cam.source, loop=cam.loop, timestamps=cam.timestamps, tz=cam.tz)
        if isinstance(source, ImageFolderSource):
            source.check_times()
    except FrameTimeError as exc:
        raise ConfigError(f"camera.timestamps: {exc}") from exc


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run(args: argparse.Namespace) -> int:
    cfg = load_toml(args.config, DeviceConfig)
    check_config(cfg, release_key=args.check)
    if args.check:
        json.dump(cfg.resolved(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    from binsight.device.agent import run_agent

    return run_agent(cfg, _stop_on_signals())


def _bin_folders(images: Path, n: int) -> tuple[list[tuple[str, Path]], dict[str, int]]:
    """One subfolder per bin if ``images`` has subfolders with images, else all bins share it."""
    import re

    if not images.is_dir():
        raise ConfigError(f"--images {images}: not a folder")
    subdirs = sorted(
        d
        for d in images.iterdir()
        if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir())
    )
    if subdirs:
        if len(subdirs) < n:
            raise ConfigError(f"--images {images} has {len(subdirs)} bin subfolders, --bins asks for {n}")
        pairs = []
        for i, d in enumerate(subdirs[:n]):
            bin_id = d.name if re.match(BIN_ID_PATTERN, d.name) else f"bin-{i + 1:04d}"
            pairs.append((bin_id, d))
        return pairs, {}
    count = sum(1 for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if count == 0:
        raise ConfigError(f"--images {images} holds no images and no subfolders of images")
    pairs = [(f"bin-{i + 1:04d}", images) for i in range(n)]
    # Bins sharing a folder start at different images, so they do not all report the same fill.
    return pairs, {b: (i * count) // n for i, (b, _) in enumerate(pairs)}


def simulate(args: argparse.Namespace) -> int:
    from binsight.device.inference import tune_malloc
    from binsight.device.simulate import SimulatedFleet

    tune_malloc()

    if args.bins < 1:
        raise ConfigError("--bins must be at least 1")
    if args.config:
        template = load_toml(args.config, DeviceConfig)
    else:
        template = DeviceConfig.model_validate({"bin_id": "sim-template"}, context={"base_dir": Path.cwd()})
    data = template.model_dump()
    if args.model:
        data["model"] = Path(args.model).resolve()
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--broker {args.broker!r}: expected HOST:PORT")
        data["mqtt"]["host"], data["mqtt"]["port"] = host, int(port)
    template = DeviceConfig.model_validate(data)
    check_config(template)
    if not template.model.exists():
        raise ConfigError(f"model file {template.model} does not exist (give --model or model in --config)")
    pairs, offsets = _bin_folders(Path(args.images), args.bins)
    fleet = SimulatedFleet(
        pairs,
        template=template,
        state_dir=Path(args.state_dir),
        interval_s=args.interval,
        time_scale=args.time_scale,
        offsets=offsets,
    )
    stop = _stop_on_signals()
    fleet.start()
    print(f"{len(fleet.agents)} simulated bins running; Ctrl-C stops", file=sys.stderr)
    try:
        stop.wait(args.duration)
    finally:
        fleet.stop()
    return 0
