"""Training fixtures: small synthetic sets, one backbone and one fitted model per session.

Fits are the expensive part (~30-60 s each on a busy 2-core machine), so every test that needs a
model shares the session's two: a regression model (fp32 + int8, from a set that also holds a bad
row and an unreadable image, fitted with ``skip_bad``) and a two-class classification model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from training_support import Fitted, copy_set, read_rows, write_rows

from binsight.training.synth import generate

BINS, PER_BIN = 6, 8


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean synthetic set: 6 bins x 8 images (do not modify)."""
    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, BINS, PER_BIN, seed=7)
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One feature cache for the session, so each image goes through the backbone once."""
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def lite0() -> Any:
    pytest.importorskip("torch")
    from binsight.training.backbone import load_backbone

    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, cache_dir: Path) -> Fitted:
    """A regression model fitted with --int8 --skip-bad on the synthetic set plus two bad entries."""
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import fit_dataset

    base = tmp_path_factory.mktemp("fitted")
    data = copy_set(synth_dir, base / "data")
    (data / "images" / "broken.jpg").write_bytes(b"this is not a jpeg")
    rows = read_rows(data / "labels.csv")
    rows.append({"image": "images/broken.jpg", "fill": "0.5", "bin_id": "bin-0001", "captured_at": ""})
    rows.append({"image": "images/missing.jpg", "fill": "0.5", "bin_id": "bin-0001", "captured_at": ""})
    write_rows(data / "labels.csv", rows)
    out = base / "model.onnx"
    ds = load_dataset(data, skip_bad=True)
    # The backbone by name, as `train fit` does: the input size then follows the frames' aspect.
    report = fit_dataset(
        ds,
        out,
        backbone="efficientnet_lite0",
        int8=True,
        report_path=base / "report.json",
        skip_bad=True,
        cache_dir=cache_dir,
        progress=False,
        calibration_images=8,
    )
    return Fitted(data, out, base / "model.fp32.onnx", report, base / "report.json")


@pytest.fixture(scope="session")
def class_dir(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> Path:
    """The synthetic images in the class-folder layout: ``low`` (fill < 0.5) and ``high``."""
    out = tmp_path_factory.mktemp("classes") / "set"
    for row in read_rows(synth_dir / "labels.csv"):
        cls = "high" if float(row["fill"]) >= 0.5 else "low"
        (out / cls).mkdir(parents=True, exist_ok=True)
        src = synth_dir / row["image"]
        shutil.copy(src, out / cls / f"{row['bin_id']}-{src.name}")
    return out


@pytest.fixture(scope="session")
def fitted_classes(
    tmp_path_factory: pytest.TempPathFactory, class_dir: Path, cache_dir: Path, lite0: Any
) -> tuple[Path, dict[str, Any]]:
    """A two-class model (class-folder layout, no bin ids), fp32."""
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import fit_dataset

    out = tmp_path_factory.mktemp("fitted-classes") / "classes.onnx"
    report = fit_dataset(load_dataset(class_dir), out, backbone=lite0, cache_dir=cache_dir, progress=False)
    return out, report


def two_head_rows(synth_dir: Path) -> list[dict[str, str]]:
    """The synthetic set with a class beside fill: ``overflowing`` (fill >= 0.6) or ``ok``.

    Every third image has only its class label and every fifth only its fill, so both heads see
    images the other does not.
    """
    rows = []
    for k, row in enumerate(read_rows(synth_dir / "labels.csv")):
        label = "overflowing" if float(row["fill"]) >= 0.6 else "ok"
        fill = "" if k % 3 == 0 else row["fill"]
        rows.append({**row, "fill": fill, "label": "" if k % 5 == 0 and fill else label})
    return rows


@pytest.fixture(scope="session")
def fitted_two_heads(
    tmp_path_factory: pytest.TempPathFactory, synth_dir: Path, cache_dir: Path, lite0: Any
) -> tuple[Path, Path, dict[str, Any]]:
    """A fill model with a class head, from a set with both kinds of label: (data, model, report)."""
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import fit_dataset

    base = tmp_path_factory.mktemp("fitted-two-heads")
    data = copy_set(synth_dir, base / "data")
    write_rows(data / "labels.csv", two_head_rows(synth_dir))
    out = base / "two.onnx"
    report = fit_dataset(load_dataset(data), out, backbone=lite0, cache_dir=cache_dir, progress=False)
    return data, out, report
