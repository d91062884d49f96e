"""The model-file contract as the device reads it: metadata, input, outputs, classification fills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from device_support import build_model, scene

from binsight.device.inference import FillModel, ModelError, class_fill


def test_regression_model_reads_metadata_and_predicts(model_v1: Path) -> None:
    """Input size and version come from the metadata; frames of any size are resized first."""
    m = FillModel(model_v1)
    assert (m.task, m.version, m.input_size) == ("regression", "v1", (32, 32))
    assert m.warmup_ms > 0
    preds = m.predict([scene(64), scene(192, size=(480, 640))])
    assert [p.fill for p in preds] == pytest.approx([64 / 255, 192 / 255], abs=0.03)
    assert m.prepare(scene(64)).shape == (32, 32, 3)
    assert m.predict([]) == []  # no frames (every one unusable): no predictions, not a crash


def test_classification_model_gives_label_confidence_and_fill(tmp_path: Path) -> None:
    """Class names that are fill levels give an expected fill; the top class is the label."""
    m = FillModel(build_model(tmp_path / "c.onnx", "c1", task="classification"))
    assert m.classes == ["empty", "half", "full"]
    (dark_pred,) = m.predict([scene(20)])
    assert dark_pred.label == "empty" and dark_pred.confidence is not None and dark_pred.confidence > 0.9
    assert dark_pred.fill is not None and dark_pred.fill < 0.1


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({"binsight.task": "segmentation"}, "binsight.task"),
        ({"binsight.model_version": ""}, "model_version"),
        ({"binsight.input_size": "[0, 5]"}, "input_size"),
        ({"binsight.input_size": "oops"}, "input_size"),
        ({"binsight.input_size": None}, r"m\.onnx: metadata has no binsight\.input_size"),
        ({"binsight.task": None}, r"m\.onnx: metadata has no binsight\.task"),
    ],
)
def test_contract_violations_are_refused(tmp_path: Path, meta: dict[str, str | None], needle: str) -> None:
    """Bad or missing metadata (binsight.modelfile's checks): ModelError naming the file and the key."""
    with pytest.raises(ModelError, match=needle):
        FillModel(build_model(tmp_path / "m.onnx", "v", metadata=meta))


def test_classes_must_be_listed(tmp_path: Path) -> None:
    """A classification model without a classes list is refused."""
    path = build_model(tmp_path / "m.onnx", "v", task="classification", metadata={"binsight.classes": "{}"})
    with pytest.raises(ModelError, match=r"binsight\.classes"):
        FillModel(path)


def test_not_a_model(tmp_path: Path) -> None:
    """A file that is not ONNX: ModelError naming the file."""
    p = tmp_path / "x.onnx"
    p.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=r"x\.onnx: cannot load"):
        FillModel(p)


def test_insane_output_refused(tmp_path: Path) -> None:
    """Fill outside 0..1 is an error, not a reading."""
    m = FillModel(build_model(tmp_path / "m.onnx", "v", scale=4.0))
    with pytest.raises(ModelError, match="outside"):
        m.predict([np.full((32, 32, 3), 200, np.uint8)])


@pytest.mark.parametrize(
    ("name", "fill"),
    [("0.25", 0.25), ("75%", 0.75), ("Full", 1.0), ("empty", 0.0), ("lots", None), ("150%", None)],
)
def test_class_fill(name: str, fill: float | None) -> None:
    """Class names map to fills when they are numbers, percentages or known words."""
    assert class_fill(name) == fill


def test_frames_of_another_shape_are_named_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """4:3 frames into a 4:3-sized model (128x160) pass quietly; into a square model, one warning per
    frame size says what the frames were and what a model fitted on them would take."""
    import json
    import logging

    fits = FillModel(build_model(tmp_path / "a.onnx", "a", metadata={"binsight.input_size": "[128, 160]"}))
    square = FillModel(build_model(tmp_path / "s.onnx", "s", metadata={"binsight.input_size": "[160, 160]"}))
    assert json.loads(square.metadata["binsight.input_size"]) == [160, 160]
    with caplog.at_level(logging.WARNING, logger="binsight.device.inference"):
        fits.predict([scene(64, size=(480, 640)), scene(64, size=(240, 320))])
        assert not caplog.records
        square.predict([scene(64, size=(480, 640))] * 3)
        square.predict([scene(64, size=(160, 160))])  # already the input size: nothing to say
        assert len(caplog.records) == 1
        msg = caplog.records[0].getMessage()
        assert "frames 640x480" in msg and "model's 160x160" in msg and "would take 160x128" in msg
        square.predict([scene(64, size=(1080, 1920))])
        assert len(caplog.records) == 2 and "would take 160x96" in caplog.records[1].getMessage()


def test_class_head_model_gives_fill_and_class_in_one_run(tmp_path: Path) -> None:
    """A fill model with a class head: fill from ``fill``, label and its probability from ``probs``."""
    m = FillModel(
        build_model(tmp_path / "two.onnx", "t1", class_head=["clean", "contaminated", "overflowing"])
    )
    assert m.task == "regression" and m.info.has_class_head and m.outputs == ["fill", "probs"]
    dark_pred, bright = m.predict([scene(20), scene(235)])
    assert dark_pred.fill == pytest.approx(20 / 255, abs=0.03) and dark_pred.label == "clean"
    assert bright.label == "overflowing" and bright.confidence is not None and bright.confidence > 0.9


def test_class_head_without_its_output_is_refused(tmp_path: Path) -> None:
    """Metadata promising a class head on a graph without ``probs``: refused, naming the output."""
    path = build_model(tmp_path / "m.onnx", "m1", metadata={"binsight.classes": '["a", "b"]'})
    with pytest.raises(ModelError, match="lacks output 'probs'"):
        FillModel(path)
