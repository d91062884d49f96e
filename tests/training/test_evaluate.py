"""``train eval``: ONNX Runtime alone, bad inputs named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from training_support import Fitted, copy_set, read_rows, write_rows

from binsight.cli import main
from binsight.errors import DataError
from binsight.training.evaluate import evaluate

pytestmark = pytest.mark.torch  # the model comes from the session's fit


def test_eval_needs_neither_torch_nor_sklearn(fitted: Fitted) -> None:
    """evaluate() runs in a process that never imports torch, timm or scikit-learn."""
    code = (
        "import sys, json; from binsight.training.evaluate import evaluate; "
        f"r = evaluate({str(fitted.model)!r}, {str(fitted.data)!r}, skip_bad=True); "
        "bad = [m for m in ('torch', 'sklearn', 'timm', 'onnx.reference') if m in sys.modules]; "
        "assert not bad, bad; print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    assert result["n"] == 48 and 0 <= result["mae"] < 0.5
    assert [Path(s["file"]).name for s in result["skipped"]] == ["missing.jpg", "broken.jpg"]


def test_eval_cli_json(fitted: Fitted, capsys: pytest.CaptureFixture[str]) -> None:
    """`binsight train eval MODEL DATA --json --skip-bad` prints one JSON object."""
    assert main(["train", "eval", str(fitted.model), str(fitted.data), "--json", "--skip-bad"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"n", "mae", "rmse", "r2"} <= set(result) and result["model"]["precision"] == "int8"


def test_eval_unreadable_without_skip_bad(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable image is an error naming it (exit 1 from the CLI)."""
    data = copy_set(fitted.data, tmp_path / "d")
    rows = [r for r in read_rows(data / "labels.csv") if "missing" not in r["image"]]
    write_rows(data / "labels.csv", rows)
    with pytest.raises(DataError, match=r"broken\.jpg"):
        evaluate(fitted.model, data)
    assert main(["train", "eval", str(fitted.model), str(data), "--json"]) == 1
    assert "broken.jpg" in capsys.readouterr().err


def test_eval_rejects_non_models(tmp_path: Path, fitted: Fitted) -> None:
    """A missing file or a file that is not a binsight model is a clear error."""
    with pytest.raises(DataError, match="does not exist"):
        evaluate(tmp_path / "none.onnx", fitted.data)
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot load"):
        evaluate(tmp_path / "junk.onnx", fitted.data)


def test_eval_task_mismatch(fitted: Fitted, class_dir: Path) -> None:
    """A fill model on a class-folder set says so."""
    with pytest.raises(DataError, match="class labels"):
        evaluate(fitted.fp32, class_dir)
