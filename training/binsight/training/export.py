"""Export the whole model as one ONNX file, check it, stamp its metadata, and quantize it to int8."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from binsight.errors import BinsightError
from binsight.modelfile import INPUT_NAME, KEYS, PREFIX, ModelInfo
from binsight.training.extract import export_onnx
from binsight.training.features import ExportGraph
from binsight.training.runtime import session

__all__ = [
    "Int8KernelError",
    "export_model",
    "kernel_counts",
    "max_abs_diff",
    "quantize_int8",
    "set_metadata",
]

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


class Int8KernelError(BinsightError):
    """ONNX Runtime would not run the quantized graph's convolutions as int8 kernels."""


def quantize_int8(
    fp32: Path, out: Path, calibration: list[np.ndarray], *, keep_metadata: bool = True
) -> dict[str, int]:
    """Static int8 quantization (QDQ, per-channel weights, uint8 activations) calibrated on images.

    Only the backbone is quantized (convolutions, their ReLU6 clips and the residual adds: leaving
    the clips in float kept a dequantize/quantize pair around each and measured no faster than
    fp32); preprocessing, pooling and every head stay in float. (``quantize_dynamic`` measured 13x
    slower on this backbone and less accurate; it is not used.) BatchNorm is already folded into the
    convolutions by the export (eval mode), so each quantized weight is the folded one.

    The input then skips float altogether (:func:`_integer_input`), and the file is checked to run
    every convolution as ONNX Runtime's ``QLinearConv`` (:class:`Int8KernelError` otherwise).
    Returns the node types of the graph ONNX Runtime optimizes the file into (:func:`kernel_counts`).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("int8 calibration needs at least one image")
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(fp32), load_external_data=False).graph.node)
    with tempfile.TemporaryDirectory(prefix="binsight-q-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        staged = Path(tmp) / "int8.onnx"
        # The quantizer logs one INFO line per adjusted channel on the root logger; keep it quiet.
        pre_proto = onnx.load(str(pre))
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
                    n.name for n in pre_proto.graph.node if not n.name.startswith("/backbone/")
                ],
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={
                    "ActivationSymmetric": False,
                    "WeightSymmetric": True,
                    "TensorQuantOverrides": _pixel_grid(pre_proto),
                },
            )
        finally:
            logging.disable(previous)
        proto = onnx.load(str(staged))
        if not _integer_input(proto):
            logger.warning("%s: the input stays float before its quantization (unexpected graph start)", out)
        if keep_metadata:  # the caller then updates precision and metrics
            src = onnx.load(str(fp32), load_external_data=False)
            del proto.metadata_props[:]
            proto.metadata_props.extend(src.metadata_props)
        onnx.checker.check_model(proto)
        counts = kernel_counts(proto.SerializeToString())
        if counts.get("QLinearConv", 0) != convs or counts.get("Conv", 0):
            raise Int8KernelError(
                f"ONNX Runtime runs {counts.get('QLinearConv', 0)} of the {convs} convolutions as int8 "
                f"(QLinearConv) and {counts.get('Conv', 0)} in float: {counts}"
            )
        final_tmp = out.with_name(f".{out.name}.tmp")
        onnx.save(proto, str(final_tmp))
        os.replace(final_tmp, out)
    logger.info("int8 model written to %s (%s calibration images)", out, len(calibration))
    return counts


def kernel_counts(model: Path | bytes) -> dict[str, int]:
    """Node types (and how many of each) of the graph ONNX Runtime optimizes ``model`` into.

    What runs, not what the file says: a ``QuantizeLinear``/``DequantizeLinear`` pair around a
    ``Conv`` in a QDQ file is only int8 arithmetic if ONNX Runtime fuses it into ``QLinearConv``.
    Optimized as :func:`binsight.training.runtime.session` does (all optimizations, one thread).
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="binsight-opt-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        opts.log_severity_level = 3
        source = str(model) if isinstance(model, Path) else model
        ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(opts.optimized_model_filepath).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def _pixel_grid(proto: onnx.ModelProto) -> dict[str, list[dict[str, Any]]]:
    """Quantize ``pixel - mean`` (one integer mean) with scale 1 and zero point ``mean``, whatever the images.

    That grid holds every integer pixel exactly, so the quantized input is the uint8 pixel itself
    (:func:`_integer_input`); and fixing it here, not after quantization, keeps the stem's int32 bias
    (quantized with input scale x weight scale) consistent with it. Calibrated instead, the scale
    is 1 only when the images reach both 0 and 255; otherwise the bias would not match a later
    rewrite and ONNX Runtime leaves the stem convolution in float.
    """
    init = {i.name: i for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Sub" and n.name.startswith("/preprocess/") and n.input[1] in init:
            mean = onnx.numpy_helper.to_array(init[n.input[1]])
            if mean.size == 1 and float(mean) == round(float(mean)) and 0 <= float(mean) <= 255:
                grid = {"scale": np.array(1.0, np.float32), "zero_point": np.array(int(mean), np.uint8)}
                return {n.output[0]: [grid]}
    return {}


def _integer_input(proto: onnx.ModelProto) -> bool:
    """Feed the uint8 image straight to the first quantized convolution; whether the graph allowed it.

    The quantizer leaves ``Cast -> Resize -> Sub(mean) -> QuantizeLinear`` in front of the stem. With
    one mean for all channels (EfficientNet-Lite: 127) and the grid :func:`_pixel_grid` fixed (scale 1,
    zero point ``mean``: ``pixel - mean`` exactly for every integer pixel) the quantized input is the
    pixel itself. So the Cast, the Sub and the QuantizeLinear go, the Resize runs on uint8 and feeds
    the stem's DequantizeLinear. ONNX Runtime then runs the input in NHWC with no layout transposes. At
    the input size (the device resizes frames first) the resize is an identity and the outputs are
    the same bits; other sizes round the resized pixels to integers, as quantizing did anyway.
    Measured on EfficientNet-Lite0 at 160x160, 1 thread: 0.1-0.3 ms of ~2.5 ms.
    """
    g = proto.graph
    if len(g.input) != 1 or g.input[0].type.tensor_type.elem_type != onnx.TensorProto.UINT8:
        return False
    image = g.input[0].name
    init = {i.name: i for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    casts = [n for n in users.get(image, []) if n.op_type == "Cast"]
    # The one QuantizeLinear of a Sub output: the mean-subtracted input.
    quants = [
        n
        for n in g.node
        if n.op_type == "QuantizeLinear" and getattr(producer.get(n.input[0]), "op_type", "") == "Sub"
    ]
    if len(casts) != 1 or len(users[image]) != 1 or len(quants) != 1:
        return False
    cast, quant = casts[0], quants[0]
    sub = producer[quant.input[0]]
    if sub.input[1] not in init or len(users[sub.output[0]]) != 1:
        return False
    mean = onnx.numpy_helper.to_array(init[sub.input[1]])
    resize = producer.get(sub.input[0])
    if mean.size != 1 or float(mean) != round(float(mean)) or not 0 <= float(mean) <= 255:
        return False
    if resize is None or resize.op_type != "Resize" or len(users[resize.output[0]]) != 1:
        return False
    # Resize must reach the cast through layout-only nodes (the NHWC -> NCHW Transpose).
    path = [resize]
    node = producer.get(resize.input[0])
    while node is not None and node is not cast:
        if node.op_type != "Transpose":
            return False
        path.append(node)
        node = producer.get(node.input[0])
    if node is not cast:
        return False
    dequants = users.get(quant.output[0], [])
    if not dequants or any(n.op_type != "DequantizeLinear" for n in dequants):
        return False
    # The grid :func:`_pixel_grid` asked for; the bias downstream was quantized with it.
    grid = [init.get(i) for i in quant.input[1:3]]
    if any(t is None for t in grid):
        return False
    scale, zero = (onnx.numpy_helper.to_array(t) for t in grid if t is not None)
    if float(scale) != 1.0 or zero.dtype != np.uint8 or int(zero) != int(mean):
        return False
    for n in users[cast.output[0]]:
        n.input[:] = [image if i == cast.output[0] else i for i in n.input]
    for n in dequants:
        n.input[0] = resize.output[0]
    dropped = {id(cast), id(sub), id(quant)}
    kept = [n for n in g.node if id(n) not in dropped]
    del g.node[:]
    g.node.extend(kept)
    # The tensors between the image and the Resize are uint8 now: drop their stale float shapes.
    retyped = {o for n in path for o in n.output}
    infos = [v for v in g.value_info if v.name not in retyped]
    del g.value_info[:]
    g.value_info.extend(infos)
    used = {i for n in kept for i in n.input}
    inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    return True
