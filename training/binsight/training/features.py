"""Torch modules that turn tapped feature maps into vectors, and the graph ``train fit`` exports.

The same :class:`FeaturePool` code runs in the extractor graph (every tap, every pooling: what the
cache holds) and in the exported model (the chosen recipe only), so the head sees in production
exactly the columns it was fitted on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from binsight.modelfile import CLASS_OUTPUT, OUTPUT_NAMES
from binsight.training.backbone import Backbone, BackboneSpec, fold_input
from binsight.training.recipes import POOLS, Layout, Recipe

__all__ = ["ExportGraph", "Extractor", "FeaturePool", "layout_of"]


def layout_of(spec: BackboneSpec) -> Layout:
    """The column layout of the extractor's "all" vector for this backbone."""
    return Layout(spec.taps, spec.tap_channels)


def _grid_window(n: int) -> tuple[int, int]:
    """(kernel, stride) of the 2x2 grid along a side of ``n`` cells.

    The bins of ``adaptive_avg_pool2d(m, 2)`` are ``[floor(i*n/2), ceil((i+1)*n/2))``: two windows of
    ``ceil(n/2)`` cells, ``floor(n/2)`` apart (overlapping by one cell when ``n`` is odd). ONNX has no
    adaptive pooling, but a plain AveragePool with this kernel and stride is the same thing, and
    ONNX Runtime runs it (like GlobalAveragePool) in its blocked NCHWc layout instead of slicing.
    """
    return -(-n // 2), n // 2


class FeaturePool(nn.Module):
    """Pool the backbone's tapped maps into one vector following ``parts`` (tap, pool)."""

    def __init__(self, spec: BackboneSpec, parts: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self.parts = [(spec.taps.index(t), p) for t, p in parts]
        self.windows = {i: (_grid_window(h), _grid_window(w)) for i, (h, w) in enumerate(spec.tap_hw)}

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        out: list[torch.Tensor] = []
        for i, pool in self.parts:
            m = maps[i]
            if pool == "avg":
                out.append(F.adaptive_avg_pool2d(m, 1).flatten(1))
            else:
                (kh, sh), (kw, sw) = self.windows[i]
                # [N, C, 2, 2] -> C-major: channel c's cells at 4c .. 4c+3 (row-major cells).
                out.append(F.avg_pool2d(m, (kh, kw), (sh, sw)).flatten(1))
        return torch.cat(out, dim=1)


def all_parts(spec: BackboneSpec) -> tuple[tuple[str, str], ...]:
    return tuple((t, p) for t in spec.taps for p in POOLS)


class Extractor(nn.Module):
    """uint8 BGR images -> the "all" feature vector (every tap, every pooling)."""

    def __init__(self, backbone: Backbone, spec: BackboneSpec) -> None:
        super().__init__()
        self.preprocess, self.backbone = fold_input(backbone, spec)
        self.pool = FeaturePool(spec, all_parts(spec))
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.pool(self.backbone(self.preprocess(image)))
        return out


class ExportGraph(nn.Module):
    """The graph exported as the model file: preprocessing, frozen backbone, recipe pooling, linear head.

    The device runs the exported file with ONNX Runtime; this module only exists to be exported
    (and compared against the file, :func:`binsight.training.export.max_abs_diff`).

    ``weight``/``bias`` act on the raw pooled vector (the head's standardisation is folded in).
    Regression returns ``fill`` ``[N]`` clipped to 0..1; classification returns ``probs`` ``[N, C]``.
    A regression graph with ``class_head`` (its recipe, weight, bias) returns ``(fill, probs)``: the
    backbone runs once and feeds both heads.
    """

    def __init__(
        self,
        backbone: Backbone,
        spec: BackboneSpec,
        recipe: Recipe,
        *,
        weight: np.ndarray,
        bias: np.ndarray,
        task: str,
        class_head: tuple[Recipe, np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.preprocess, self.backbone = fold_input(backbone, spec)
        self.pool = FeaturePool(spec, recipe.parts)
        self.head = _linear(weight, bias)
        self.task = task
        # A fill model's class head: its own pooling of the same backbone maps (one backbone run).
        self.class_pool: FeaturePool | None = None
        self.class_head: nn.Linear | None = None
        if class_head is not None:
            if task != "regression":
                raise ValueError("a class head sits beside a fill (regression) head")
            c_recipe, c_weight, c_bias = class_head
            self.class_pool = FeaturePool(spec, c_recipe.parts)
            self.class_head = _linear(c_weight, c_bias)
        self.requires_grad_(False)
        self.eval()

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph's outputs (docs/contracts.md): ``fill``, ``probs``, or ``fill`` and ``probs``."""
        first = OUTPUT_NAMES[self.task]
        return (first, CLASS_OUTPUT) if self.class_head is not None else (first,)

    def forward(self, image: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        maps = self.backbone(self.preprocess(image))
        z = self.head(self.pool(maps))
        out: torch.Tensor = z[:, 0].clamp(0.0, 1.0) if self.task == "regression" else z.softmax(dim=1)
        if self.class_head is None or self.class_pool is None:
            return out
        probs: torch.Tensor = self.class_head(self.class_pool(maps)).softmax(dim=1)
        return out, probs


def _linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    w = torch.as_tensor(np.asarray(weight, dtype=np.float32))
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float32)))
    return layer
