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
