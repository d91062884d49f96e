"""int8 export: int8 kernels where ONNX Runtime runs it, an integer input, the accuracy gate, metadata."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch
pytest.importorskip("torch")

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from training_support import Fitted  # noqa: E402

from binsight.modelfile import read_model_info  # noqa: E402
from binsight.training.evaluate import evaluate  # noqa: E402
from binsight.training.export import _integer_input, kernel_counts, quantize_int8  # noqa: E402
from binsight.training.images import input_frames  # noqa: E402
from binsight.training.quantize import INT8_TOLERANCE, int8_verdict  # noqa: E402
from binsight.training.runtime import fastest_ms, session  # noqa: E402


def _convs(path: Path) -> int:
    return sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)


def test_int8_file_runs_int8_convolutions(fitted: Fitted) -> None:
    """ONNX Runtime runs every convolution of the int8 file as QLinearConv, none in float, no input Cast."""
    ran = kernel_counts(fitted.model)
    assert ran.get("QLinearConv") == _convs(fitted.fp32) > 40
    assert "Conv" not in ran
    # The uint8 image goes straight into the quantized stem: no float copy of the frame.
    assert "Cast" not in ran and "Sub" not in ran and "QuantizeLinear" not in ran
    assert fitted.report["int8"]["kernels"] == ran
    assert "Conv" in kernel_counts(fitted.fp32) and "QLinearConv" not in kernel_counts(fitted.fp32)


def test_int8_metadata_states_precision_latency_and_delta(fitted: Fitted) -> None:
    """The int8 file says it is int8, how it was quantized, its measured latency ratio and accuracy delta."""
    info = read_model_info(fitted.model)
    assert info.precision == "int8" and read_model_info(fitted.fp32).precision == "fp32"
    q = json.loads(info.metadata["binsight.quantization"])
    section = fitted.report["int8"]
    assert q["latency_vs_fp32"] == section["latency"]["ratio"] > 0
    assert q["latency_vs_fp32"] == pytest.approx(q["int8_ms"] / q["fp32_ms"], abs=2e-3)
    assert section["latency"]["wall_ratio"] > 0 and "thread CPU time" in q["latency_measured"]
    assert q["delta"] == section["delta"] and q["calibration_images"] == 8
    assert q["fp32_model_version"] == read_model_info(fitted.fp32).model_version != info.model_version
    assert q["int8_kernels"]["QLinearConv"] == _convs(fitted.fp32)
    assert section["accepted"] and "within" in section["verdict"]


def test_device_runs_the_int8_file(fitted: Fitted) -> None:
    """The device (ONNX Runtime, no torch) loads the int8 file and predicts what the training side does."""
    from binsight.device.inference import load_model

    model = load_model(fitted.model)
    frames = input_frames(sorted(fitted.data.rglob("*.jpg"))[:5], model.input_size)  # broken.jpg left out
    assert len(frames) >= 4
    got = [p.fill for p in model.predict(frames)]
    (want,) = session(fitted.model, 1).run(["fill"], {"image": np.stack(frames)})
    assert got == pytest.approx(want.tolist(), abs=1e-6)


def test_broken_calibration_is_refused(fitted: Fitted, tmp_path: Path) -> None:
    """Calibrated on black frames, the int8 file loses far more than the tolerance: the gate refuses it."""
    h, w = read_model_info(fitted.fp32).input_size
    broken = tmp_path / "black-calibration.onnx"
    quantize_int8(fitted.fp32, broken, [np.zeros((h, w, 3), np.uint8)] * 4)
    fp32 = evaluate(fitted.fp32, fitted.data, skip_bad=True)
    int8 = evaluate(broken, fitted.data, skip_bad=True)
    accepted, why = int8_verdict("regression", fp32, int8)
    assert not accepted and "fp32 kept" in why
    # The same images through the file the fit kept pass the same gate.
    assert int8_verdict("regression", fp32, evaluate(fitted.model, fitted.data, skip_bad=True))[0]


@pytest.mark.parametrize(
    ("task", "fp32", "int8", "tolerance", "accepted"),
    [
        ("regression", 0.050, 0.055, None, True),
        ("regression", 0.050, 0.0601, None, False),
        ("regression", 0.050, 0.0601, 0.02, True),
        ("regression", 0.050, 0.040, 0.0, True),  # better is always fine
        ("classification", 0.90, 0.885, None, True),
        ("classification", 0.90, 0.87, None, False),
        ("classification", 0.90, 0.95, 0.0, True),
    ],
)
def test_int8_verdict(task: str, fp32: float, int8: float, tolerance: float | None, accepted: bool) -> None:
    """MAE may rise / accuracy may fall by at most the tolerance (default per task)."""
    key = "mae" if task == "regression" else "accuracy"
    assert int8_verdict(task, {key: fp32}, {key: int8}, tolerance)[0] is accepted


def test_int8_verdict_without_held_out_and_bad_tolerance() -> None:
    """No held-out figure keeps int8 and says it is unchecked; a negative tolerance is refused."""
    accepted, why = int8_verdict("regression", {"mae": None}, {"mae": None})
    assert accepted and "unchecked" in why
    with pytest.raises(ValueError, match="tolerance"):
        int8_verdict("classification", {"accuracy": 0.9}, {"accuracy": 0.9}, -0.01)
    assert set(INT8_TOLERANCE) == {"regression", "classification"}


def _qdq_stem(mean: float) -> onnx.ModelProto:
    """uint8 image -> Cast -> Transpose -> Resize -> Sub(mean) -> Q/DQ -> Conv, as the quantizer writes."""
    h, w = 8, 12
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([1.0, 1.0, 1.0, 1.0], np.float32), "scales"),
        numpy_helper.from_array(np.array(mean, np.float32), "mean"),
        numpy_helper.from_array(np.array(1.0, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(int(mean), np.uint8), "x_zero"),
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "weight"),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Resize", ["nchw", "", "scales"], ["resized"], mode="linear"),
        helper.make_node("Sub", ["resized", "mean"], ["centred"]),
        helper.make_node("QuantizeLinear", ["centred", "x_scale", "x_zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "x_scale", "x_zero"], ["dq"]),
        helper.make_node("Conv", ["dq", "weight"], ["out"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "stem",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, h, w, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, h, w])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_integer_input_is_exact() -> None:
    """Dropping Cast/Sub/QuantizeLinear in front of the stem gives the same outputs on every pixel value."""
    before = _qdq_stem(127.0)
    after = onnx.ModelProto()
    after.CopyFrom(before)
    assert _integer_input(after)
    onnx.checker.check_model(after)
    assert {n.op_type for n in after.graph.node} == {"Transpose", "Resize", "DequantizeLinear", "Conv"}
    image = np.arange(8 * 12 * 3, dtype=np.int64).reshape(1, 8, 12, 3) % 256
    image[0, 0, :2] = [[0, 0, 0], [255, 255, 255]]
    feed = {"image": image.astype(np.uint8)}
    (want,) = session(before.SerializeToString(), 1).run(None, feed)
    (got,) = session(after.SerializeToString(), 1).run(None, feed)
    np.testing.assert_array_equal(got, want)


def test_integer_input_leaves_other_graphs_alone() -> None:
    """A mean that is not one integer (per-channel ImageNet means) keeps the float input as it was."""
    model = _qdq_stem(123.675)
    assert not _integer_input(model)
    assert [n.op_type for n in model.graph.node][:4] == ["Cast", "Transpose", "Resize", "Sub"]


def test_refused_int8_leaves_fp32_as_the_model(fitted: Fitted, tmp_path: Path) -> None:
    """When the gate refuses, --out is the fp32 file and the int8 one is kept beside it as .int8.onnx."""
    from binsight.training.evaluate import TestedFile
    from binsight.training.pipeline import _keep_fp32, model_file

    out, fp32_path = tmp_path / "model.onnx", tmp_path / "model.fp32.onnx"
    shutil.copy(fitted.model, out)
    shutil.copy(fitted.fp32, fp32_path)
    tested = TestedFile(fp32_path, {}, read_model_info(fp32_path), np.zeros(0), {})
    section = {"path": str(out), "accepted": False}
    kept = _keep_fp32(out, tested, section)
    assert kept.path == out and read_model_info(out).precision == "fp32"
    assert read_model_info(tmp_path / "model.int8.onnx").precision == "int8" and not fp32_path.exists()
    assert model_file({"int8": section, "export": {"path": str(kept.path)}}) == str(out)


def test_fastest_ms_times_each_model_on_either_clock() -> None:
    """Wall clock or thread CPU time, one figure per model; a thread clock with several threads is refused."""
    models = {"a": _qdq_stem(127.0).SerializeToString(), "b": _qdq_stem(100.0).SerializeToString()}
    frame = np.zeros((1, 8, 12, 3), np.uint8)
    for clock in ("wall", "thread"):
        ms = fastest_ms(models, frame, rounds=2, runs=3, warmup=1, clock=clock)
        assert set(ms) == {"a", "b"} and all(0 < v < 1000 for v in ms.values())
    with pytest.raises(ValueError, match="threads=1"):
        fastest_ms(models, frame, threads=2, clock="thread")
    with pytest.raises(ValueError, match="clock"):
        fastest_ms(models, frame, clock="cpu")
