"""The camera agent: capture on a schedule, gate, infer, store, publish; obey commands; update.

Threads: the capture loop (this module), the MQTT link (:mod:`binsight.device.link`) with paho's
network thread, and the model updater (:mod:`binsight.device.updates`). The capture loop is the
only one that touches the camera and the running model reference, and the only one that pings the
systemd watchdog, so a hung capture gets the agent restarted.

:class:`Agent` is the loop and composes the parts: the capture step (:mod:`binsight.device.capture`),
the server's commands (:mod:`binsight.device.remote`), stats and events (:mod:`binsight.device.status`)
and the open problems they report (:mod:`binsight.device.problems`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time

from binsight.device.capture import NO_MODEL, Capture, CaptureResult
from binsight.device.clock import Clock, WallClock
from binsight.device.config import DeviceConfig
from binsight.device.inference import FillModel, ModelError, load_model
from binsight.device.link import Link
from binsight.device.memory import memory_use, release_startup_pages, tune_malloc
from binsight.device.outbox import Outbox, OutboxError
from binsight.device.problems import Problems
from binsight.device.remote import RemoteCommands
from binsight.device.schedule import jittered
from binsight.device.sources import EndOfSource, Frame, FrameSource, open_source
from binsight.device.status import Status
from binsight.device.updates import Updater
from binsight.protocol import MAX_INTERVAL_S, MIN_INTERVAL_S, Reading, Stats
from binsight.sdnotify import Notifier

__all__ = ["Agent", "CaptureResult"]

logger = logging.getLogger(__name__)

#: The intervals ``set_interval`` may set, whatever the command says (the protocol bounds it too;
#: the device checks on its own): faster floods the broker and the database and wears the camera,
#: slower than daily misses a bin that fills in a day. device.toml's own interval is always allowed.
SET_INTERVAL_RANGE_S = (MIN_INTERVAL_S, MAX_INTERVAL_S)  # the protocol's bounds on Command.interval_s


class Agent:
    """One bin's agent.

    Parameters
    ----------
    cfg
        The validated ``device.toml``.
    clock
        Timestamps for readings; :class:`~binsight.device.clock.ScaledClock` in simulations only.
    source
        Frame source; default: opened from ``cfg.camera``.
    notifier
        systemd notifications; default: from the environment when ``watchdog.enabled``.
    """

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        clock: Clock | None = None,
        source: FrameSource | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.cfg = cfg
        self.bin_id = cfg.bin_id
        self.clock = clock or WallClock()
        cam = cfg.camera
        self.source = source or open_source(
            cam.source,
            discard_frames=cam.discard_frames,
            keep_open=cam.keep_open,
            loop=cam.loop,
            width=cam.width,
            height=cam.height,
            timestamps=cam.timestamps,
            tz=cam.tz,
        )
        self.notifier = notifier or Notifier(cfg.watchdog.enabled)
        self.problems = Problems()
        self.outbox = Outbox(
            cfg.outbox.path,
            {
                "reading": cfg.outbox.max_readings,
                "image": cfg.outbox.max_images,
                "event": cfg.outbox.max_events,
            },
            problems=self.problems,  # a full disk shows in last_error
        )
        self.interval_s = self._saved_interval(cam.interval_s)
        self.model: FillModel | None = None
        self._wake = threading.Event()
        self.commands = RemoteCommands(self.bin_id, self.outbox, self, report=self._event, wake=self._wake)
        self.link = Link(
            cfg.mqtt, self.bin_id, self.outbox, on_command=self.commands.put, on_release=self._queue_release
        )
        self.status = Status(self.bin_id, clock=self.clock, outbox=self.outbox, link=self.link,
                             problems=self.problems)  # fmt: skip
        self.updater = Updater(
            cfg.updates,
            cfg.model,
            cfg.inference.threads,
            self.outbox,
            current=lambda: self.model,
            activate=self._activate,
            last_frame=lambda: self.last_frame,
            report=self._report_model,
        )
        self.capture_step = Capture(cfg, clock=self.clock, source=self.source, outbox=self.outbox,
                                    problems=self.problems, model=lambda: self.model,
                                    rollback=self.updater.rollback, stored=self.link.wake,
                                    shadow=self.updater.take_shadow)  # fmt: skip
        self.finished = False  # the source ended (image folder or video without loop)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_capture = 0.0

    def _saved_interval(self, configured: float) -> float:
        """The interval a command set, kept across restarts until device.toml's own value changes."""
        saved = self.outbox.get_setting("interval_s")
        if saved is None:
            return configured
        value, _, when_configured = saved.partition("@")
        try:
            if float(when_configured) == configured and self._interval_allowed(float(value)):
                return float(value)
        except ValueError:
            pass
        # The operator edited the config since: it wins (on a full disk the stale setting is
        # forgotten at a later start; it is ignored meanwhile all the same).
        with contextlib.suppress(OutboxError):
            self.outbox.set_setting("interval_s", None)
        return configured

    # ----------------------------------------------------------------- lifecycle
    def load_initial_model(self) -> None:
        """Load ``cfg.model``; if it is broken, fall back to ``MODEL.prev``; else run without one."""
        path = self.cfg.model
        if not path.exists():
            self.problems.set("model", f"model file {path} does not exist: waiting for a model release")
            logger.warning("%s: %s", self.bin_id, self.last_error)
        else:
            try:
                self.model = load_model(path, self.cfg.inference.threads)
                logger.info("%s: model %s (%s) loaded, warm-up %.0f ms", self.bin_id, self.model.version,
                            self.model.task, self.model.warmup_ms)  # fmt: skip
                return
            except ModelError as exc:
                self.problems.set("model", str(exc))
                logger.error("%s: %s", self.bin_id, exc)
        if self.updater.prev_path.exists():
            self.updater.rollback(f"model file unusable at start: {self.last_error}")

    def start(self, *, release_memory: bool = False) -> None:
        """Open everything and start the threads; returns at once.

        ``release_memory``: before and after loading the model, while no other thread of the
        agent runs yet, unmap the library pages only start-up touched
        (:func:`~binsight.device.memory.release_startup_pages`): lower peak and steady resident
        memory. For a process that runs one agent (``device run``), started from its main thread.
        """
        if release_memory:
            release_startup_pages()  # the imports' pages: the model load then peaks lower
        self.load_initial_model()
        if release_memory:
            before = memory_use()
            released = release_startup_pages()
            after = memory_use()
            if before is not None and after is not None:
                logger.info("%s: %.0f MB of start-up library pages released: resident %.0f -> %.0f MB "
                            "(anonymous %.0f MB)", self.bin_id, released, before.rss_mb, after.rss_mb,
                            after.anon_mb)  # fmt: skip
        self.link.start()
        self.updater.start()
        self.status.started = time.monotonic()
        version = self.model.version if self.model else NO_MODEL
        self.notifier.ready(f"bin {self.bin_id}, model {version}, interval {self.interval_s:g} s")
        self._thread = threading.Thread(target=self._loop, name=f"agent-{self.bin_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.notifier.stopping()
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(60.0)
        self.updater.stop()
        self.link.stop()
        self.source.close()
        self.outbox.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the agent stops by itself (source ended); True if it did."""
        return self._stop.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ----------------------------------------------------------------- loop
    def _loop(self) -> None:
        stats_every = self.cfg.stats.interval_s
        next_stats = time.monotonic() + min(stats_every, 5.0)
        watchdog_every = (self.notifier.watchdog_s or 0.0) / 3.0 or None
        next_watchdog = time.monotonic()
        # The first capture waits up to 5 s for the broker, so it goes out live, not as a replay
        # (the loop keeps running meanwhile: watchdog, commands).
        self._next_capture = time.monotonic() + 5.0
        first = True
        while not self._stop.is_set():
            self._wake.clear()
            now = time.monotonic()
            retry_at = self.capture_step.camera_retry_at
            try:
                self.commands.run_queued()
                if first and self.link.connected:
                    self._next_capture = now
                if now >= self._next_capture:
                    first = False
                    self._scheduled_capture(now)
                elif retry_at is not None and now >= retry_at:
                    self._retry_camera()
                if time.monotonic() >= next_stats:
                    self.outbox.flush()  # readings held while the disk was full, if there is room now
                    self.publish_stats()
                    next_stats = time.monotonic() + stats_every
            except EndOfSource as exc:
                logger.info("%s: %s; stopping after the outbox drains", self.bin_id, exc)
                self.finished = True
                self._drain_then_stop()
                return
            except OutboxError as exc:  # a setting not saved; a full disk was logged once by the outbox
                self.problems.set("loop", str(exc))
                level = logging.DEBUG if self.outbox.disk.full else logging.ERROR
                logger.log(level, "%s: %s", self.bin_id, exc)
            except Exception as exc:  # never let one bad capture kill an unattended agent
                self.problems.set("loop", f"capture loop: {type(exc).__name__}: {exc}")
                logger.exception("%s: capture loop error", self.bin_id)
            if watchdog_every is not None and time.monotonic() >= next_watchdog:
                if self.link.alive:  # a dead link thread means no data leaves: let systemd restart us
                    self.notifier.watchdog()
                next_watchdog = time.monotonic() + watchdog_every
            deadlines = [self._next_capture, next_stats]
            if self.capture_step.camera_retry_at is not None:
                deadlines.append(self.capture_step.camera_retry_at)
            if watchdog_every is not None:
                deadlines.append(next_watchdog)
            self._wake.wait(max(0.0, min(min(deadlines) - time.monotonic(), 0.1 if first else 1.0)))

    def _drain_then_stop(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.outbox.depth() + self.outbox.depth("event") > 0:
            time.sleep(0.1)
        self._stop.set()

    def _scheduled_capture(self, now: float) -> None:
        self._next_capture = now + jittered(self.interval_s, self.cfg.camera.jitter)
        self.capture_and_send()

    def _retry_camera(self) -> None:
        if self.capture_step.retry_camera():
            logger.info("%s: camera works again; capturing now", self.bin_id)
            self.capture_and_send()

    # ----------------------------------------------------------------- capture (see capture.py)
    def capture(self) -> CaptureResult:
        """Take one burst, gate it, infer: the reading not yet numbered (``seq`` 0)."""
        return self.capture_step.capture()

    def capture_and_send(self, image_reason: str | None = None) -> Reading | None:
        """Capture, store the reading (numbered) in the outbox, maybe an image too; wake the link."""
        return self.capture_step.capture_and_send(image_reason)

    @property
    def last_frame(self) -> Frame | None:
        return self.capture_step.last_frame

    @property
    def last_infer_ms(self) -> float | None:
        return self.capture_step.last_infer_ms

    @property
    def camera_ok(self) -> bool:
        return self.capture_step.camera_ok

    @property
    def captures(self) -> int:
        return self.capture_step.captures

    @property
    def unusable(self) -> int:
        return self.capture_step.unusable

    # ----------------------------------------------------------------- stats, events, commands
    def stats(self) -> Stats:
        version = self.model.version if self.model else NO_MODEL
        return self.status.stats(model=version, interval_s=self.interval_s, capture=self.capture_step)

    def publish_stats(self) -> bool:
        return self.status.publish(self.stats())

    def _interval_range(self) -> tuple[float, float]:
        low, high = SET_INTERVAL_RANGE_S
        configured = self.cfg.camera.interval_s
        return min(low, configured), max(high, configured)

    def _interval_allowed(self, interval_s: float) -> bool:
        low, high = self._interval_range()
        return math.isfinite(interval_s) and low <= interval_s <= high

    def set_interval(self, interval_s: float) -> None:
        """The ``set_interval`` command: kept across restarts until device.toml's own value changes.

        Raises ValueError, changing nothing, for an interval outside ``SET_INTERVAL_RANGE_S``.
        """
        if not self._interval_allowed(interval_s):
            low, high = self._interval_range()
            raise ValueError(f"interval {interval_s:g} s refused: this device takes {low:g} .. {high:g} s")
        self.interval_s = interval_s
        self._next_capture = time.monotonic() + jittered(self.interval_s, self.cfg.camera.jitter)
        self.outbox.set_setting("interval_s", f"{interval_s!r}@{self.cfg.camera.interval_s!r}")

    @property
    def last_error(self) -> str | None:
        """The most recent open problem, or None."""
        return self.problems.last

    def _event(self, kind: str, state: str, ref: str | None, detail: str | None) -> None:
        self.status.event(kind, state, ref, detail)

    def _report_model(self, state: str, version: str | None, detail: str | None) -> None:
        if state in ("failed", "retrying"):
            self.problems.set("update", f"model update {version or ''}: {detail}".strip())
        elif state in ("active", "rolled_back"):
            self.problems.clear("update")
        self._event("model", state, version, detail)

    def _activate(self, model: FillModel) -> None:
        # One reference assignment: the capture loop reads self.model once per capture.
        self.model = model
        self.capture_step.model_activated()
        self.problems.clear("model")
        self.problems.clear("inference")
        logger.info("%s: model %s active", self.bin_id, model.version)

    def _queue_release(self, payload: bytes) -> None:
        self.updater.offer(payload)


def run_agent(cfg: DeviceConfig, stop: threading.Event) -> int:
    """Run one agent until ``stop`` is set or its source ends; the CLI's ``device run``."""
    tune_malloc()
    agent = Agent(cfg)
    agent.start(release_memory=cfg.inference.release_startup_pages)
    try:
        while not stop.is_set() and not agent.wait(0.5):
            pass
    finally:
        agent.stop()
    return 0
