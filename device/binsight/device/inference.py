"""The fill model on ONNX Runtime, as described in docs/contracts.md ("The model file").

Input ``image``: uint8 ``[N, H, W, 3]`` BGR. Output ``fill`` ``[N]`` (regression) or ``probs``
``[N, C]`` (classification), or both (a fill model with a class head: one run, both outputs).
Frames are resized to the metadata's ``input_size`` with ``INTER_AREA`` first, as training does.
The metadata is read and checked by :mod:`binsight.modelfile`, as the server and training read it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from binsight.device.memory import release_free_heap, tune_malloc
from binsight.device.sources import Frame
from binsight.errors import BinsightError
from binsight.modelfile import INPUT_NAME, ModelFileError, aspect_input_size, file_sha256, read_model_info

__all__ = ["FillModel", "ModelError", "Prediction", "class_fill", "load_model", "tune_malloc"]

logger = logging.getLogger(__name__)

# Class names that mean a fill level, for classification models whose classes are not numbers.
_NAMED_FILLS = {"empty": 0.0, "low": 0.25, "quarter": 0.25, "half": 0.5, "high": 0.75, "full": 1.0,
                "overflow": 1.0, "overflowing": 1.0}  # fmt: skip


class ModelError(BinsightError):
    """A model file cannot be loaded, breaks the model-file contract, or gives insane output."""


@dataclass(frozen=True)
class Prediction:
    fill: float | None
    label: str | None = None
    confidence: float | None = None  # top class probability (classification, or a class head)


def class_fill(name: str) -> float | None:
    """The fill a class name stands for: ``"0.75"``, ``"75%"``, ``"full"``...; None if unknown."""
    text = name.strip().lower()
    if text in _NAMED_FILLS:
        return _NAMED_FILLS[text]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%?)", text)
    if m is None:
        return None
    value = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    return value if 0.0 <= value <= 1.0 else None


class FillModel:
    """One loaded ONNX model. ``predict`` is thread-safe (ORT sessions are)."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads cost a busy 2-core box more than they save.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # One frame every few minutes: no arena holding the peak activations between runs.
        opts.enable_cpu_mem_arena = False
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types (Fail, InvalidProtobuf, NoSuchFile...)
            raise ModelError(f"{self.path}: cannot load ONNX model: {exc}") from exc
        try:
            self.info = read_model_info(self.path)
        except ModelFileError as exc:
            raise ModelError(str(exc)) from exc
        self.metadata = dict(self.info.metadata)
        self.task = self.info.task
        self.version = self.info.model_version
        self.input_size = self.info.input_size
        self._frame_shapes: set[tuple[int, int]] = set()  # frame sizes already checked against the input
        self.classes: list[str] = list(self.info.classes)
        self.class_fills: list[float] | None = None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].type != "tensor(uint8)":
            got = [(i.name, i.type) for i in inputs]
            raise ModelError(f"{self.path}: expected one uint8 input {INPUT_NAME!r}, model has {got}")
        outputs = {o.name for o in self.session.get_outputs()}
        self.output = self.info.output
        # A fill model with a class head: one run gives both outputs (docs/contracts.md).
        self.outputs = list(self.info.outputs)
        missing = [o for o in self.outputs if o not in outputs]
        if missing:
            raise ModelError(f"{self.path}: {self.task} model lacks output {missing[0]!r} (has {outputs})")
        if self.task == "classification":
            fills = [class_fill(c) for c in self.classes]
            if all(f is not None for f in fills):
                self.class_fills = [float(f) for f in fills if f is not None]
            else:
                logger.warning("%s: classes %s are not fill levels: readings carry the label only",
                               self.path, self.classes)  # fmt: skip
        self.warmup_ms = self._warmup()
        release_free_heap()  # the protobuf copies of the weights, freed after loading

    def _warmup(self) -> float:
        # The first run allocates and plans; do it now, not on the first real capture.
        h, w = self.input_size
        t0 = time.perf_counter()
        self.predict([np.zeros((h, w, 3), np.uint8)])
        return (time.perf_counter() - t0) * 1000.0

    def prepare(self, frame: Frame) -> Frame:
        h, w = self.input_size
        if frame.shape[0] == h and frame.shape[1] == w:
            return frame
        shape = (int(frame.shape[0]), int(frame.shape[1]))
        if shape not in self._frame_shapes:
            self._frame_shapes.add(shape)
            self._check_aspect(shape)
        return np.asarray(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)

    def _check_aspect(self, shape: tuple[int, int]) -> None:
        """Warn once per frame size when resizing changes the frame's shape beyond the training rule.

        ``train fit`` sizes the input from its frames (:func:`binsight.modelfile.aspect_input_size`:
        the longer side, the shorter one following their aspect, rounded up to a multiple of 32):
        frames that rule would give this very input fit; others are squashed or stretched, which the
        head never saw (a model trained on frames of another camera, or from before the rule: a
        square input).
        """
        h, w = self.input_size
        fits = aspect_input_size(max(h, w), [shape])
        if fits != (h, w):
            fh, fw = shape
            logger.warning(
                "frames %dx%d (w x h, aspect %.2f) are resized to the model's %dx%d (aspect %.2f): their "
                "shape changes; a model fitted on this camera's frames would take %dx%d "
                "(binsight train fit sizes the input from its images)",
                fw,
                fh,
                fh / fw,
                w,
                h,
                h / w,
                fits[1],
                fits[0],
            )

    def predict(self, frames: list[Frame]) -> list[Prediction]:
        """One prediction per frame.

        Raises
        ------
        ModelError
            ORT failed, or the output has the wrong shape or values outside their range.
        """
        if not frames:
            return []
        # One frame per run: a burst then needs one frame's activations, not three.
        rows: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for frame in frames:
            try:
                outs = self.session.run(self.outputs, {"image": self.prepare(frame)[None]})
            except Exception as exc:  # ORT's own exception types
                raise ModelError(f"inference failed: {exc}") from exc
            for k, o in enumerate(outs):
                rows[k].append(np.asarray(o, dtype=np.float64))
        n = len(frames)
        if self.task == "regression":
            out = np.concatenate(rows[0]) if rows[0] else np.zeros((0,), np.float64)
            if out.shape != (n,) or not np.all(np.isfinite(out)) or out.min() < 0.0 or out.max() > 1.0:
                raise ModelError(f"model output 'fill' {out.shape} outside [0, 1] or not finite: {out[:4]}")
            if not self.info.has_class_head:
                return [Prediction(fill=float(v)) for v in out]
            probs = self._distribution(rows[1], n)
            return [
                Prediction(fill=float(v), label=self.classes[int(p.argmax())], confidence=float(p.max()))
                for v, p in zip(out, probs, strict=True)
            ]
        preds = []
        for row in self._distribution(rows[0], n):
            k = int(row.argmax())
            fill = None
            if self.class_fills is not None:
                fill = min(1.0, max(0.0, float(np.dot(row, self.class_fills))))
            preds.append(Prediction(fill=fill, label=self.classes[k], confidence=float(row[k])))
        return preds

    def _distribution(self, rows: list[np.ndarray], n: int) -> np.ndarray:
        """The ``probs`` rows, checked: ``[n, classes]``, finite, each summing to 1."""
        out = np.concatenate(rows) if rows else np.zeros((0, len(self.classes)), np.float64)
        c = len(self.classes)
        if (
            out.shape != (n, c)
            or not np.all(np.isfinite(out))
            or out.min() < -1e-6
            or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
        ):
            raise ModelError(f"model output 'probs' {out.shape} (expected ({n}, {c})) is not a distribution")
        return out

    def sanity_check(self, frame: Frame | None) -> float:
        """Run on ``frame`` (or a grey test frame); returns ms. Raises ModelError if the output is bad."""
        if frame is None:
            h, w = self.input_size
            frame = np.full((h, w, 3), 127, np.uint8)
        t0 = time.perf_counter()
        (pred,) = self.predict([frame])
        ms = (time.perf_counter() - t0) * 1000.0
        if pred.fill is not None and not math.isfinite(pred.fill):
            raise ModelError("sanity check: fill is not finite")
        return ms


_cache: weakref.WeakValueDictionary[tuple[str, int], FillModel] = weakref.WeakValueDictionary()
_cache_lock = threading.Lock()


def load_model(path: str | Path, threads: int = 1, sha256: str | None = None) -> FillModel:
    """Load a model, sharing one session per (file hash, threads) within the process.

    Simulated fleets run many agents on the same file; each would otherwise hold its own copy.
    """
    if sha256 is None:
        try:
            sha256, _ = file_sha256(path)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model: {exc.strerror or exc}") from exc
    key = (sha256, threads)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            model = FillModel(path, threads)
            _cache[key] = model
        return model
