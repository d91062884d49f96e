"""One capture: a burst from the camera, the quality gate, the model, a reading (and maybe an image).

The camera's health lives here too: a failed read marks the camera down and schedules a retry
with capped backoff (the agent's loop calls :meth:`Capture.retry_camera` when it is due); a good
read marks it up again. Inference errors in a row roll the model back.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from binsight.device.clock import Clock
from binsight.device.config import DeviceConfig
from binsight.device.inference import FillModel, ModelError, Prediction
from binsight.device.labelling import encode_jpeg, label_reason, to_b64
from binsight.device.outbox import Outbox
from binsight.device.problems import Problems
from binsight.device.quality import assess
from binsight.device.schedule import Backoff
from binsight.device.sources import CameraError, Frame, FrameSource
from binsight.protocol import LabelImage, Reading

__all__ = ["NO_MODEL", "Capture", "CaptureResult"]

logger = logging.getLogger(__name__)

#: The ``model`` of readings and stats while no model is loaded.
NO_MODEL = "none"


@dataclass(frozen=True)
class CaptureResult:
    reading: Reading | None  # None when no model is loaded yet
    frame: Frame | None  # the frame the reading stands for (sharpest usable, else sharpest)
    confidence: float | None = None


class Capture:
    """Takes the bin's captures and stores them in the outbox.

    Parameters
    ----------
    model
        The running model, read once per capture (the updater may swap it between captures).
    rollback
        Called with the reason after ``inference.max_consecutive_errors`` inference errors in a row.
    stored
        Called once a reading (and maybe an image) is in the outbox: wakes the link.
    """

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        clock: Clock,
        source: FrameSource,
        outbox: Outbox,
        problems: Problems,
        model: Callable[[], FillModel | None],
        rollback: Callable[[str], object],
        stored: Callable[[], None],
        shadow: Callable[[], FillModel | None] = lambda: None,
    ) -> None:
        self.cfg = cfg
        self.bin_id = cfg.bin_id
        self.clock = clock
        self.source = source
        self.outbox = outbox
        self.problems = problems
        self._model = model
        self._rollback = rollback
        self._stored = stored
        self._shadow = shadow
        self.last_frame: Frame | None = None
        self.last_infer_ms: float | None = None
        self.camera_ok = True
        self.captures = 0
        self.unusable = 0
        self.camera_retry_at: float | None = None  # time.monotonic() of the next camera retry
        self._camera_backoff = Backoff(cfg.camera.retry_min_s, cfg.camera.retry_max_s)
        self._consecutive_errors = 0

    def model_activated(self) -> None:
        """A new model runs from the next capture: its inference errors count from zero."""
        self._consecutive_errors = 0

    # ----------------------------------------------------------------- camera
    def retry_camera(self) -> bool:
        """Reopen the camera after a failure; True when it works again."""
        self.camera_retry_at = None
        try:
            self.source.open()
        except CameraError as exc:
            self._camera_failed(exc)
            return False
        return True

    def _camera_failed(self, exc: CameraError) -> None:
        self.camera_ok = False
        self.problems.set("camera", str(exc))
        delay = self._camera_backoff.next()
        self.camera_retry_at = time.monotonic() + delay
        logger.warning("%s: %s; retrying in %.0f s", self.bin_id, exc, delay)

    def _camera_works(self) -> None:
        if not self.camera_ok:
            logger.info("%s: camera works again", self.bin_id)
        self.camera_ok = True
        self.problems.clear("camera")
        self._camera_backoff.reset()
        self.camera_retry_at = None

    # ----------------------------------------------------------------- capture
    def capture(self) -> CaptureResult:
        """Take one burst, gate it, infer: the reading not yet numbered (``seq`` 0)."""
        ts = self.clock.now_ms()
        cam = self.cfg.camera
        model = self._model()
        version = model.version if model else NO_MODEL
        try:
            frames = self.source.read_burst(cam.burst, cam.burst_gap_s)
        except CameraError as exc:
            self._camera_failed(exc)
            return CaptureResult(self._reading(ts, None, "camera_error", version), None)
        when = getattr(self.source, "frame_time_ms", None)
        if when is not None:
            ts = when  # a replayed image: the time it was taken, not the time of the replay
        self._camera_works()
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
        return self._infer(model, ts, chosen, [chosen] if cam.burst_mode == "sharpest" else usable)

    def _infer(self, model: FillModel, ts: int, chosen: Frame, to_run: list[Frame]) -> CaptureResult:
        t0 = time.perf_counter()
        try:
            preds = model.predict(to_run)
        except ModelError as exc:
            self._inference_failed(exc)
            return CaptureResult(self._reading(ts, None, "inference_error", model.version), chosen)
        self.last_infer_ms = (time.perf_counter() - t0) * 1000.0
        self._consecutive_errors = 0
        self.problems.clear("inference")
        self.problems.clear("loop")
        result = self._combine(ts, preds, model.version, chosen)
        return self._with_shadow(result, to_run)

    def _with_shadow(self, result: CaptureResult, frames: list[Frame]) -> CaptureResult:
        """During a shadow soak, the previous model's fill on the same frames, beside the new one's."""
        shadow = self._shadow()
        if shadow is None or result.reading is None or result.reading.fill is None:
            return result
        try:
            fills = [p.fill for p in shadow.predict(frames) if p.fill is not None]
        except ModelError as exc:  # the old model's trouble is no reason to lose the reading
            logger.debug("%s: shadow model %s: %s", self.bin_id, shadow.version, exc)
            return result
        if not fills:
            return result
        extra = {
            "shadow_model": shadow.version,
            "shadow_fill": min(1.0, max(0.0, float(statistics.median(fills)))),
        }
        reading = Reading.model_validate({**result.reading.model_dump(), **extra})
        return CaptureResult(reading, result.frame, result.confidence)

    def _combine(self, ts: int, preds: list[Prediction], version: str, frame: Frame) -> CaptureResult:
        fills = [p.fill for p in preds if p.fill is not None]
        fill = float(statistics.median(fills)) if fills else None
        spread = (max(fills) - min(fills)) if len(fills) > 1 else None
        labels = [p.label for p in preds if p.label is not None]
        label = Counter(labels).most_common(1)[0][0] if labels else None
        confs = [p.confidence for p in preds if p.confidence is not None]
        confidence = float(statistics.median(confs)) if confs else None
        # The class's probability: the median over the burst's frames that chose it.
        chosen = [p.confidence for p in preds if p.label == label and p.confidence is not None]
        label_prob = min(1.0, max(0.0, float(statistics.median(chosen)))) if chosen else None
        reading = self._reading(ts, fill, "ok", version, spread=spread, label=label, label_prob=label_prob)
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
        label_prob: float | None = None,
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
                "label_prob": label_prob,
            }
        )

    def _inference_failed(self, exc: ModelError) -> None:
        self._consecutive_errors += 1
        self.problems.set("inference", str(exc))
        logger.error("%s: %s", self.bin_id, exc)
        limit = self.cfg.inference.max_consecutive_errors
        if self._consecutive_errors >= limit:
            self._consecutive_errors = 0
            self._rollback(f"{limit} inference errors in a row: {exc}")

    # ----------------------------------------------------------------- store
    def capture_and_send(self, image_reason: str | None = None) -> Reading | None:
        """Capture, store the reading (numbered) in the outbox, maybe an image too; wake the link."""
        result = self.capture()
        if result.reading is None:
            self.problems.set("model", "no model loaded: waiting for a model release")
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
        self._stored()
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
