"""Re-training the backbone's last stages: one file, the early layers and the caller's backbone untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

pytest.importorskip("torch")


def _fit(data: Path, out: Path, cache_dir: Path, backbone: Any, retrain: str) -> dict[str, Any]:
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import fit_dataset
    from binsight.training.retrain import RetrainSettings

    return fit_dataset(
        load_dataset(data),
        out,
        backbone=backbone,
        cache_dir=cache_dir,
        progress=False,
        retrain=retrain,  # type: ignore[arg-type]
        retrain_settings=RetrainSettings(epochs=3, crop_views=1),  # the schedule's shape, not its length
        report_path=out.with_suffix(".json"),
    )


@pytest.mark.timeout(900)
def test_retrained_stages_export_as_one_file_the_device_runs(
    tmp_path: Path, synth_dir: Path, cache_dir: Path, lite0: Any
) -> None:
    """``--retrain on``: the tail after stage4 is trained, exported in the one graph, tested as a file."""
    import torch

    from binsight.device.inference import FillModel
    from binsight.training.images import read_frame

    model, spec = lite0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "retrained.onnx"
    report = _fit(synth_dir, out, cache_dir, lite0, "on")

    info = report["retrain"]
    assert info["used"] is True and info["mode"] == "on"
    assert info["tail_stages"] == 3  # blocks 5 and 6 and the head convolution of Lite0
    assert info["input_size"] == list(spec.input_size)  # the caller's own backbone: its own size
    val = info["validation"]
    assert val["metric"] == "mae" and val["images"] > 0 and val["retrained"] >= 0 and val["linear"] >= 0
    assert report["features"]["chosen"] == "final:avg"
    assert report["head"]["kind"] == "retrained_last_stages"

    # The caller's (ImageNet) backbone is left exactly as it was: only a copy of the tail trained.
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert "+retrained-" in meta["binsight.backbone_weights"]
    assert json.loads(meta["binsight.head"])["kind"] == "retrained_last_stages"
    assert json.loads(meta["binsight.metrics"])["mae"] == pytest.approx(report["test"]["mae"])
    assert report["export"]["max_abs_diff_vs_torch"] <= 1e-4

    # The device runs the file as it runs any model file; the tail changed what it computes.
    device = FillModel(out)
    frames = [read_frame(p, spec.input_size) for p in sorted((synth_dir / "images").glob("*/*.jpg"))[:6]]
    frames = [f for f in frames if f is not None]
    assert len(frames) == 6
    fills = [p.fill for p in device.predict(frames)]
    assert all(f is not None and 0.0 <= f <= 1.0 for f in fills)
    linear = _fit(synth_dir, tmp_path / "linear.onnx", cache_dir, lite0, "off")
    assert linear["retrain"]["used"] is False and linear["retrain"]["reason"] == "--retrain off"
    lin_fills = [p.fill for p in FillModel(tmp_path / "linear.onnx").predict(frames)]
    assert not np.allclose(np.asarray(fills, float), np.asarray(lin_fills, float), atol=1e-3)


def test_auto_leaves_small_sets_to_the_linear_head(
    tmp_path: Path, class_dir: Path, cache_dir: Path, lite0: Any
) -> None:
    from binsight.training import MIN_RETRAIN_LABELS

    report = _fit(class_dir, tmp_path / "m.onnx", cache_dir, lite0, "auto")
    info = report["retrain"]
    assert info["used"] is False
    assert info["reason"] == f"{report['split']['train']} training images (< {MIN_RETRAIN_LABELS})"
    assert report["head"]["kind"] != "retrained_last_stages"


def test_inner_split_keeps_each_bin_on_one_side() -> None:
    from binsight.training.retrain import _inner_split

    groups = np.repeat(np.arange(20), 5).astype(str)
    rows = np.arange(100)
    fit_rows, val_rows = _inner_split(groups, rows, seed=3)
    assert len(fit_rows) + len(val_rows) == 100
    assert not set(groups[fit_rows]) & set(groups[val_rows])
    assert len(set(groups[val_rows])) == 4  # a fifth of the bins


def test_a_backbone_without_the_taps_is_refused() -> None:
    from torch import nn

    from binsight.training.backbone import Backbone
    from binsight.training.retrain import retrained_backbone

    bb = Backbone([nn.Identity(), nn.Identity()], {"final": 1}, None)
    with pytest.raises(ValueError, match="stage4"):
        retrained_backbone(bb, nn.Sequential(nn.Identity()))


def test_the_tail_is_retrained_at_224_when_the_budget_allows(
    synth_dir: Path, lite0: Any, cache_dir: Path
) -> None:
    """A named backbone at the 160 default is re-trained at 224 (the aspect kept); not over the budget,
    not for the caller's own backbone, and not when re-training is off."""
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import _retrain_size

    ds = load_dataset(synth_dir)
    _, spec = lite0
    kw: dict[str, Any] = {"train_images": 200, "mode": "auto", "cache_dir": cache_dir}
    got = _retrain_size("efficientnet_lite0", spec, ds, budget_ms=1e6, **kw)
    assert got is not None
    assert max(got[1].input_size) == 224 and got[1].input_size[0] < 224  # 4:3 synthetic frames
    assert _retrain_size("efficientnet_lite0", spec, ds, budget_ms=1e-3, **kw) is None
    assert _retrain_size(lite0, spec, ds, budget_ms=1e6, **kw) is None
    assert _retrain_size("efficientnet_lite0", spec, ds, budget_ms=1e6, **{**kw, "mode": "off"}) is None
    assert _retrain_size("efficientnet_lite0", spec, ds, budget_ms=1e6, **{**kw, "train_images": 20}) is None
