"""Many agents in one process, each on its own image folder: load tests and the demo.

Every simulated bin is a real :class:`~binsight.device.agent.Agent` (same capture, gate, model,
outbox and MQTT code) whose camera is an image folder replayed in order. Agents share one ONNX
Runtime session per model file (loaded once), so 30 bins do not cost 30 models' memory.

``time_scale`` is for simulation only: reading timestamps advance that many times faster than
wall time (one :class:`~binsight.device.clock.ScaledClock` for the whole fleet), so a demo can show
days of filling in minutes. ``interval_s`` stays in wall seconds.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from binsight.device.agent import Agent
from binsight.device.clock import Clock, ScaledClock, WallClock
from binsight.device.config import DeviceConfig
from binsight.device.sources import FrameSource, ImageFolderSource
from binsight.errors import ConfigError
from binsight.sdnotify import Notifier

__all__ = ["SimulatedFleet"]

logger = logging.getLogger(__name__)


class SimulatedFleet:
    """N agents, one image folder each.

    Parameters
    ----------
    bins
        ``{bin_id: image_folder}`` or ``(bin_id, image_folder)`` pairs.
    template
        Config every agent copies (MQTT, model, quality, labelling, updates...); ``bin_id``,
        ``camera.source``, ``model`` and ``outbox.path`` are set per bin.
    state_dir
        Each bin gets ``state_dir/<bin_id>/`` with its outbox and its copy (hard link) of the model.
    interval_s
        Wall seconds between captures (default: the template's).
    time_scale, start_ms
        Simulation only: readings' ``ts`` start at ``start_ms`` (default now) and run
        ``time_scale`` times faster than wall time.
    offsets
        Image index each bin starts at (bins sharing one folder then differ).
    source
        ``(bin_id, folder, clock)`` -> the bin's camera (``clock``: the fleet's); default an
        :class:`ImageFolderSource` from ``offsets``, the next image at every capture (the demo's
        cameras pick the image of the clock's time instead).
    """

    def __init__(
        self,
        bins: Mapping[str, str | Path] | Iterable[tuple[str, str | Path]],
        *,
        template: DeviceConfig,
        state_dir: str | Path,
        interval_s: float | None = None,
        time_scale: float = 1.0,
        start_ms: int | None = None,
        offsets: Mapping[str, int] | None = None,
        source: Callable[[str, Path, Clock], FrameSource] | None = None,
    ) -> None:
        pairs = list(bins.items()) if isinstance(bins, Mapping) else list(bins)
        if not pairs:
            raise ConfigError("a simulated fleet needs at least one bin")
        ids = [b for b, _ in pairs]
        if len(set(ids)) != len(ids):
            raise ConfigError("simulated bin ids must be unique")
        self.state_dir = Path(state_dir)
        self.clock: Clock = (
            ScaledClock(time_scale, start_ms) if (time_scale != 1.0 or start_ms is not None) else WallClock()
        )
        self.agents: list[Agent] = []
        offsets = offsets or {}
        for bin_id, folder in pairs:
            cfg = self._config_for(template, bin_id, Path(folder), interval_s)
            camera: FrameSource = (
                source(bin_id, Path(folder), self.clock)
                if source is not None
                else ImageFolderSource(
                    folder,
                    loop=cfg.camera.loop,
                    start=offsets.get(bin_id, 0),
                    timestamps=cfg.camera.timestamps,
                    tz=cfg.camera.tz,
                )
            )
            self.agents.append(Agent(cfg, clock=self.clock, source=camera, notifier=Notifier(enabled=False)))

    def _config_for(
        self, template: DeviceConfig, bin_id: str, folder: Path, interval_s: float | None
    ) -> DeviceConfig:
        home = self.state_dir / bin_id
        home.mkdir(parents=True, exist_ok=True)
        model = home / template.model.name
        if template.model.exists() and not (model.exists() and os.path.samefile(model, template.model)):
            # Each bin has its own file (model updates replace it per bin); a fleet always starts
            # on the template's model, not on a stale copy from an earlier run.
            tmp = model.with_name(model.name + ".tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(template.model, tmp)
            except OSError:
                shutil.copy2(template.model, tmp)
            os.replace(tmp, model)
        data = template.model_dump()
        data["bin_id"] = bin_id
        data["model"] = model
        data["camera"]["source"] = str(folder.resolve())
        if interval_s is not None:
            data["camera"]["interval_s"] = interval_s
        data["outbox"]["path"] = home / "outbox.db"
        data["mqtt"]["client_id"] = None
        data["watchdog"]["enabled"] = False
        return DeviceConfig.model_validate(data)

    def start(self) -> None:
        """Start every agent (models load once, then each agent connects on its own thread)."""
        for agent in self.agents:
            agent.start()
        logger.info("simulated fleet of %d bins started", len(self.agents))

    def stop(self) -> None:
        """Stop all agents in parallel (each says ``offline`` and closes its outbox)."""
        threads = [threading.Thread(target=a.stop, daemon=True) for a in self.agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30.0)
        logger.info("simulated fleet stopped")

    def __enter__(self) -> SimulatedFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
