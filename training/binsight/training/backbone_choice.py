"""``train fit --backbone auto``: the backbone chosen by cross-validation under a latency budget.

Every candidate (EfficientNet-Lite0, -Lite1, -Lite2: the device runs any of them unchanged, since the
model file carries its own preprocessing and input size) is timed first: its extractor graph through
ONNX Runtime, batch 1, one thread, on this machine. Those over the budget are not fitted at all. Each
one left extracts its (cached) features and runs the same recipe/head selection a named backbone
gets, on the same training split; the held-out split is never looked at here.

The rule is the one that picks the recipe (one standard error): a slower backbone has to beat the
faster one held so far by more than that one's standard error over the CV folds. A gain inside the
folds' noise is not worth a slower camera. It does not make CV a good judge of backbones on every
set: on street-overflow (200 labels) Lite1 led Lite0 by 1.5 CV points, more than Lite0's SE (0.4), and
scored 2.3 points less held-out (bench/backbones.py, docs/training.md). The report's
``backbone.choice`` lists every candidate with its latency, its CV score and SE and why it was or was
not chosen, and states the budget and the machine it was timed on.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binsight.errors import BinsightError
from binsight.training import DEFAULT_LATENCY_BUDGET_MS
from binsight.training.backbone import Backbone, BackboneSpec, load_backbone
from binsight.training.cache import FeatureCache, default_cache_dir
from binsight.training.extract import extractor_graph, extractor_settings

__all__ = [
    "AUTO",
    "AUTO_CANDIDATES",
    "DEFAULT_LATENCY_BUDGET_MS",
    "Tried",
    "choose_backbone",
    "extractor_latency_ms",
]

logger = logging.getLogger(__name__)

AUTO = "auto"
#: Cheapest first: ties and near-ties go to the earlier one.
AUTO_CANDIDATES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
_WARMUP, _RUNS = 5, 25


@dataclass
class Tried:
    """One candidate: what it cost and, when it was within budget, what it scored."""

    name: str
    latency_ms: float
    backbone: Backbone | None = None
    spec: BackboneSpec | None = None
    result: Any = None  # whatever the fit's ``run`` callback returned
    cv_score: float | None = None
    cv_se: float = 0.0
    verdict: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latency_ms": round(self.latency_ms, 2),
            "input_size": list(self.spec.input_size) if self.spec else None,
            "cv_score": self.cv_score,
            "cv_se": self.cv_se,
            "verdict": self.verdict,
        }


def extractor_latency_ms(backbone: Backbone, spec: BackboneSpec, cache_dir: str | Path | None) -> float:
    """Latency (ms) of the backbone's extractor graph: ONNX Runtime, batch 1, one thread.

    The fastest of the timed runs, not their median: on a busy machine every disturbance only adds
    time, so the minimum is the figure that stays put (measured under load 10 on 2 cores: medians
    ranked Lite1 below Lite0, which has 25% less arithmetic).
    """
    from binsight.training.runtime import fastest_ms

    cache = FeatureCache(default_cache_dir(cache_dir), extractor_settings(spec))
    h, w = spec.input_size
    frame = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    graph = extractor_graph(backbone, spec, cache)
    return fastest_ms({"extractor": graph}, frame, rounds=1, runs=_RUNS, warmup=_WARMUP)["extractor"]


def _beats(task: str, a: float, b: float, b_se: float) -> bool:
    """Whether CV score ``a`` (a slower backbone's) beats ``b`` by more than ``b``'s standard error."""
    if task == "regression":
        return a < b - b_se
    return a > b + b_se


def choose_backbone(
    task: str,
    input_size: int | tuple[int, int],
    run: Callable[[Backbone, BackboneSpec], tuple[Any, float, float]],
    *,
    budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    cache_dir: str | Path | None = None,
    candidates: tuple[str, ...] = AUTO_CANDIDATES,
) -> tuple[Tried, dict[str, Any]]:
    """Time every candidate, ``run`` (features + selection) those within ``budget_ms``, keep the best.

    ``run(backbone, spec)`` returns ``(anything, cv_score, cv_se)``; the winner's ``anything`` comes back in
    :attr:`Tried.result`, with the report's ``backbone.choice`` section.
    """
    if not budget_ms > 0:
        raise BinsightError(f"latency budget {budget_ms!r} ms: want a positive number of milliseconds")
    tried: list[Tried] = []
    best: Tried | None = None
    for name in candidates:
        backbone, spec = load_backbone(name, input_size=input_size)
        t = Tried(name, extractor_latency_ms(backbone, spec, cache_dir), spec=spec)
        tried.append(t)
        if t.latency_ms > budget_ms:
            t.verdict = f"over the budget ({t.latency_ms:.1f} > {budget_ms:g} ms): not fitted"
            continue
        t.backbone = backbone
        t.result, t.cv_score, t.cv_se = run(backbone, spec)
        logger.info("backbone %s: %.1f ms, cv %.4f +- %.4f", name, t.latency_ms, t.cv_score, t.cv_se)
        if best is None or best.cv_score is None or _beats(task, t.cv_score, best.cv_score, best.cv_se):
            if best is not None:
                best.verdict = f"beaten by {name} by more than one standard error"
            best = t
        else:
            t.verdict = f"not better than {best.name} by more than its standard error"
    if best is None:
        fastest = min(tried, key=lambda t: t.latency_ms)
        raise BinsightError(
            f"no backbone fits a latency budget of {budget_ms:g} ms (fastest: {fastest.name} at "
            f"{fastest.latency_ms:.1f} ms here); raise --latency-budget-ms or lower --input-size"
        )
    best.verdict = "chosen"
    for t in tried:  # only the winner's graph and features are kept in memory
        if t is not best:
            t.backbone, t.result = None, None
    section = {
        "rule": (
            "best grouped-CV score on the training split among the backbones within the latency "
            "budget; a slower one must beat the faster one held so far by more than that one's "
            "standard error over the folds"
        ),
        "latency_budget_ms": budget_ms,
        "latency_measured": (
            f"extractor graph, ONNX Runtime, batch 1, 1 thread, fastest of {_RUNS} runs on "
            f"{platform.machine()} ({os.cpu_count()} CPUs) at fit time"
        ),
        "candidates": [t.as_dict() for t in tried],
        "chosen": best.name,
    }
    return best, section
