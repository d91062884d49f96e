"""ONNX Runtime extraction: equals torch, cached by content, unreadable images reported."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from training_support import copy_set, read_rows, write_rows  # noqa: E402

from binsight.training.backbone import BackboneSpec  # noqa: E402
from binsight.training.data import load_dataset  # noqa: E402
from binsight.training.extract import extract  # noqa: E402
from binsight.training.features import Extractor  # noqa: E402
from binsight.training.images import decode, to_input_size  # noqa: E402

_SPEC = BackboneSpec(
    name="test",
    weights="none",
    input_size=(160, 160),
    mean=(0.0,) * 3,
    std=(1.0,) * 3,
    taps=("stage4", "stage5", "final"),
    tap_channels=(3, 4, 5),
    tap_hw=((10, 10), (5, 5), (5, 5)),
)


def test_ort_features_match_torch(synth_dir: Path, cache_dir: Path, lite0: Any) -> None:
    """The cached ONNX Runtime vectors equal the torch extractor's (every tap, every pooling)."""
    backbone, spec = lite0
    ds = load_dataset(synth_dir)
    feats = extract(ds, backbone, spec, cache_dir, progress=False)
    assert feats.deep.shape == (48, feats.layout.dim) and feats.layout.dim == (112 + 192 + 1280) * 5
    imgs = np.stack([to_input_size(decode(s.path.read_bytes()), spec.input_size) for s in ds.samples[:3]])
    with torch.inference_mode():
        ref = Extractor(backbone, spec)(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(feats.deep[:3], ref, atol=1e-4, rtol=1e-4)


def test_grid_pooling_equals_adaptive_pooling(lite0: Any) -> None:
    """The hand-written 2x2 grid pooling is torch's adaptive average pooling (7x7 maps included)."""
    from binsight.training.features import FeaturePool

    _, spec = lite0
    maps = [torch.randn(2, c, h, w) for c, (h, w) in zip(spec.tap_channels, spec.tap_hw, strict=True)]
    pooled = FeaturePool(spec, (("final", "grid2"), ("stage4", "avg")))(maps)
    want = torch.cat(
        [torch.nn.functional.adaptive_avg_pool2d(maps[2], 2).flatten(1), maps[0].mean((2, 3))], 1
    )
    assert torch.allclose(pooled, want, atol=1e-6)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 7, 10])
def test_grid_pooling_windows_match_adaptive_bins(n: int) -> None:
    """AveragePool with (ceil(n/2), floor(n/2)) windows is adaptive 2x2 pooling for odd and even maps."""
    import dataclasses

    from binsight.training.features import FeaturePool

    spec = dataclasses.replace(_SPEC, tap_hw=((n, n + 1), (n, n), (n + 2, n)))
    maps = [torch.randn(2, c, h, w) for c, (h, w) in zip(spec.tap_channels, spec.tap_hw, strict=True)]
    pooled = FeaturePool(spec, (("final", "grid2"), ("stage4", "grid2"), ("stage5", "avg")))(maps)
    want = torch.cat(
        [
            torch.nn.functional.adaptive_avg_pool2d(maps[2], 2).flatten(1),
            torch.nn.functional.adaptive_avg_pool2d(maps[0], 2).flatten(1),
            maps[1].mean((2, 3)),
        ],
        1,
    )
    assert torch.allclose(pooled, want, atol=1e-6)


def test_refit_extracts_only_new_images(synth_dir: Path, tmp_path: Path, lite0: Any) -> None:
    """With a warm cache, adding two labelled images sends exactly two through the backbone."""
    backbone, spec = lite0
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")
    write_rows(data / "labels.csv", rows[:10])
    cache = tmp_path / "cache"
    assert extract(load_dataset(data), backbone, spec, cache, progress=False).extracted == 10
    assert extract(load_dataset(data), backbone, spec, cache, progress=False).extracted == 0
    # A renamed copy of a known image is the same content: still cached.
    shutil.copy(data / rows[0]["image"], data / "images" / "copy.jpg")
    extra = [rows[10], rows[11], {**rows[0], "image": "images/copy.jpg"}]
    write_rows(data / "labels.csv", rows[:10] + extra)
    assert extract(load_dataset(data), backbone, spec, cache, progress=False).extracted == 2


def test_unreadable_images_are_listed(synth_dir: Path, tmp_path: Path, lite0: Any, cache_dir: Path) -> None:
    """A file that is not an image gets no row and is named by index."""
    backbone, spec = lite0
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")
    (data / "images" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    write_rows(data / "labels.csv", [*rows[:5], {**rows[0], "image": "images/bad.jpg"}])
    feats = extract(load_dataset(data), backbone, spec, cache_dir, progress=False)
    assert feats.unreadable == [5]
    assert feats.deep.shape[0] == 5


def test_mirror_features_are_those_of_the_mirrored_image(synth_dir: Path, tmp_path: Path, lite0: Any) -> None:
    """A flip's cached row equals the features of the mirrored picture itself; flips are cached too."""
    import cv2

    backbone, spec = lite0
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")[:3]
    img = to_input_size(decode((data / rows[0]["image"]).read_bytes()), spec.input_size)
    cv2.imwrite(str(data / "mirror.png"), np.ascontiguousarray(img[:, ::-1]))  # lossless
    cv2.imwrite(str(data / "orig.png"), img)
    write_rows(data / "labels.csv", [{**rows[0], "image": "orig.png"}, {**rows[0], "image": "mirror.png"}])
    cache = tmp_path / "cache"
    feats = extract(load_dataset(data), backbone, spec, cache, flips=("hflip",), progress=False)
    assert feats.extracted == 4
    np.testing.assert_allclose(feats.flipped["hflip"][0], feats.deep[1], atol=1e-5)
    assert extract(load_dataset(data), backbone, spec, cache, flips=("hflip",), progress=False).extracted == 0
    with pytest.raises(ValueError, match="unknown flips"):
        extract(load_dataset(data), backbone, spec, cache, flips=("rot90",))
