"""Choosing the features and the head: every candidate recipe scored by grouped CV, the best one fitted.

Everything here sees the training split only. Each feature candidate (:func:`~binsight.training.
recipes.candidates`) is scored along a ridge alpha path (:func:`~binsight.training.heads.screen`):
for regression that is the head itself; for classes a ridge classifier ranks the candidates and the
logistic/SVM head is then chosen by CV on the winner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from binsight.training.data import Task
from binsight.training.extract import Features
from binsight.training.heads import LinearHead, fit_head, screen
from binsight.training.recipes import Recipe, candidates

__all__ = ["Selection", "TrainingRows", "better", "select"]

logger = logging.getLogger(__name__)


def better(task: str, a: float, b: float) -> bool:
    """Whether score ``a`` beats ``b``: a lower MAE (regression) or a higher accuracy (classes)."""
    return a < b if task == "regression" else a > b


@dataclass(frozen=True)
class TrainingRows:
    """The rows a head trains on: a sample's features and, for each mirror in ``flips``, its mirror's."""

    feats: Features
    y: np.ndarray
    groups: np.ndarray
    flips: tuple[str, ...]

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, targets and groups of training ``rows`` plus their mirror images."""
        feats, flips = self.feats, self.flips
        x = np.concatenate([feats.deep[rows][:, cols], *(feats.flipped[f][rows][:, cols] for f in flips)])
        reps = 1 + len(flips)
        return x, np.tile(self.y[rows], reps), np.tile(self.groups[rows], reps)


@dataclass(frozen=True)
class Selection:
    """The chosen recipe, its columns and fitted head, and every candidate's CV score (for the report)."""

    recipe: Recipe
    cols: np.ndarray
    head: LinearHead
    scored: list[dict[str, Any]]

    @property
    def cv_score(self) -> float:
        """The chosen recipe's grouped-CV score (MAE, or accuracy for classes) on the training split."""
        return float(next(c["cv_score"] for c in self.scored if c["recipe"] == self.recipe))


def select(train_rows: TrainingRows, tr: np.ndarray, task: Task, n_classes: int, seed: int) -> Selection:
    """Score every feature candidate on the training rows ``tr``, keep the best, fit its head."""
    layout = train_rows.feats.layout
    scored: list[dict[str, Any]] = []
    for r in candidates(layout):
        cols = layout.columns(r)
        x_aug, y_aug, g_aug = train_rows(tr, cols)
        score, alpha, table = screen(x_aug, y_aug, task, n_classes, groups=g_aug, seed=seed)
        logger.info("candidate %s (%s features): cv %.4f (alpha %g)", r, len(cols), score, alpha)
        scored.append({"recipe": r, "dim": len(cols), "cv_score": score, "alpha": alpha, "cv_scores": table})
    best = scored[0]
    for c in scored[1:]:
        if better(task, c["cv_score"], best["cv_score"]):
            best = c
    recipe = best["recipe"]
    cols = layout.columns(recipe)
    x_aug, y_aug, g_aug = train_rows(tr, cols)
    head = fit_head(x_aug, y_aug, task, n_classes, groups=g_aug, seed=seed)
    return Selection(recipe, cols, head, scored)
