"""``train fit`` end to end: one ONNX graph honouring the model-file contract, and its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.torch
pytest.importorskip("torch")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from training_support import Fitted, copy_set, read_rows, write_rows  # noqa: E402

from binsight.errors import BinsightError, DataError  # noqa: E402
from binsight.training import DEFAULT_INPUT_SIZE  # noqa: E402
from binsight.training.data import load_dataset  # noqa: E402
from binsight.training.evaluate import evaluate  # noqa: E402
from binsight.training.pipeline import fit_dataset, holdout_split  # noqa: E402

CONTRACT_KEYS = {
    "task", "input_size", "backbone", "features", "binsight_version", "model_version",
    "dataset_fingerprint", "metrics", "created_at", "precision",
}  # fmt: skip


def _meta(path: Path) -> dict[str, str]:
    return {p.key.removeprefix("binsight."): p.value for p in onnx.load(str(path)).metadata_props}


def test_model_file_contract(fitted: Fitted) -> None:
    """uint8 [N, H, W, 3] image in, float fill [N] out, checker passes, metadata as documented."""
    onnx.checker.check_model(str(fitted.fp32), full_check=True)
    sess = ort.InferenceSession(str(fitted.fp32), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, len(inp.shape)) == ("image", "tensor(uint8)", 4) and inp.shape[3] == 3
    assert [(o.name, o.type) for o in sess.get_outputs()] == [("fill", "tensor(float)")]
    assert all(isinstance(d, str) for d in inp.shape[:3])  # N, H, W dynamic
    meta = _meta(fitted.fp32)
    assert set(meta) >= CONTRACT_KEYS
    assert meta["task"] == "regression" and meta["precision"] == "fp32"
    # The synthetic frames are 4:3 (240x320): the longer side is the default, the shorter 120 -> 128.
    assert (
        json.loads(meta["input_size"]) == [128, DEFAULT_INPUT_SIZE] == fitted.report["backbone"]["input_size"]
    )
    assert fitted.report["backbone"]["input_size_asked"] == DEFAULT_INPUT_SIZE
    assert json.loads(meta["metrics"]) == fitted.report["test"]
    used = load_dataset(fitted.data, skip_bad=True)
    used.drop([i for i, s in enumerate(used.samples) if s.path.name == "broken.jpg"], "unreadable image")
    assert meta["dataset_fingerprint"] == used.fingerprint()
    # Any frame size works: the graph resizes; outputs stay within 0..1.
    frames = np.random.default_rng(0).integers(0, 256, (2, 97, 131, 3), dtype=np.uint8)
    (fill,) = sess.run(["fill"], {"image": frames})
    assert fill.shape == (2,) and fill.min() >= 0.0 and fill.max() <= 1.0


def test_onnx_matches_torch(fitted: Fitted) -> None:
    """ONNX Runtime reproduces the torch pipeline within 1e-4 (also on a non-224 frame)."""
    assert fitted.report["export"]["max_abs_diff_vs_torch"] <= 1e-4


def test_int8_is_static_per_channel_qdq(fitted: Fitted) -> None:
    """--int8 writes a QDQ model (no dynamic quantization) whose metric delta is reported."""
    model = onnx.load(str(fitted.model))
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert "DynamicQuantizeLinear" not in ops
    per_channel = [
        i for i in model.graph.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1
    ]
    assert per_channel, "weights should carry one scale per output channel"
    assert _meta(fitted.model)["precision"] == "int8"
    q = fitted.report["int8"]
    assert q["delta"]["mae"] == pytest.approx(q["test"]["mae"] - fitted.report["test"]["mae"])
    assert q["calibration_images"] == 8


def test_report_contents(fitted: Fitted) -> None:
    """Candidates with scores, a learning curve, baselines, skipped rows and a figure."""
    r = fitted.report
    assert json.loads(fitted.report_path.read_text()) == json.loads(json.dumps(r))
    assert Path(r["figure"]).stat().st_size > 10_000
    cands = r["features"]["candidates"]
    assert len(cands) >= 5 and all(c["cv_se"] > 0 for c in cands)
    # The one-standard-error rule: the smallest candidate within one SE of the best CV MAE.
    best = min(cands, key=lambda c: c["cv_score"])
    close = [c for c in cands if c["cv_score"] <= best["cv_score"] + best["cv_se"]]
    assert r["features"]["chosen"] == min(close, key=lambda c: c["dim"])["recipe"]
    assert "one standard error" in r["features"]["rule"]
    gap = r["cv_vs_held_out"]
    assert gap["metric"] == "mae" and gap["held_out"] == r["test"]["mae"]
    assert gap["gap"] == pytest.approx(gap["held_out"] - gap["cv_estimate"])
    assert [p["n"] for p in r["learning_curve"]] == [10, 25, r["split"]["train"]]
    assert {"mean", "colour_histogram", "raw_pixels"} <= set(r["baselines"])
    reasons = {Path(s["file"]).name: s["reason"] for s in r["data"]["skipped"]}
    assert reasons == {"missing.jpg": "image file does not exist", "broken.jpg": "unreadable image"}
    # Deep features must beat predicting the mean on held-out bins.
    assert r["test"]["mae"] < r["baselines"]["mean"]["mae"]


def test_split_keeps_bins_apart(fitted: Fitted) -> None:
    """No bin has images on both sides of the held-out split."""
    ds = load_dataset(fitted.data, skip_bad=True)
    tr, te, note = holdout_split(ds)
    groups = ds.groups()
    assert not set(groups[tr]) & set(groups[te])
    assert "by bin_id" in note and fitted.report["split"]["method"].startswith("by bin_id")


def test_eval_agrees_with_report(fitted: Fitted, tmp_path: Path) -> None:
    """train eval on the held-out bins reproduces the metrics stamped into the file."""
    test_bins = set(fitted.report["split"]["test_bins"])
    held = copy_set(fitted.data, tmp_path / "held")
    rows = [
        r for r in read_rows(held / "labels.csv") if r["bin_id"] in test_bins and "broken" not in r["image"]
    ]
    write_rows(held / "labels.csv", rows)
    result = evaluate(fitted.fp32, held)
    for key in ("n", "mae", "rmse", "r2"):
        assert result[key] == pytest.approx(fitted.report["test"][key], rel=1e-6)
    assert result["model"]["precision"] == "fp32"


def test_unreadable_image_without_skip_bad_names_it(fitted: Fitted, lite0: Any, cache_dir: Path) -> None:
    """Without --skip-bad a bad image stops the fit before any model is written, naming file and row."""
    ds = load_dataset(fitted.data, skip_bad=True)  # the missing file is a load-time skip
    out = fitted.data / "never.onnx"
    with pytest.raises(DataError, match=r"broken\.jpg \(labels\.csv row \d+\): cannot decode"):
        fit_dataset(ds, out, backbone=lite0, cache_dir=cache_dir, progress=False)
    assert not out.exists()


def test_classification_model(fitted_classes: tuple[Path, dict[str, Any]], class_dir: Path) -> None:
    """Class folders give a probs output with the classes in the metadata, and a random-split note."""
    model, report = fitted_classes
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["probs"]
    meta = _meta(model)
    assert json.loads(meta["classes"]) == ["high", "low"] and meta["task"] == "classification"
    assert "images of one bin may sit on both sides" in report["split"]["method"]
    assert report["head"]["kind"] in ("logistic", "linear_svm")
    result = evaluate(model, class_dir)
    assert set(result) >= {"n", "accuracy", "macro_f1", "classes", "confusion"}
    assert result["n"] == 48 and np.asarray(result["confusion"]).sum() == 48
    frames = np.zeros((3, 224, 224, 3), np.uint8)
    (probs,) = sess.run(["probs"], {"image": frames})
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_backbone_auto_chooses_by_cv_within_the_budget(
    synth_dir: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--backbone auto`: a Lite over the latency budget is never fitted; of the others the best CV
    score wins unless a faster one is within one standard error; the file holds the chosen backbone and
    the report states the budget, every candidate's latency and score, and the rule."""
    from binsight.training import backbone_choice

    # The timings are set so the test does not depend on this machine's load; the rule is what is tested.
    fake = {"efficientnet_lite0": 5.0, "efficientnet_lite1": 9.0, "efficientnet_lite2": 80.0}
    monkeypatch.setattr(backbone_choice, "extractor_latency_ms", lambda b, spec, c: fake[spec.name])
    ds = load_dataset(synth_dir)
    out = tmp_path / "auto.onnx"
    report = fit_dataset(ds, out, backbone="auto", cache_dir=cache_dir, progress=False, augment=False,
                         latency_budget_ms=40)  # fmt: skip
    choice = report["backbone"]["choice"]
    assert choice["latency_budget_ms"] == 40 and "1 thread" in choice["latency_measured"]
    by_name = {c["name"]: c for c in choice["candidates"]}
    assert set(by_name) == set(fake)
    assert by_name["efficientnet_lite2"]["cv_score"] is None
    assert "over the budget" in by_name["efficientnet_lite2"]["verdict"]
    lite0, lite1 = by_name["efficientnet_lite0"]["cv_score"], by_name["efficientnet_lite1"]["cv_score"]
    lite1_wins = lite1 < lite0 - by_name["efficientnet_lite0"]["cv_se"]
    want = "efficientnet_lite1" if lite1_wins else "efficientnet_lite0"
    assert choice["chosen"] == want == report["backbone"]["name"] == _meta(out)["backbone"]
    assert by_name[want]["verdict"] == "chosen"
    # The recipes reported are the chosen backbone's, and its CV score is its chosen recipe's.
    cands = {c["recipe"]: c for c in report["features"]["candidates"]}
    assert cands[report["features"]["chosen"]]["cv_score"] == by_name[want]["cv_score"]

    with pytest.raises(BinsightError, match="no backbone fits a latency budget of 1 ms"):
        fit_dataset(ds, tmp_path / "none.onnx", backbone="auto", cache_dir=cache_dir, progress=False,
                    augment=False, latency_budget_ms=1)  # fmt: skip


def test_extractor_latency_is_measured(lite0: Any, cache_dir: Path) -> None:
    """The real timing: the extractor graph through ONNX Runtime, one thread, a positive finite median."""
    import math

    from binsight.training.backbone_choice import extractor_latency_ms

    ms = extractor_latency_ms(*lite0, cache_dir)
    assert math.isfinite(ms) and 0 < ms < 10_000
