"""A class head beside the fill head: one backbone run, two outputs, both heads tested on held-out bins."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from training_support import copy_set, read_rows, write_rows

from binsight.errors import DataError
from binsight.modelfile import read_model_info
from binsight.training.data import load_dataset

pytest.importorskip("torch")


def test_set_with_both_labels_loads_both(synth_dir: Path, tmp_path: Path) -> None:
    """``fill`` and ``label`` columns: a fill set whose class labels form the class part."""
    from conftest import two_head_rows

    data = copy_set(synth_dir, tmp_path / "data")
    rows = two_head_rows(synth_dir)
    write_rows(data / "labels.csv", rows)
    ds = load_dataset(data)
    assert ds.task == "regression" and ds.has_class_labels and ds.classes == ["ok", "overflowing"]
    fill, cls = ds.head_parts()
    assert len(fill.samples) == sum(1 for r in rows if r["fill"])
    assert len(cls.samples) == sum(1 for r in rows if r["label"])
    assert cls.task == "classification" and fill.targets().max() <= 1.0
    assert {s.path for s in fill.samples} & {s.path for s in cls.samples}  # some images in both


def test_row_with_neither_label_is_refused(synth_dir: Path, tmp_path: Path) -> None:
    """A row of a two-column set with neither a fill nor a label names its row."""
    data = copy_set(synth_dir, tmp_path / "data")
    rows = [{**r, "label": "ok"} for r in read_rows(synth_dir / "labels.csv")]
    rows[3] = {**rows[3], "fill": "", "label": ""}
    write_rows(data / "labels.csv", rows)
    with pytest.raises(DataError, match=r"row 5\): empty 'fill' and 'label'"):
        load_dataset(data)


def test_two_head_model_file(fitted_two_heads: tuple[Path, Path, dict[str, Any]]) -> None:
    """One graph, outputs fill [N] and probs [N, 2]; metadata names the classes and both heads' metrics."""
    _, model, report = fitted_two_heads
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["fill", "probs"]
    info = read_model_info(model)
    assert info.task == "regression" and info.has_class_head and info.classes == ("ok", "overflowing")
    assert info.outputs == ("fill", "probs")
    assert dict(info.metrics or {}) == report["test"]
    section = report["class_head"]
    assert section["fitted"] and dict(info.class_metrics or {}) == section["test_metrics"]
    assert json.loads(info.metadata["binsight.class_head"])["features"] == section["features"]["chosen"]
    # One held-out split for both heads: no held-out bin in either head's training images.
    test_bins = set(report["split"]["test_bins"])
    assert test_bins and "one split for the fill and the class head" in report["split"]["method"]
    frames = np.random.default_rng(0).integers(0, 256, (3, 97, 131, 3), dtype=np.uint8)
    fill, probs = sess.run(["fill", "probs"], {"image": frames})
    assert fill.shape == (3,) and probs.shape == (3, 2)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert report["export"]["max_abs_diff_vs_torch"] <= 1e-4
    # The class head learns the synthetic classes (overflowing = fill >= 0.6) well above chance.
    assert section["test_metrics"]["accuracy"] >= 0.75


def test_held_out_split_is_shared(fitted_two_heads: tuple[Path, Path, dict[str, Any]]) -> None:
    """The class head's held-out images come from the same held-out bins as the fill head's."""
    data, _, report = fitted_two_heads
    rows = read_rows(data / "labels.csv")
    test_bins = set(report["split"]["test_bins"])
    n_class_test = sum(1 for r in rows if r["label"] and r["bin_id"] in test_bins)
    assert report["class_head"]["test"] == n_class_test
    n_fill_test = sum(1 for r in rows if r["fill"] and r["bin_id"] in test_bins)
    assert report["split"]["test"] == n_fill_test


def test_one_class_label_gives_a_fill_model(
    synth_dir: Path, tmp_path: Path, lite0: Any, cache_dir: Path
) -> None:
    """Class labels of only one class: a plain fill model, and the report says why there is no class head."""
    from binsight.training.pipeline import fit_dataset

    data = copy_set(synth_dir, tmp_path / "data")
    rows = [
        {**r, "label": "overflowing" if k < 12 else ""}
        for k, r in enumerate(read_rows(synth_dir / "labels.csv"))
    ]
    write_rows(data / "labels.csv", rows)
    out = tmp_path / "m.onnx"
    report = fit_dataset(
        load_dataset(data), out, backbone=lite0, cache_dir=cache_dir, progress=False, augment=False
    )
    info = read_model_info(out)
    assert not info.has_class_head and info.outputs == ("fill",)
    assert report["class_head"] == {
        "fitted": False,
        "reason": "one class ('overflowing') among the class labels; a class head needs two",
    }


def test_eval_reports_both_heads(fitted_two_heads: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    """`train eval` of a two-head model: fill metrics plus ``class``; on class labels only: the class head."""
    from binsight.training.evaluate import evaluate

    data, model, report = fitted_two_heads
    both = evaluate(model, data)
    assert both["n"] == sum(1 for r in read_rows(data / "labels.csv") if r["fill"])
    assert both["class"]["n"] == report["class_head"]["images"] and 0.0 <= both["class"]["accuracy"] <= 1.0
    only = copy_set(data, tmp_path / "only-classes")
    rows = [
        {"image": r["image"], "label": r["label"], "bin_id": r["bin_id"]}
        for r in read_rows(data / "labels.csv")
        if r["label"]
    ]
    write_rows(only / "labels.csv", rows)
    alone = evaluate(model, only)
    assert alone["head"] == "class" and alone["accuracy"] == both["class"]["accuracy"]


def test_retrain_comparison_covers_the_class_head(
    fitted_two_heads: tuple[Path, Path, dict[str, Any]],
) -> None:
    """`--from-server`'s comparison holds the fill heads' and the class heads' held-out figures; an
    active model without a class head leaves the class head uncompared, saying why."""
    from binsight.training.from_server import compare_models

    data, model, report = fitted_two_heads
    test_bins = report["split"]["test_bins"]
    same = compare_models(model, model, data, test_bins, {})
    cc = same["class_comparison"]
    assert same["metric"] == "mae" and same["n"] == report["split"]["test"]
    assert cc["n"] == report["class_head"]["test"] and cc["candidate"]["accuracy"] == cc["active"]["accuracy"]
    assert cc["difference"]["mean_diff"] == 0.0 and cc["difference"]["ci"] == [0.0, 0.0]
    assert cc["candidate"]["accuracy"] == report["class_head"]["test_metrics"]["accuracy"]
    first = compare_models(model, None, data, test_bins, {})["class_comparison"]
    assert first["active"] is None and first["active_note"] == "no active model"
