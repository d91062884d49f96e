"""The model file's contract (docs/contracts.md, "The model file"): one definition for every part.

Training writes the file, the device runs it, the server registers, re-checks and signs it; all of
them read its ``metadata_props`` through this module, so the keys, their rules and the error a bad
file gets exist once. Stdlib only: no torch, no ``onnx``, no ONNX Runtime. The metadata is read
straight from the file's protobuf bytes (:func:`read_props`): ``ModelProto`` field 14 holds the
``metadata_props`` entries (``StringStringEntryProto``, key = field 1, value = field 2); every other
field, the graph with its weights included, is skipped by its length without being read.

Also here: the input-size rule (:func:`aspect_input_size`), which training applies when it sizes a
model and the device applies to tell whether its frames fit one, and :func:`file_sha256`, the one
hash of a model file (releases, the server's registry, the device's session cache, training reports).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

from binsight.errors import DataError

__all__ = [
    "BACKBONE",
    "BACKBONE_WEIGHTS",
    "BINSIGHT_VERSION",
    "CLASSES",
    "CLASS_HEAD",
    "CLASS_METRICS",
    "CLASS_OUTPUT",
    "CREATED_AT",
    "DATASET_FINGERPRINT",
    "FEATURES",
    "HEAD",
    "INPUT_NAME",
    "INPUT_SIZE",
    "KEYS",
    "METRICS",
    "MIN_INPUT_SIDE",
    "MODEL_VERSION",
    "OUTPUT_NAMES",
    "PRECISION",
    "PRECISIONS",
    "PREFIX",
    "QUANTIZATION",
    "TASK",
    "ModelFileError",
    "ModelInfo",
    "aspect_input_size",
    "file_sha256",
    "model_version",
    "read_model_info",
    "read_props",
]

# --- The metadata keys (all values are strings on the wire) -------------------------------------

#: Every key binsight writes starts with this; others in ``metadata_props`` are left alone.
PREFIX = "binsight."
TASK = PREFIX + "task"  #: ``regression`` | ``classification``
CLASSES = PREFIX + "classes"  #: JSON list of class names (classification, or a fill model's class head)
INPUT_SIZE = PREFIX + "input_size"  #: JSON ``[h, w]``: what callers resize frames to
BACKBONE = PREFIX + "backbone"
BACKBONE_WEIGHTS = PREFIX + "backbone_weights"  #: file name and sha256 prefix of the weights
FEATURES = PREFIX + "features"  #: the feature recipe
HEAD = PREFIX + "head"  #: JSON description of the linear head
BINSIGHT_VERSION = PREFIX + "binsight_version"  #: the binsight that trained it
MODEL_VERSION = PREFIX + "model_version"  #: unique, e.g. ``20261129T221500Z-3fa2c1d0``
DATASET_FINGERPRINT = PREFIX + "dataset_fingerprint"
METRICS = PREFIX + "metrics"  #: JSON object: held-out metrics as ``train eval --json``
CREATED_AT = PREFIX + "created_at"  #: ISO 8601
PRECISION = PREFIX + "precision"  #: ``fp32`` | ``int8``
#: A regression model's class head (optional): its JSON description and its held-out metrics.
#: ``binsight.classes`` on a regression model names the class head's classes.
CLASS_HEAD = PREFIX + "class_head"
CLASS_METRICS = PREFIX + "class_metrics"
#: JSON object (int8 files): how it was quantized, its latency against the fp32 file, its accuracy delta
QUANTIZATION = PREFIX + "quantization"

KEYS = frozenset({TASK, CLASSES, INPUT_SIZE, BACKBONE, BACKBONE_WEIGHTS, FEATURES, HEAD, BINSIGHT_VERSION,
                  MODEL_VERSION, DATASET_FINGERPRINT, METRICS, CREATED_AT, PRECISION, CLASS_HEAD,
                  CLASS_METRICS, QUANTIZATION})  # fmt: skip

#: The graph's one input: ``uint8 [N, H, W, 3]``, BGR.
INPUT_NAME = "image"
#: The graph's output for each task: ``fill float32 [N]`` or ``probs float32 [N, C]``.
OUTPUT_NAMES: Mapping[str, str] = {"regression": "fill", "classification": "probs"}
#: A regression model with a class head has this second output: ``probs float32 [N, C]``.
CLASS_OUTPUT = "probs"
PRECISIONS = ("fp32", "int8")

Task = Literal["regression", "classification"]


class ModelFileError(DataError):
    """A model file cannot be read, is not ONNX, or breaks the metadata contract.

    ``path`` is the file and ``key`` the metadata key at fault (None when the file itself is).
    """

    def __init__(self, path: str | Path, problem: str, key: str | None = None) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
        self.key = key


# --- The validated model info ---------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself, checked against the contract.

    Built by :meth:`from_props` (or :func:`read_model_info`), which raises :class:`ModelFileError`
    naming the file and the key for a missing or malformed value. ``metadata`` keeps every entry
    as read, others' keys included.
    """

    task: Task
    model_version: str
    input_size: tuple[int, int]  # (h, w)
    classes: tuple[str, ...] = ()  # classification only: at least two
    precision: str | None = None
    metrics: Mapping[str, Any] | None = None
    backbone: str | None = None
    backbone_weights: str | None = None
    features: str | None = None
    binsight_version: str | None = None
    dataset_fingerprint: str | None = None
    created_at: str | None = None
    class_metrics: Mapping[str, Any] | None = None  # the class head's held-out metrics (two-head models)
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output(self) -> str:
        """The name of the graph's output for this task (``fill`` or ``probs``)."""
        return OUTPUT_NAMES[self.task]

    @property
    def has_class_head(self) -> bool:
        """A fill model that also outputs class probabilities (``probs``, over :attr:`classes`)."""
        return self.task == "regression" and bool(self.classes)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Every output the graph must have: ``(fill,)``, ``(probs,)`` or ``(fill, probs)``."""
        return (self.output, CLASS_OUTPUT) if self.has_class_head else (self.output,)

    @classmethod
    def from_props(cls, props: Mapping[str, str], path: str | Path) -> ModelInfo:
        """Check ``props`` (a file's ``metadata_props``) and read them; ``path`` names the file in errors."""
        task = _task(props, path)
        return cls(
            task=task,
            model_version=model_version(props, path),
            input_size=_input_size(props, path),
            # A regression model names classes only when it carries a class head (older readers ignore them).
            classes=_classes(props, path) if task == "classification" or CLASSES in props else (),
            precision=_precision(props, path),
            metrics=_metrics(props, path),
            backbone=props.get(BACKBONE),
            backbone_weights=props.get(BACKBONE_WEIGHTS),
            features=props.get(FEATURES),
            binsight_version=props.get(BINSIGHT_VERSION),
            dataset_fingerprint=props.get(DATASET_FINGERPRINT),
            created_at=props.get(CREATED_AT),
            class_metrics=_metrics(props, path, CLASS_METRICS),
            metadata=dict(props),
        )


def read_model_info(path: str | Path) -> ModelInfo:
    """:func:`read_props` of ``path``, checked: the model file's :class:`ModelInfo`."""
    return ModelInfo.from_props(read_props(path), path)


def model_version(props: Mapping[str, str], path: str | Path) -> str:
    """``binsight.model_version``, which must be there and not be empty."""
    version = props.get(MODEL_VERSION)
    if not version:
        raise ModelFileError(path, f"metadata has no {MODEL_VERSION}", MODEL_VERSION)
    return version


def _task(props: Mapping[str, str], path: str | Path) -> Task:
    task = props.get(TASK)
    if task is None:
        raise ModelFileError(path, f"metadata has no {TASK} (regression|classification)", TASK)
    if task not in OUTPUT_NAMES:
        raise ModelFileError(path, f"metadata {TASK} is {task!r}, not regression|classification", TASK)
    return cast(Task, task)


def _json(props: Mapping[str, str], key: str, path: str | Path, want: str) -> Any:
    raw = props.get(key)
    if raw is None:
        raise ModelFileError(path, f"metadata has no {key} ({want})", key)
    try:
        return json.loads(raw)
    except ValueError:
        raise ModelFileError(path, f"metadata {key} is {raw!r}, expected {want}", key) from None


def _input_size(props: Mapping[str, str], path: str | Path) -> tuple[int, int]:
    want = "JSON [h, w] of positive integers"
    size = _json(props, INPUT_SIZE, path, want)
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ModelFileError(
            path, f"metadata {INPUT_SIZE} is {props.get(INPUT_SIZE)!r}, expected {want}", INPUT_SIZE
        )
    return size[0], size[1]


def _classes(props: Mapping[str, str], path: str | Path) -> tuple[str, ...]:
    want = "a JSON list of at least two class names"
    classes = _json(props, CLASSES, path, want)
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise ModelFileError(path, f"metadata {CLASSES} is {props.get(CLASSES)!r}, expected {want}", CLASSES)
    return tuple(classes)


def _precision(props: Mapping[str, str], path: str | Path) -> str | None:
    precision = props.get(PRECISION)
    if precision is not None and precision not in PRECISIONS:
        raise ModelFileError(path, f"metadata {PRECISION} is {precision!r}, not fp32|int8", PRECISION)
    return precision


def _metrics(props: Mapping[str, str], path: str | Path, key: str = METRICS) -> Mapping[str, Any] | None:
    if props.get(key) is None:
        return None
    metrics = _json(props, key, path, "a JSON object")
    if metrics is not None and not isinstance(metrics, dict):
        raise ModelFileError(path, f"metadata {key} is {props[key][:80]!r}, expected a JSON object", key)
    return metrics


# --- metadata_props straight from the protobuf bytes ---------------------------------------------

_IR_VERSION = 1  # ModelProto.ir_version: every ONNX file has one, so a file without it is not ONNX
_METADATA_PROPS = 14  # ModelProto.metadata_props
_ENTRY_KEY, _ENTRY_VALUE = 1, 2  # StringStringEntryProto
_VARINT, _I64, _LEN, _GROUP_START, _GROUP_END, _I32 = 0, 1, 2, 3, 4, 5


class _WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


class _Message:
    """A cursor over one protobuf message: ``stream`` from where it stands to byte ``end``."""

    def __init__(self, stream: BinaryIO, end: int) -> None:
        self.stream = stream
        self.end = end

    def more(self) -> bool:
        return self.stream.tell() < self.end

    def _check(self, n: int, what: str) -> None:
        left = self.end - self.stream.tell()
        if n > left:
            raise _WireError(f"{what} of {n} bytes at byte {self.stream.tell()}, {left} left: truncated")

    def take(self, n: int, what: str = "field") -> bytes:
        self._check(n, what)
        data = self.stream.read(n)
        if len(data) != n:  # the file shrank while being read
            raise _WireError(f"{what} at byte {self.stream.tell()} is truncated")
        return data

    def skip(self, n: int, what: str = "field") -> None:
        self._check(n, what)
        self.stream.seek(n, os.SEEK_CUR)

    def varint(self) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.take(1, "varint")[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise _WireError(f"varint longer than 10 bytes before byte {self.stream.tell()}")

    def tag(self) -> tuple[int, int]:
        """The next field's ``(number, wire type)``."""
        key = self.varint()
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError(f"field number 0 at byte {self.stream.tell()}")
        return number, wire

    def skip_value(self, number: int, wire: int) -> None:
        """Skip the value of a field whose tag was just read, a (nested) group included."""
        groups: list[int] = []  # open groups, innermost last (no recursion: depth is the file's to choose)
        while True:
            if wire == _VARINT:
                self.varint()
            elif wire == _I64:
                self.skip(8)
            elif wire == _I32:
                self.skip(4)
            elif wire == _LEN:
                self.skip(self.varint())
            elif wire == _GROUP_START:
                groups.append(number)
            elif wire == _GROUP_END and groups and groups[-1] == number:
                groups.pop()
            else:
                raise _WireError(f"wire type {wire} of field {number} is not valid here")
            if not groups:
                return
            if not self.more():
                raise _WireError(f"group {groups[-1]} is not closed: truncated")
            number, wire = self.tag()

    def string(self, number: int, wire: int) -> str:
        if wire != _LEN:
            raise _WireError(f"string field {number} has wire type {wire}")
        return self.take(self.varint(), "string").decode("utf-8")


def _entry(data: bytes) -> tuple[str, str]:
    """One ``StringStringEntryProto``: ``(key, value)``, each empty when absent (proto defaults)."""
    entry = _Message(io.BytesIO(data), len(data))
    key = value = ""
    while entry.more():
        number, wire = entry.tag()
        if number == _ENTRY_KEY:
            key = entry.string(number, wire)
        elif number == _ENTRY_VALUE:
            value = entry.string(number, wire)
        else:
            entry.skip_value(number, wire)
    return key, value


def _model_props(model: _Message) -> dict[str, str]:
    props: dict[str, str] = {}
    has_ir_version = False
    while model.more():
        number, wire = model.tag()
        if number == _METADATA_PROPS:
            if wire != _LEN:
                raise _WireError(f"metadata_props (field 14) has wire type {wire}")
            key, value = _entry(model.take(model.varint(), "metadata entry"))
            props[key] = value  # a repeated key: the last one wins, as in ONNX Runtime
        else:
            has_ir_version |= number == _IR_VERSION and wire == _VARINT
            model.skip_value(number, wire)
    if not has_ir_version:
        raise _WireError("no ir_version")
    return props


def read_props(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX file ``path``, all of them, as a dict.

    Raises
    ------
    ModelFileError
        The file cannot be read or is not an ONNX model (not protobuf, truncated, no ir_version).
    """
    try:
        with open(path, "rb") as fh:
            return _model_props(_Message(fh, os.fstat(fh.fileno()).st_size))
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the model file: {exc.strerror or exc}") from exc
    except (_WireError, UnicodeDecodeError) as exc:
        raise ModelFileError(path, f"not an ONNX model file ({exc})") from exc


# --- The input-size rule ----------------------------------------------------------------------------

#: Smallest input side: below this the final 7x7-at-224 map shrinks under 2x2 and grid pooling loses meaning.
MIN_INPUT_SIDE = 64


def aspect_input_size(side: int, frames_hw: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """``(h, w)`` with the longer side ``side`` and the shorter following the frames' median aspect.

    The shorter side is rounded *up* to a multiple of 32 (never shrinking the frame more along it
    than along the longer side) and kept between :data:`MIN_INPUT_SIDE` and ``side``. No frames: a
    square. Training sizes a model's input with it (``resolve_input_size`` in
    ``binsight.training.pipeline`` checks ``side`` and calls this); the device uses it to tell whether
    its frames fit a model's input or get squashed.
    """
    if not frames_hw:
        return side, side
    aspect = statistics.median(h / w for h, w in frames_hw)

    def shorter(fraction: float) -> int:
        return min(side, max(MIN_INPUT_SIDE, 32 * math.ceil(side * fraction / 32 - 1e-9)))

    return (shorter(aspect), side) if aspect <= 1.0 else (side, shorter(1.0 / aspect))


# --- The file hash ------------------------------------------------------------------------------------


def file_sha256(path: str | Path) -> tuple[str, int]:
    """``(hex sha256, size in bytes)`` of a file, read in chunks: both from the same read.

    The one hash of a model file: what a release is signed over, what the server registers and
    serves, what the device checks a download against and shares sessions by.
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
