"""Running the model file in training: its contract checked on a session, and a batched prediction loop.

The contract itself (metadata keys, their checks, the input and output names) is
:mod:`binsight.modelfile`, which the device and the server read too; this adds what only a loaded
ONNX Runtime session can tell: that the graph has the input and the output the metadata promises.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from binsight.errors import DataError
from binsight.modelfile import INPUT_NAME, ModelInfo, read_model_info

__all__ = ["batches", "read_info", "run"]


def read_info(sess: ort.InferenceSession, path: str | Path) -> ModelInfo:
    """The metadata of the model file ``path`` (loaded as ``sess``), checked against the contract.

    Raises
    ------
    DataError
        (:class:`binsight.modelfile.ModelFileError` for the metadata) naming the file and what is wrong.
    """
    info = read_model_info(path)
    inputs = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    if inputs != [INPUT_NAME] or not set(info.outputs) <= set(outputs):
        raise DataError(
            f"{path}: expected input {INPUT_NAME!r} and outputs {list(info.outputs)}, "
            f"found {inputs} -> {outputs}"
        )
    return info


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run(
    sess: ort.InferenceSession, info: ModelInfo, images: list[np.ndarray], output: str | None = None
) -> np.ndarray:
    """Model outputs (``output``, default the task's) for BGR images resized to ``info.input_size``."""
    (out,) = sess.run([output or info.output], {INPUT_NAME: np.stack(images)})
    return np.asarray(out)
