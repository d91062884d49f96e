"""The model-file contract in the core: the metadata reader, the checked info, the size rule, the hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from binsight.modelfile import (
    CLASS_METRICS,
    CLASSES,
    INPUT_SIZE,
    METRICS,
    MODEL_VERSION,
    PRECISION,
    TASK,
    ModelFileError,
    ModelInfo,
    aspect_input_size,
    file_sha256,
    read_model_info,
    read_props,
)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

META = {
    TASK: "regression",
    INPUT_SIZE: "[128, 160]",
    "binsight.backbone": "tiny-test",
    "binsight.features": "mean",
    "binsight.binsight_version": "0.1.0",
    MODEL_VERSION: "20261129T221500Z-3fa2c1d0",
    "binsight.dataset_fingerprint": "0" * 64,
    METRICS: json.dumps({"mae": 0.05, "n": 12}),
    "binsight.created_at": "2026-11-29T22:00:00Z",
    PRECISION: "fp32",
    "other.tool": "kept as it is",
}


def _model_bytes(meta: dict[str, str]) -> bytes:
    """A real ONNX model as onnx serialises it: opsets, doc strings, a graph with 40 kB of weights."""
    weights = numpy_helper.from_array(np.linspace(0, 1, 10_000, dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("ReduceMean", ["w"], ["wm"], keepdims=0),
            helper.make_node("Mul", ["m", "wm"], ["fill"], doc_string="weights x brightness"),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("fill", TensorProto.FLOAT, ["N"])],
        initializer=[weights],
        doc_string="a test graph",
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="binsight")
    model.ir_version, model.model_version, model.doc_string = 9, 3, "ü: not only ASCII"
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _onnx_props(data: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.ModelProto.FromString(data).metadata_props}


def _write(tmp_path: Path, data: bytes, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reads_what_onnx_reads(tmp_path: Path) -> None:
    """The metadata_props, other tools' keys included, exactly as onnx's own parser sees them."""
    data = _model_bytes(META)
    assert read_props(_write(tmp_path, data)) == _onnx_props(data) == META


def test_reads_the_model_files_the_parts_write(tmp_path: Path) -> None:
    """Files written by onnx.save (as training exports) give the checked info, classification too."""
    meta = {**META, TASK: "classification", CLASSES: json.dumps(["empty", "half", "full"])}
    path = tmp_path / "c.onnx"
    onnx.save(onnx.ModelProto.FromString(_model_bytes(meta)), str(path))
    info = read_model_info(path)
    assert (info.task, info.output, info.classes) == ("classification", "probs", ("empty", "half", "full"))
    assert (info.model_version, info.input_size, info.precision) == (META[MODEL_VERSION], (128, 160), "fp32")
    assert info.metrics == {"mae": 0.05, "n": 12} and info.backbone == "tiny-test"
    assert info.metadata["other.tool"] == "kept as it is"


def _tag(number: int, wire: int) -> bytes:
    return bytes([number << 3 | wire])  # numbers under 16: one byte


@pytest.mark.parametrize(
    "extra",
    [
        _tag(15, 0) + b"\x96\x01",  # varint (150)
        _tag(13, 1) + b"\x00" * 8,  # fixed64
        _tag(12, 5) + b"\x00" * 4,  # fixed32
        _tag(11, 2) + b"\x03abc",  # length-delimited
        _tag(10, 3) + _tag(1, 0) + b"\x01" + _tag(2, 3) + _tag(2, 4) + _tag(10, 4),  # nested groups
    ],
    ids=["varint", "fixed64", "fixed32", "bytes", "group"],
)
def test_fields_of_every_wire_type_are_skipped(tmp_path: Path, extra: bytes) -> None:
    """Unknown fields of each wire type, before and after the metadata, change nothing."""
    data = _model_bytes(META)
    for changed in (extra + data, data + extra):
        assert read_props(_write(tmp_path, changed)) == _onnx_props(changed) == META


def test_a_truncated_file_never_gives_wrong_values(tmp_path: Path) -> None:
    """Cut anywhere: the file is refused as not ONNX, or what is left is the start of the metadata."""
    data = _model_bytes(META)
    items = list(META.items())
    for cut in range(0, len(data), 7):
        try:
            props = read_props(_write(tmp_path, data[:cut]))
        except ModelFileError as exc:
            assert "m.onnx: not an ONNX model file" in str(exc) and exc.key is None
        else:
            assert list(props.items()) == items[: len(props)]
    with pytest.raises(ModelFileError, match="truncated"):
        read_props(_write(tmp_path, data[:-1]))


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "no ir_version"),
        (b"\x00garbage", "field number 0"),
        (b"\xff" * 64, "varint longer"),
        (b"\x08\x09" + _tag(14, 0) + b"\x01", "field 14"),  # metadata_props that is not a message
        (b"\x08\x09" + _tag(14, 2) + b"\x04" + _tag(1, 2) + b"\x02\xc3\x28", "utf-8"),  # bad UTF-8 key
        (b"\x08\x09" + _tag(10, 3) + _tag(1, 0) + b"\x01", "not closed"),  # a group never closed
        (b"\x08\x09" + _tag(10, 4), "wire type 4"),  # an end-group with no group open
        (b"\x08\x09" + _tag(11, 2) + b"\xff\xff\xff\xff\x0f", "truncated"),  # a 4 GiB field in 9 bytes
        (b"this is not a protobuf" * 10, "not an ONNX model file"),
    ],
)
def test_garbled_files_are_refused(tmp_path: Path, data: bytes, needle: str) -> None:
    """Bytes that are not an ONNX model: ModelFileError naming the file and what is wrong."""
    with pytest.raises(ModelFileError, match=needle) as exc:
        read_props(_write(tmp_path, data, "junk.onnx"))
    assert str(exc.value).startswith(f"{tmp_path / 'junk.onnx'}: not an ONNX model file")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"none\.onnx: cannot read the model file"):
        read_model_info(tmp_path / "none.onnx")


@pytest.mark.parametrize(
    ("change", "key", "needle"),
    [
        ({TASK: None}, TASK, r"metadata has no binsight.task \(regression\|classification\)"),
        ({TASK: "segmentation"}, TASK, "'segmentation', not regression|classification"),
        ({MODEL_VERSION: None}, MODEL_VERSION, "metadata has no binsight.model_version"),
        ({MODEL_VERSION: ""}, MODEL_VERSION, "metadata has no binsight.model_version"),
        ({INPUT_SIZE: None}, INPUT_SIZE, r"metadata has no binsight.input_size \(JSON \[h, w\]"),
        ({INPUT_SIZE: "oops"}, INPUT_SIZE, "'oops', expected JSON"),
        ({INPUT_SIZE: "[0, 5]"}, INPUT_SIZE, "expected JSON"),
        ({INPUT_SIZE: "[128]"}, INPUT_SIZE, "expected JSON"),
        ({INPUT_SIZE: "[128.5, 160]"}, INPUT_SIZE, "expected JSON"),
        ({INPUT_SIZE: "[true, 160]"}, INPUT_SIZE, "expected JSON"),
        ({TASK: "classification"}, CLASSES, "metadata has no binsight.classes"),
        ({TASK: "classification", CLASSES: "{}"}, CLASSES, "a JSON list"),
        ({TASK: "classification", CLASSES: '["only"]'}, CLASSES, "at least two"),
        ({PRECISION: "fp16"}, PRECISION, "not fp32|int8"),
        ({METRICS: "{oops"}, METRICS, "expected a JSON object"),
        ({METRICS: "[1, 2]"}, METRICS, "expected a JSON object"),
        ({CLASSES: '["only"]'}, CLASSES, "at least two"),  # a fill model's class head needs two classes too
        ({CLASSES: '["a", "b"]', CLASS_METRICS: "[1]"}, CLASS_METRICS, "expected a JSON object"),
    ],
)
def test_bad_or_missing_values_name_file_and_key(
    change: dict[str, str | None], key: str, needle: str
) -> None:
    """Each contract violation: a ModelFileError (a DataError) naming the file and the key."""
    props = {k: v for k, v in {**META, **change}.items() if v is not None}
    with pytest.raises(ModelFileError, match=needle) as exc:
        ModelInfo.from_props(props, "models/m.onnx")
    assert exc.value.key == key and str(exc.value).startswith("models/m.onnx: metadata ")
    assert key in str(exc.value)


def test_optional_keys_may_be_absent() -> None:
    """Only task, model version and input size are required (and classes for a classifier)."""
    info = ModelInfo.from_props({TASK: "regression", MODEL_VERSION: "v1", INPUT_SIZE: "[32, 32]"}, "m")
    assert (info.output, info.classes, info.metrics, info.precision) == ("fill", (), None, None)
    assert ModelInfo.from_props({**META, METRICS: "null"}, "m").metrics is None


def test_a_fill_model_with_a_class_head() -> None:
    """``binsight.classes`` on a regression model: a class head, outputs fill and probs, its metrics read;
    without it a fill model has one output, as always."""
    props = {
        **META,
        CLASSES: '["clean", "overflowing"]',
        CLASS_METRICS: json.dumps({"accuracy": 0.9, "n": 20}),
    }
    info = ModelInfo.from_props(props, "m")
    assert info.task == "regression" and info.has_class_head and info.classes == ("clean", "overflowing")
    assert info.outputs == ("fill", "probs") and dict(info.class_metrics or {}) == {"accuracy": 0.9, "n": 20}
    plain = ModelInfo.from_props(META, "m")
    assert not plain.has_class_head and plain.outputs == ("fill",) and plain.class_metrics is None
    cls = ModelInfo.from_props({**META, TASK: "classification", CLASSES: '["a", "b"]'}, "m")
    assert not cls.has_class_head and cls.outputs == ("probs",)


@pytest.mark.parametrize(
    ("frames", "side", "want"),
    [
        ([(240, 320)], 160, (128, 160)),  # 4:3: 120 rounded up to 128
        ([(480, 640), (480, 640), (1080, 1920)], 160, (128, 160)),  # the median frame decides
        ([(500, 500)], 160, (160, 160)),
        ([(320, 240)], 160, (160, 128)),  # portrait
        ([(1080, 1920)], 160, (96, 160)),  # 16:9: 90 -> 96
        ([(100, 1000)], 160, (64, 160)),  # never under the smallest side
        ([(480, 640)], 224, (192, 224)),  # 168 -> 192
        ([(480, 640)], 128, (96, 128)),
        ([], 160, (160, 160)),  # nothing readable: a square
    ],
)
def test_input_size_follows_the_frames_aspect(
    frames: list[tuple[int, int]], side: int, want: tuple[int, int]
) -> None:
    """The longer side given, the shorter one from the frames' median aspect, up to a multiple of 32."""
    assert aspect_input_size(side, frames) == want


def test_file_sha256_reads_in_chunks(tmp_path: Path) -> None:
    """Hash and size of a file larger than one chunk, and of an empty one."""
    data = np.random.default_rng(0).integers(0, 256, (1 << 20) + 123, dtype=np.uint8).tobytes()
    path = _write(tmp_path, data, "big.onnx")
    assert file_sha256(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert file_sha256(_write(tmp_path, b"", "empty")) == (hashlib.sha256(b"").hexdigest(), 0)
