"""Reading the model file: its metadata and a batched prediction loop (ONNX Runtime alone)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from binsight.errors import DataError

__all__ = ["META_PREFIX", "ModelInfo", "batches", "read_info"]

META_PREFIX = "binsight."


@dataclass(frozen=True)
class ModelInfo:
    """What the model file says about itself."""

    task: str
    classes: list[str]
    input_size: tuple[int, int]
    output: str
    metadata: dict[str, str]


def read_info(sess: ort.InferenceSession, path: str | Path = "model") -> ModelInfo:
    """Check the model follows the contract in docs/contracts.md and return its metadata."""
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    try:
        task = meta[META_PREFIX + "task"]
        size = json.loads(meta[META_PREFIX + "input_size"])
        classes = json.loads(meta.get(META_PREFIX + "classes", "[]"))
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a binsight model (metadata {exc} missing or malformed)") from exc
    inputs = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    want = "fill" if task == "regression" else "probs"
    if inputs != ["image"] or want not in outputs:
        raise DataError(f"{path}: expected input 'image' and output {want!r}, found {inputs} -> {outputs}")
    return ModelInfo(task, list(classes), (int(size[0]), int(size[1])), want, meta)


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(sess: ort.InferenceSession, info: ModelInfo, images: list[np.ndarray]) -> np.ndarray:
    """Model outputs for BGR images already resized to ``info.input_size``."""
    (out,) = sess.run([info.output], {"image": np.stack(images)})
    return np.asarray(out)
