"""Torch modules that turn tapped feature maps into vectors, and the full fill-level pipeline.

The same :class:`FeaturePool` code runs in the extractor graph (every tap, every pooling: what the
cache holds) and in the exported model (the chosen recipe only), so the head sees in production
exactly the columns it was fitted on.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from binsight.training.backbone import Backbone, BackboneSpec, fold_input
from binsight.training.recipes import POOLS, Layout, Recipe

__all__ = ["Extractor", "FeaturePool", "FillModel", "layout_of"]


def layout_of(spec: BackboneSpec) -> Layout:
    """The column layout of the extractor's "all" vector for this backbone."""
    return Layout(spec.taps, spec.tap_channels)


def _grid_bounds(n: int) -> list[tuple[int, int]]:
    # The bins of adaptive_avg_pool2d(2): [floor(i*n/2), ceil((i+1)*n/2)). Written out because ONNX
    # has no adaptive pooling and 7x7 maps do not divide by 2.
    return [(math.floor(i * n / 2), math.ceil((i + 1) * n / 2)) for i in range(2)]


class FeaturePool(nn.Module):
    """Pool the backbone's tapped maps into one vector following ``parts`` (tap, pool)."""

    def __init__(self, spec: BackboneSpec, parts: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self.parts = [(spec.taps.index(t), p) for t, p in parts]
        self.bounds = {i: (_grid_bounds(h), _grid_bounds(w)) for i, (h, w) in enumerate(spec.tap_hw)}

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        out: list[torch.Tensor] = []
        for i, pool in self.parts:
            m = maps[i]
            if pool == "avg":
                out.append(m.mean(dim=(2, 3)))
            else:
                rows, cols = self.bounds[i]
                cells = [m[:, :, r0:r1, c0:c1].mean(dim=(2, 3)) for r0, r1 in rows for c0, c1 in cols]
                out.append(torch.stack(cells, dim=2).flatten(1))
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


class FillModel(nn.Module):
    """The whole model: preprocessing, frozen backbone, recipe pooling and a linear head.

    ``weight``/``bias`` act on the raw pooled vector (the head's standardisation is folded in).
    Regression returns ``fill`` ``[N]`` clipped to 0..1; classification returns ``probs`` ``[N, C]``.
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
    ) -> None:
        super().__init__()
        self.preprocess, self.backbone = fold_input(backbone, spec)
        self.pool = FeaturePool(spec, recipe.parts)
        w = torch.as_tensor(np.asarray(weight, dtype=np.float32))
        self.head = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(w)
            self.head.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float32)))
        self.task = task
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        z = self.head(self.pool(self.backbone(self.preprocess(image))))
        out: torch.Tensor = z[:, 0].clamp(0.0, 1.0) if self.task == "regression" else z.softmax(dim=1)
        return out
