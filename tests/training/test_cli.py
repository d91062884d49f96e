"""``binsight train synth`` through the one command."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_support import read_rows

from binsight.cli import main


def test_train_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Writes the set and prints the labels.csv path."""
    assert (
        main(["-q", "train", "synth", str(tmp_path / "s"), "--bins", "2", "--per-bin", "2", "--seed", "3"])
        == 0
    )
    labels = Path(capsys.readouterr().out.strip())
    assert labels == tmp_path / "s" / "labels.csv" and len(read_rows(labels)) == 4


def test_train_synth_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Zero bins is an error, exit status 1."""
    assert main(["train", "synth", str(tmp_path / "s"), "--bins", "0"]) == 1
    assert "--bins" in capsys.readouterr().err


def test_train_fit_bad_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing data folder: one line on stderr, exit status 1, no model written."""
    assert main(["train", "fit", str(tmp_path / "none"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_train_fit_bad_input_size(
    tmp_path: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An input size that is not a multiple of 32 is refused before any work, naming the value."""
    out = tmp_path / "m.onnx"
    assert main(["train", "fit", str(synth_dir), "--out", str(out), "--input-size", "100"]) == 1
    assert "input size 100" in capsys.readouterr().err
    assert not out.exists()
    assert main(["train", "fit", str(synth_dir), "--out", str(out), "--input-size", "128x100"]) == 1
    assert "input size (128, 100)" in capsys.readouterr().err
    assert not out.exists()


def test_train_fit_input_size_form(
    tmp_path: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A size that is neither PX nor HxW is a usage error (exit 2) naming the value."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "fit", str(synth_dir), "--out", str(tmp_path / "m.onnx"), "--input-size", "160px"])
    assert exc.value.code == 2
    assert "input size '160px'" in capsys.readouterr().err


@pytest.mark.torch
def test_train_fit_at_a_smaller_input_size(
    tmp_path: Path, synth_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--input-size 128 on 4:3 frames: the model file says 96x128, takes such frames, predicts 0..1."""
    import json

    import numpy as np
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    assert main(["-q", "train", "fit", str(synth_dir), "--out", str(out), "--input-size", "128"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_size"] == [96, 128]
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert json.loads(sess.get_modelmeta().custom_metadata_map["binsight.input_size"]) == [96, 128]
    frames = np.random.default_rng(0).integers(0, 256, (2, 96, 128, 3), dtype=np.uint8)
    (fill,) = sess.run(["fill"], {"image": frames})
    assert fill.shape == (2,) and ((fill >= 0) & (fill <= 1)).all()
    assert summary["test"]["mae"] < 0.25  # the predict-the-mean baseline is ~0.25 on these sets
