"""The camera agent: capture on a schedule, gate, infer, store, publish; obey commands; update.

Threads: the capture loop (this module), the MQTT link (:mod:`binsight.device.link`) with paho's
network thread, and the model updater (:mod:`binsight.device.updates`). The capture loop is the
only one that touches the camera and the running model reference, and the only one that pings the
systemd watchdog, so a hung capture gets the agent restarted.
"""

from __future__ import annotations

import json
import logging
import queue
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from binsight.device.clock import Clock, WallClock
from binsight.device.config import DeviceConfig
from binsight.device.inference import FillModel, ModelError, Prediction, load_model
from binsight.device.labelling import encode_jpeg, label_reason, to_b64
from binsight.device.link import Link
from binsight.device.memory import memory_use, release_startup_pages, tune_malloc
from binsight.device.outbox import Outbox
from binsight.device.quality import assess
from binsight.device.schedule import Backoff, jittered
from binsight.device.sources import CameraError, EndOfSource, Frame, FrameSource, open_source
from binsight.device.updates import Updater
from binsight.protocol import Command, Event, LabelImage, Reading, Stats, Topics
from binsight.sdnotify import Notifier

__all__ = ["Agent", "CaptureResult"]

logger = logging.getLogger(__name__)

_NO_MODEL = "none"
#: Ids of the last commands run, kept (in the outbox database) to recognise a redelivery.
_DONE_COMMANDS = 200


