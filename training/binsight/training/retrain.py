"""Re-train the backbone's last stages when labels are plentiful (the early layers stay frozen).

A linear head on frozen features stops improving once it has a few hundred labels: the features
were made for ImageNet, not for waste. With more labels, the last stages themselves can learn the
task while the early ones (edges, textures) stay as ImageNet made them. This module does that on
**cached intermediate maps**: every training image (and a few augmented views of it) goes through
the frozen early stages once; only the tail is run, forward and backward, during training. The
result replaces the tail of the backbone in the one exported graph, so the device runs the same
kind of file at the same cost.

Whether the re-trained tail is used is decided on the training split alone: its bins are split
again (by group, so a bin's frames stay on one side); the tail is re-trained on one part and the
linear head that :func:`binsight.training.selection.select` chose is refitted on the same part;
both are scored on the other part, image by image. The re-trained tail is kept when it scores
better there (a tie keeps the linear head); the standard error of the paired difference is
reported beside it. Not one standard error, as for the recipes: there, candidates of the same kind
compete and the best of several is optimistic; here there is one challenger, whose cost when it is
no better is nil (the same graph), and a fifth of a few hundred labels is too few for a one-SE
margin to ever be met (street-overflow, 200 labels: 65% vs 70% on 40 held-back images, SE 8 points,
while the held-out split measured 83.0% vs 90.2%). It is then re-trained on the whole training
split with the same schedule, so the held-out test split is never looked at.

BatchNorm keeps its ImageNet running statistics (a batch of 32 cached maps is too few to
estimate them); its scale and shift, and every convolution of the tail, are trained.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from binsight.training import MIN_RETRAIN_LABELS
from binsight.training.backbone import Backbone, BackboneSpec, fold_input
from binsight.training.data import Dataset
from binsight.training.extract import FLIPS
from binsight.training.heads import fit_fixed
from binsight.training.images import decode, to_input_size
from binsight.training.recipes import Recipe
from binsight.training.selection import Selection, TrainingRows

__all__ = [
    "MIN_RETRAIN_LABELS",
    "RETRAIN_INPUT_SIDE",
    "RULE",
    "RetrainSettings",
    "Retrained",
    "decide_and_retrain",
    "retrained_backbone",
]

logger = logging.getLogger(__name__)

#: The tap whose map is cached; every stage after it (up to the final one) is re-trained.
SPLIT_TAP = "stage4"
#: The re-trained model pools the final map by its average, then one linear layer.
RECIPE = Recipe((("final", "avg"),))

#: The longer input side the tail is re-trained at (when the fit's own is smaller and the budget
#: allows): the ImageNet weights were trained at 224, and a re-trained tail can use the detail that a
#: frozen one's linear head could not (street-overflow, 200 labels: 84.1% at 160 px, docs/training.md).
RETRAIN_INPUT_SIDE = 224

RULE = (
    "the last stages are re-trained without a fifth of the training bins; kept when they score better "
    "than the chosen linear head on those bins (paired, image by image; a tie keeps the linear head)"
)

Mode = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class RetrainSettings:
    """The schedule (one for every set: nothing here is tuned per data set)."""

    epochs: int = 15
    batch: int = 32
    lr_tail: float = 3e-4
    lr_head: float = 3e-3
    weight_decay: float = 0.05
    dropout: float = 0.2
    label_smoothing: float = 0.1
    crop_views: int = 2  # random resized crops per image, beside the image (and its mirrors)
    crop_scale: tuple[float, float] = (0.8, 1.0)


@dataclass
class Retrained:
    """A re-trained tail and its linear layer (acting on the final map's average)."""

    tail: nn.Sequential
    backbone: Backbone  # the backbone the tail was trained on (its input size: ``spec``)
    spec: BackboneSpec
    weight: np.ndarray  # [K, D]
    bias: np.ndarray  # [K]

    def digest(self) -> str:
        """A short sha256 of the re-trained weights (tail and linear layer)."""
        h = hashlib.sha256()
        for t in self.tail.state_dict().values():
            h.update(t.detach().contiguous().numpy().tobytes())
        h.update(self.weight.tobytes())
        h.update(self.bias.tobytes())
        return h.hexdigest()[:12]


def _split_index(model: Backbone) -> int:
    if SPLIT_TAP not in model.tap_names or "final" not in model.tap_names:
        raise ValueError(f"this backbone has no {SPLIT_TAP!r} and 'final' taps to re-train between")
    return model.tap_index[model.tap_names.index(SPLIT_TAP)] + 1


def retrained_backbone(model: Backbone, tail: nn.Sequential) -> Backbone:
    """``model`` with the stages after :data:`SPLIT_TAP` replaced by ``tail`` (frozen, eval)."""
    at = _split_index(model)
    end = model.tap_index[model.tap_names.index("final")] + 1
    stages = [*list(model.stages)[:at], *tail, *list(model.stages)[end:]]
    return Backbone(stages, dict(zip(model.tap_names, model.tap_index, strict=True)), None)


def _views(img: np.ndarray, size: tuple[int, int], flips: Sequence[str], s: RetrainSettings,
           rng: np.random.Generator) -> list[np.ndarray]:  # fmt: skip
    """The image at the input size, its mirrors (``flips``) and ``crop_views`` random resized crops
    (each mirrored by one of ``flips`` half the time)."""
    out = [to_input_size(img, size)]
    out += [to_input_size(np.ascontiguousarray(img[FLIPS[f]]), size) for f in flips]
    h, w = img.shape[:2]
    for _ in range(s.crop_views):
        scale = float(rng.uniform(*s.crop_scale))
        ch, cw = max(1, round(h * scale)), max(1, round(w * scale))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        if flips:
            crop = crop[FLIPS[flips[int(rng.integers(len(flips)))]]] if rng.random() < 0.5 else crop
        out.append(to_input_size(np.ascontiguousarray(crop), size))
    return out


class _Maps:
    """The frozen early stages' output for every view of the images it is given (computed once)."""

    def __init__(self, model: Backbone, spec: BackboneSpec) -> None:
        pre, folded = fold_input(model, spec)
        at = _split_index(model)
        self.pre, self.prefix = pre, nn.Sequential(*list(folded.stages)[:at]).eval()

    @torch.inference_mode()
    def __call__(self, imgs: list[np.ndarray]) -> torch.Tensor:
        out = [
            self.prefix(self.pre(torch.from_numpy(np.stack(imgs[i : i + 64]))))
            for i in range(0, len(imgs), 64)
        ]
        return torch.cat(out)


def _train(maps: torch.Tensor, y: np.ndarray, *, task: str, n_classes: int, base_tail: nn.Sequential,
           s: RetrainSettings, seed: int) -> tuple[nn.Sequential, nn.Linear, list[float]]:  # fmt: skip
    """Train a copy of ``base_tail`` and a linear layer on ``maps`` ``[N, V, C, H, W]`` (V views each)."""
    torch.manual_seed(seed)
    tail = copy.deepcopy(base_tail)
    tail.requires_grad_(True)
    with torch.inference_mode():
        dim = int(tail(maps[:1, 0]).shape[1])
    out_dim = 1 if task == "regression" else n_classes
    head = nn.Linear(dim, out_dim)
    nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.fill_(float(np.mean(y)) if task == "regression" else 0.0)
    opt = torch.optim.AdamW(
        [{"params": tail.parameters(), "lr": s.lr_tail}, {"params": head.parameters(), "lr": s.lr_head}],
        weight_decay=s.weight_decay,
    )
    n, views = maps.shape[0], maps.shape[1]
    steps = s.epochs * math.ceil(n / s.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[s.lr_tail, s.lr_head], total_steps=steps, pct_start=0.15
    )
    target = torch.as_tensor(y, dtype=torch.float32 if task == "regression" else torch.long)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    tail.eval()  # BatchNorm keeps its running statistics (see the module docstring)
    for _ in range(s.epochs):
        total = 0.0
        for idx in torch.split(torch.randperm(n, generator=gen), s.batch):
            view = torch.randint(0, views, (len(idx),), generator=gen)
            pooled = F.adaptive_avg_pool2d(tail(maps[idx, view]), 1).flatten(1)
            z = head(F.dropout(pooled, s.dropout, training=True))
            if task == "regression":
                loss = F.smooth_l1_loss(z[:, 0], target[idx], beta=0.05)
            else:
                loss = F.cross_entropy(z, target[idx], label_smoothing=s.label_smoothing)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
    tail.requires_grad_(False)
    head.requires_grad_(False)
    return tail.eval(), head.eval(), losses


@torch.inference_mode()
def _predict(tail: nn.Sequential, head: nn.Linear, maps: torch.Tensor, task: str) -> np.ndarray:
    z = head(F.adaptive_avg_pool2d(tail(maps), 1).flatten(1))
    out = z[:, 0].clamp(0.0, 1.0) if task == "regression" else z.softmax(dim=1)
    return np.asarray(out.numpy(), dtype=np.float64)


def _per_image(task: str, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-image score, higher is better: -|error| (fill) or 1 when the class is right."""
    if task == "regression":
        return np.asarray(-np.abs(pred - y), dtype=np.float64)
    return np.asarray(pred.argmax(axis=1) == y, dtype=np.float64)


def _inner_split(groups: np.ndarray, rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fifth of the training bins (groups) held back, the rest to fit on."""
    rng = np.random.default_rng(seed + 7919)
    uniq = np.unique(groups[rows])
    held = set(rng.choice(uniq, size=max(1, round(len(uniq) / 5)), replace=False).tolist())
    is_held = np.array([g in held for g in groups[rows]])
    return rows[~is_held], rows[is_held]


# long: maps, inner fit and comparison, final fit: one sequence read top to bottom
def decide_and_retrain(  # noqa: PLR0917 - the pipeline's own state, passed through once
    ds: Dataset,
    model: Backbone,
    spec: BackboneSpec,
    tr: np.ndarray,
    chosen: Selection,
    train_rows: TrainingRows,
    flips: tuple[str, ...],
    mode: Mode,
    seed: int,
    settings: RetrainSettings | None = None,
    at_size: tuple[Backbone, BackboneSpec] | None = None,
) -> tuple[Retrained | None, dict[str, Any]]:
    """Re-train the last stages and say whether they replace the linear head (``mode`` ``auto``).

    ``at_size`` is the same backbone built for a larger input (:data:`RETRAIN_INPUT_SIDE`): the tail
    is re-trained, compared and exported at that size; the linear head keeps ``spec``'s.
    ``on`` re-trains regardless of the comparison (it is still made and reported); ``off`` skips all.
    Returns the re-trained tail (or None) and the report's ``retrain`` section.
    """
    s = settings or RetrainSettings()
    info: dict[str, Any] = {"mode": mode, "rule": RULE, "min_labels": MIN_RETRAIN_LABELS, "used": False}
    if mode == "off":
        return None, {**info, "reason": "--retrain off"}
    if mode == "auto" and len(tr) < MIN_RETRAIN_LABELS:
        return None, {**info, "reason": f"{len(tr)} training images (< {MIN_RETRAIN_LABELS})"}
    t0 = time.perf_counter()
    if at_size is not None:
        model, spec = at_size
    # Classes get mirrors here too: a mirrored street or bin shows the same overflow or dirt; (fill
    # sets already come with their three mirrors, pipeline.REGRESSION_FLIPS).
    flips = flips or ("hflip",)
    at = _split_index(model)
    end = model.tap_index[model.tap_names.index("final")] + 1
    base_tail = nn.Sequential(*list(model.stages)[at:end])
    maps_of = _Maps(model, spec)
    rng = np.random.default_rng(seed)
    y_all, groups = ds.targets(), ds.groups()
    views: list[torch.Tensor] = []
    for i in tr:
        img = decode(ds.samples[int(i)].path.read_bytes())
        if img is None:  # pragma: no cover - decoded fine during extraction
            raise RuntimeError(f"{ds.samples[int(i)].where()}: became unreadable during training")
        views.append(maps_of(_views(img, spec.input_size, flips, s, rng)))
    maps = torch.stack(views)  # [N, V, C, H, W]
    pos = {int(r): k for k, r in enumerate(tr)}
    fit_rows, val_rows = _inner_split(groups, tr, seed)
    fit_k = torch.as_tensor([pos[int(r)] for r in fit_rows])
    val_k = torch.as_tensor([pos[int(r)] for r in val_rows])
    n_classes = len(ds.classes) if ds.task == "classification" else 0
    train = functools.partial(_train, task=ds.task, n_classes=n_classes, base_tail=base_tail, s=s, seed=seed)
    tail, head, _ = train(maps[fit_k], y_all[fit_rows])
    tuned = _per_image(ds.task, _predict(tail, head, maps[val_k, 0], ds.task), y_all[val_rows])
    # The linear head as chosen (recipe, kind, regularisation), refitted on the same part.
    x_fit, y_fit, _ = train_rows(fit_rows, chosen.cols)
    lin = fit_fixed(
        x_fit, y_fit, ds.task, chosen.head.kind, chosen.head.param, n_classes=n_classes, seed=seed
    )
    linear = _per_image(
        ds.task, lin.predict(train_rows.feats.deep[val_rows][:, chosen.cols]), y_all[val_rows]
    )
    diff = tuned - linear
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("inf")
    wins = float(diff.mean()) > 0.0
    sign = -1.0 if ds.task == "regression" else 1.0  # back to MAE (lower better) or accuracy
    info.update(
        {
            "tail_stages": end - at,
            "input_size": list(spec.input_size),
            "views_per_image": int(maps.shape[1]),
            "settings": dataclasses.asdict(s),
            "validation": {
                "images": len(val_rows),
                "bins": len(np.unique(groups[val_rows])),
                "metric": "mae" if ds.task == "regression" else "accuracy",
                "retrained": sign * float(tuned.mean()),
                "linear": sign * float(linear.mean()),
                "difference_se": se,
            },
        }
    )
    logger.info("re-trained last stages: validation %.4f vs linear %.4f (se of the difference %.4f)",
                sign * tuned.mean(), sign * linear.mean(), se)  # fmt: skip
    if not wins and mode == "auto":
        info["reason"] = "did not score better than the linear head on the held-back bins"
        info["seconds"] = time.perf_counter() - t0
        return None, info
    tail, head, losses = train(maps, y_all[tr])
    weight, bias = head.weight.numpy().astype(np.float32), head.bias.numpy().astype(np.float32)
    info.update({"used": True, "reason": "beat the linear head" if wins else "--retrain on",
                 "final_loss": losses[-1], "seconds": time.perf_counter() - t0})  # fmt: skip
    return Retrained(tail, model, spec, weight, bias), info
