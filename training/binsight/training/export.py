"""Export the whole model as one ONNX file, check it, stamp its metadata, and quantize it to int8."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import onnx
import torch

from binsight.modelfile import INPUT_NAME, KEYS, PREFIX, ModelInfo
from binsight.training.extract import export_onnx
from binsight.training.features import ExportGraph
from binsight.training.runtime import session

__all__ = ["export_model", "max_abs_diff", "quantize_int8", "set_metadata"]

logger = logging.getLogger(__name__)


def export_model(model: ExportGraph, path: Path) -> None:
    """Write ``model`` as ONNX (opset 17, input ``image`` uint8 [N, H, W, 3] BGR) and run onnx.checker."""
    h, w = model.preprocess.size
    export_onnx(model, path, model.output_names, torch.zeros(1, h, w, 3, dtype=torch.uint8))
    onnx.checker.check_model(str(path), full_check=True)


def set_metadata(path: Path, meta: Mapping[str, str]) -> None:
    """Replace the file's ``binsight.*`` metadata (atomically) and re-check the file.

    ``meta`` names the keys without their ``binsight.`` prefix (``task``, ``input_size``...). Each
    must be a key of the contract (:data:`binsight.modelfile.KEYS`) and together they must pass the
    check every reader applies (:meth:`binsight.modelfile.ModelInfo.from_props`): training never
    writes a file that the device or the server would refuse.
    """
    props = {PREFIX + key: str(value) for key, value in meta.items()}
    unknown = sorted(set(props) - KEYS)
    if unknown:
        raise ValueError(f"{path}: {unknown} are not model-file metadata keys (binsight.modelfile.KEYS)")
    ModelInfo.from_props(props, path)
    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if not p.key.startswith(PREFIX)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "binsight"
    onnx.checker.check_model(proto)
    tmp = path.with_name(f".{path.name}.tmp")
    onnx.save(proto, str(tmp))
    os.replace(tmp, path)


def max_abs_diff(model: ExportGraph, path: Path, images: list[np.ndarray]) -> float:
    """Largest difference between the torch pipeline and ONNX Runtime on ``images`` (any sizes).

    Every output counts (fill and, with a class head, its probabilities).
    """
    sess = session(path, 1)
    names = list(model.output_names)
    worst = 0.0
    for img in images:
        x = img[None]
        with torch.inference_mode():
            ref = model(torch.from_numpy(x))
        refs = ref if isinstance(ref, tuple) else (ref,)
        got = sess.run(names, {INPUT_NAME: x})
        for r, g in zip(refs, got, strict=True):
            worst = max(worst, float(np.max(np.abs(np.asarray(g) - r.numpy()))))
    return worst


class _Calibration:
    """Feeds training images (already at the input size) to the calibrator, one at a time."""

    def __init__(self, images: list[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        img = next(self._it, None)
        return None if img is None else {INPUT_NAME: img[None]}

    def rewind(self) -> None:  # pragma: no cover - only the entropy/percentile calibrators rewind
        raise NotImplementedError


def quantize_int8(
    fp32: Path, out: Path, calibration: list[np.ndarray], *, keep_metadata: bool = True
) -> None:
    """Static int8 quantization (QDQ, per-channel weights, uint8 activations) calibrated on images.

    Only the backbone is quantized (convolutions, their ReLU6 clips and the residual adds: leaving
    the clips in float kept a dequantize/quantize pair around each and measured no faster than
    fp32); preprocessing, pooling and the linear head stay in float. (``quantize_dynamic`` measured 13x
    slower on this backbone and less accurate; it is not used.)
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("int8 calibration needs at least one image")
    with tempfile.TemporaryDirectory(prefix="binsight-q-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        staged = Path(tmp) / "int8.onnx"
        # The quantizer logs one INFO line per adjusted channel on the root logger; keep it quiet.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            quantize_static(
                str(pre),
                str(staged),
                _Calibration(calibration),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv", "Clip", "Add"],
                nodes_to_exclude=[
                    n.name for n in onnx.load(str(pre)).graph.node if not n.name.startswith("/backbone/")
                ],
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
        finally:
            logging.disable(previous)
        proto = onnx.load(str(staged))
        if keep_metadata:  # the caller then updates precision and metrics
            src = onnx.load(str(fp32), load_external_data=False)
            del proto.metadata_props[:]
            proto.metadata_props.extend(src.metadata_props)
        onnx.checker.check_model(proto)
        final_tmp = out.with_name(f".{out.name}.tmp")
        onnx.save(proto, str(final_tmp))
        os.replace(final_tmp, out)
    logger.info("int8 model written to %s (%s calibration images)", out, len(calibration))