@dataclass(frozen=True)
class CaptureResult:
    reading: Reading | None  # None when no model is loaded yet
    frame: Frame | None  # the frame the reading stands for (sharpest usable, else sharpest)
    confidence: float | None = None


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


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
        self.topics = Topics(cfg.mqtt.root)
        self.outbox = Outbox(
            cfg.outbox.path,
            {
                "reading": cfg.outbox.max_readings,
                "image": cfg.outbox.max_images,
                "event": cfg.outbox.max_events,
            },
        )
        self.interval_s = self._saved_interval(cam.interval_s)
        self.model: FillModel | None = None
        self.link = Link(
            cfg.mqtt, self.bin_id, self.outbox, on_command=self._queue_command, on_release=self._queue_release
        )
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
        self.last_frame: Frame | None = None
        self.last_infer_ms: float | None = None
        # Open problems by source ("camera", "model", "inference", "update", "loop"); each is
        # cleared when its source works again, so stats never show a problem fixed days ago.
        self._errors: dict[str, str] = {}
        self.camera_ok = True
        self.captures = 0
        self.unusable = 0
        self.finished = False  # the source ended (image folder or video without loop)
        self._camera_backoff = Backoff(cam.retry_min_s, cam.retry_max_s)
        self._camera_retry_at: float | None = None
        self._consecutive_errors = 0
        self._commands: queue.SimpleQueue[tuple[bytes, Callable[[], None]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._next_capture = 0.0

    def _saved_interval(self, configured: float) -> float:
        """The interval a command set, kept across restarts until device.toml's own value changes."""
        saved = self.outbox.get_setting("interval_s")
        if saved is None:
            return configured
        value, _, when_configured = saved.partition("@")
        try:
            if float(when_configured) == configured:
                return float(value)
        except ValueError:
            pass
        self.outbox.set_setting("interval_s", None)  # the operator edited the config since: it wins
        return configured

    # ----------------------------------------------------------------- lifecycle
    def load_initial_model(self) -> None:
        """Load ``cfg.model``; if it is broken, fall back to ``MODEL.prev``; else run without one."""
        path = self.cfg.model
        if not path.exists():
            self._set_error("model", f"model file {path} does not exist: waiting for a model release")
            logger.warning("%s: %s", self.bin_id, self.last_error)
        else:
            try:
                self.model = load_model(path, self.cfg.inference.threads)
                logger.info("%s: model %s (%s) loaded, warm-up %.0f ms", self.bin_id, self.model.version,
                            self.model.task, self.model.warmup_ms)  # fmt: skip
                return
            except ModelError as exc:
                self._set_error("model", str(exc))
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
        self._started = time.monotonic()
        version = self.model.version if self.model else _NO_MODEL
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
            try:
                self._handle_commands()
                if first and self.link.connected:
                    self._next_capture = now
                if now >= self._next_capture:
                    first = False
                    self._scheduled_capture(now)
                elif self._camera_retry_at is not None and now >= self._camera_retry_at:
                    self._retry_camera()
                if time.monotonic() >= next_stats:
                    self.publish_stats()
                    next_stats = time.monotonic() + stats_every
            except EndOfSource as exc:
                logger.info("%s: %s; stopping after the outbox drains", self.bin_id, exc)
                self.finished = True
                self._drain_then_stop()
                return
            except Exception as exc:  # never let one bad capture kill an unattended agent
                self._set_error("loop", f"capture loop: {type(exc).__name__}: {exc}")
                logger.exception("%s: capture loop error", self.bin_id)
            if watchdog_every is not None and time.monotonic() >= next_watchdog:
                if self.link.alive:  # a dead link thread means no data leaves: let systemd restart us
                    self.notifier.watchdog()
                next_watchdog = time.monotonic() + watchdog_every
            deadlines = [self._next_capture, next_stats]
            if self._camera_retry_at is not None:
                deadlines.append(self._camera_retry_at)
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
        self._camera_retry_at = None
        try:
            self.source.open()
        except CameraError as exc:
            self._camera_failed(exc)
            return
        logger.info("%s: camera works again; capturing now", self.bin_id)
        self.capture_and_send()

    def _camera_failed(self, exc: CameraError) -> None:
        self.camera_ok = False
        self._set_error("camera", str(exc))
        delay = self._camera_backoff.next()
        self._camera_retry_at = time.monotonic() + delay
        logger.warning("%s: %s; retrying in %.0f s", self.bin_id, exc, delay)

    # ----------------------------------------------------------------- capture
    def capture(self) -> CaptureResult:
        """Take one burst, gate it, infer: the reading not yet numbered (``seq`` 0)."""
        ts = self.clock.now_ms()
        cam = self.cfg.camera
        model = self.model
        version = model.version if model else _NO_MODEL
        try:
            frames = self.source.read_burst(cam.burst, cam.burst_gap_s)
        except CameraError as exc:
            self._camera_failed(exc)
            return CaptureResult(self._reading(ts, None, "camera_error", version), None)
        when = getattr(self.source, "frame_time_ms", None)
        if when is not None:
            ts = when  # a replayed image: the time it was taken, not the time of the replay
        if not self.camera_ok:
            logger.info("%s: camera works again", self.bin_id)
        self.camera_ok = True
        self._clear_error("camera")
        self._camera_backoff.reset()
        self._camera_retry_at = None
        checks = [assess(f, self.cfg.quality) for f in frames]
        usable = [f for f, q in zip(frames, checks, strict=True) if q.ok]
        usable_q = [q for q in checks if q.ok]
        need = self.cfg.quality.min_usable or (len(frames) // 2 + 1)
        need = min(need, len(frames))
        if len(usable) < need:
            reason = Counter(q.reason for q in checks if q.reason).most_common(1)[0][0]
            assert reason is not None
            best = max(range(len(frames)), key=lambda i: checks[i].sharpness)
            return CaptureResult(self._reading(ts, None, reason, version), frames[best])
        best_i = max(range(len(usable)), key=lambda i: usable_q[i].sharpness)
        chosen = usable[best_i]
        self.last_frame = chosen
        if model is None:
            return CaptureResult(None, chosen)
        to_run = [chosen] if cam.burst_mode == "sharpest" else usable
        t0 = time.perf_counter()
        try:
            preds = model.predict(to_run)
        except ModelError as exc:
            self._inference_failed(exc)
            return CaptureResult(self._reading(ts, None, "inference_error", version), chosen)
        self.last_infer_ms = (time.perf_counter() - t0) * 1000.0
        self._consecutive_errors = 0
        self._clear_error("inference")
        self._clear_error("loop")
        return self._combine(ts, preds, version, chosen)

    def _combine(self, ts: int, preds: list[Prediction], version: str, frame: Frame) -> CaptureResult:
        fills = [p.fill for p in preds if p.fill is not None]
        fill = float(statistics.median(fills)) if fills else None
        spread = (max(fills) - min(fills)) if len(fills) > 1 else None
        labels = [p.label for p in preds if p.label is not None]
        label = Counter(labels).most_common(1)[0][0] if labels else None
        confs = [p.confidence for p in preds if p.confidence is not None]
        confidence = float(statistics.median(confs)) if confs else None
        reading = self._reading(ts, fill, "ok", version, spread=spread, label=label)
        return CaptureResult(reading, frame, confidence)

    def _reading(
        self,
        ts: int,
        fill: float | None,
        quality: str,
        version: str,
        *,
        spread: float | None = None,
        label: str | None = None,
    ) -> Reading:
        return Reading.model_validate(
            {
                "bin_id": self.bin_id,
                "seq": 0,
                "ts": ts,
                "fill": fill,
                "quality": quality,
                "model": version,
                "spread": spread,
                "infer_ms": round(self.last_infer_ms, 2) if quality == "ok" and self.last_infer_ms else None,
                "label": label,
            }
        )

    def _inference_failed(self, exc: ModelError) -> None:
        self._consecutive_errors += 1
        self._set_error("inference", str(exc))
        logger.error("%s: %s", self.bin_id, exc)
        if self._consecutive_errors >= self.cfg.inference.max_consecutive_errors:
            self._consecutive_errors = 0
            self.updater.rollback(
                f"{self.cfg.inference.max_consecutive_errors} inference errors in a row: {exc}"
            )

    def capture_and_send(self, image_reason: str | None = None) -> Reading | None:
        """Capture, store the reading (numbered) in the outbox, maybe an image too; wake the link."""
        result = self.capture()
        if result.reading is None:
            self._set_error("model", "no model loaded: waiting for a model release")
            return None
        base = result.reading
        reading = self.outbox.add_reading(lambda seq: base.model_copy(update={"seq": seq}))
        self.captures += 1
        if reading.quality != "ok":
            self.unusable += 1
        reason = image_reason or label_reason(
            self.cfg.labelling, self.captures, reading.spread, result.confidence
        )
        if reason is not None and result.frame is not None and self.cfg.outbox.max_images > 0:
            self._store_image(reading, result.frame, reason)
        self.link.wake()
        logger.debug(
            "%s: reading seq %d fill %s quality %s", self.bin_id, reading.seq, reading.fill, reading.quality
        )
        return reading

    def _store_image(self, reading: Reading, frame: Frame, reason: str) -> None:
        lab = self.cfg.labelling
        jpeg = encode_jpeg(frame, lab.max_side, lab.max_bytes)
        msg = LabelImage.model_validate(
            {
                "bin_id": self.bin_id,
                "seq": reading.seq,
                "ts": reading.ts,
                "reason": reason,
                "fill": reading.fill,
                "model": reading.model,
                "jpeg_b64": to_b64(jpeg),
            }
        )
        self.outbox.add("image", msg.model_dump_json().encode())

    # ----------------------------------------------------------------- stats, events, commands
    def stats(self) -> Stats:
        return Stats(
            bin_id=self.bin_id,
            ts=self.clock.now_ms(),
            uptime_s=round(time.monotonic() - self._started, 1),
            outbox_depth=self.outbox.depth(),
            dropped=self.outbox.dropped,
            model=self.model.version if self.model else _NO_MODEL,
            interval_s=self.interval_s,
            last_infer_ms=round(self.last_infer_ms, 2) if self.last_infer_ms is not None else None,
            last_error=(self.last_error or self.link.last_error or "")[:500] or None,
            camera_ok=self.camera_ok,
            rss_mb=_rss_mb(),
            captures=self.captures,
            unusable=self.unusable,
        )

    def publish_stats(self) -> bool:
        payload = self.stats().model_dump_json().encode()
        return self.link.publish_now(self.topics.stats(self.bin_id), payload, qos=0)

    def _event(self, kind: str, state: str, ref: str | None, detail: str | None) -> None:
        event = Event.model_validate(
            {
                "bin_id": self.bin_id,
                "ts": self.clock.now_ms(),
                "kind": kind,
                "state": state,
                "ref": ref[:128] if ref else None,
                "detail": detail[:500] if detail else None,
            }
        )
        self.outbox.add("event", event.model_dump_json().encode())
        self.link.wake()

    def _report_model(self, state: str, version: str | None, detail: str | None) -> None:
        if state == "failed":
            self._set_error("update", f"model update {version or ''}: {detail}".strip())
        elif state in ("active", "rolled_back"):
            self._clear_error("update")
        self._event("model", state, version, detail)

    def _activate(self, model: FillModel) -> None:
        # One reference assignment: the capture loop reads self.model once per capture.
        self.model = model
        self._consecutive_errors = 0
        self._clear_error("model")
        self._clear_error("inference")
        logger.info("%s: model %s active", self.bin_id, model.version)

    @property
    def last_error(self) -> str | None:
        """The most recent open problem, or None."""
        return next(reversed(self._errors.values()), None)

    def _set_error(self, source: str, message: str) -> None:
        self._errors.pop(source, None)  # re-insert: most recent last
        self._errors[source] = message[:500]

    def _clear_error(self, source: str) -> None:
        self._errors.pop(source, None)

    def _queue_command(self, payload: bytes, ack: Callable[[], None] = lambda: None) -> None:
        self._commands.put((payload, ack))
        self._wake.set()

    def _queue_release(self, payload: bytes) -> None:
        self.updater.offer(payload)

    def _handle_commands(self) -> None:
        """Run queued commands, each once: acknowledged (PUBACK) only after it ran and was recorded,
        so one received but not run before a crash comes again, and one that comes again (a
        PUBACK lost with its session) is recognised by its id and not run twice."""
        while True:
            try:
                payload, ack = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                cmd = Command.model_validate_json(payload)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(message)"
                self._event("command", "failed", None, f"malformed command: {where}: {first['msg']}")
                ack()
                continue
            done = self._done_commands()
            if cmd.id in done:
                logger.info("%s: command %s already run; delivered again, ignored", self.bin_id, cmd.id)
            else:
                self._run_command(cmd)
                self.outbox.set_setting("done_commands", json.dumps([*done, cmd.id][-_DONE_COMMANDS:]))
            ack()

    def _done_commands(self) -> list[str]:
        raw = self.outbox.get_setting("done_commands")
        try:
            done = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [str(d) for d in done] if isinstance(done, list) else []

    def _run_command(self, cmd: Command) -> None:
        if cmd.action == "set_interval":
            if cmd.interval_s is None:
                self._event("command", "failed", cmd.id, "set_interval needs interval_s")
                return
            self.interval_s = cmd.interval_s
            self.outbox.set_setting("interval_s", f"{cmd.interval_s!r}@{self.cfg.camera.interval_s!r}")
            self._next_capture = time.monotonic() + jittered(self.interval_s, self.cfg.camera.jitter)
            self._event("command", "ok", cmd.id, f"interval {cmd.interval_s:g} s")
        elif cmd.action == "send_stats":
            sent = self.publish_stats()
            self._event("command", "ok" if sent else "failed", cmd.id, None if sent else "not connected")
        else:
            reason = cmd.reason if cmd.action == "send_image" else None
            reading = self.capture_and_send(image_reason=reason)
            if reading is None:
                self._event("command", "failed", cmd.id, self.last_error)
            else:
                self._event("command", "ok", cmd.id, f"seq {reading.seq} quality {reading.quality}")


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
