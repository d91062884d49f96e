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

__all__ = ["RULE", "Selection", "TrainingRows", "better", "one_se_choice", "select"]

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
        return float(self._chosen["cv_score"])

    @property
    def cv_se(self) -> float:
        """The standard error of :attr:`cv_score` over the folds."""
        return float(self._chosen["cv_se"])

    @property
    def _chosen(self) -> dict[str, Any]:
        return next(c for c in self.scored if c["recipe"] == self.recipe)


#: How recipes are chosen; the report quotes it.
RULE = (
    "one standard error: of the candidates whose grouped-CV score is within one standard error "
    "(over folds) of the best, the one with the fewest features"
)


def select(train_rows: TrainingRows, tr: np.ndarray, task: Task, n_classes: int, seed: int) -> Selection:
    """Score every feature candidate on the training rows ``tr``, keep one by :data:`RULE`, fit its head.

    The best CV score is an optimistic estimate of itself (it won among several), and new cameras
    differ from the training bins more than folds differ from each other; a richer feature set
    whose advantage is inside the folds' noise is the one that carries over worse. So the smallest
    candidate within one standard error of the best wins (Breiman et al.'s one-standard-error
    rule, applied across feature sets).
    """
    layout = train_rows.feats.layout
    scored: list[dict[str, Any]] = []
    for r in candidates(layout):
        cols = layout.columns(r)
        x_aug, y_aug, g_aug = train_rows(tr, cols)
        s = screen(x_aug, y_aug, task, n_classes, groups=g_aug, seed=seed)
        logger.info("candidate %s (%s features): cv %.4f +- %.4f", r, len(cols), s.score, s.se)
        scored.append({"recipe": r, "dim": len(cols), "cv_score": s.score, "cv_se": s.se, "alpha": s.alpha,
                       "cv_scores": s.table})  # fmt: skip
    recipe = one_se_choice(scored, task)["recipe"]
    cols = layout.columns(recipe)
    x_aug, y_aug, g_aug = train_rows(tr, cols)
    head = fit_head(x_aug, y_aug, task, n_classes, groups=g_aug, seed=seed)
    return Selection(recipe, cols, head, scored)


def one_se_choice(scored: list[dict[str, Any]], task: str) -> dict[str, Any]:
    """The candidate :data:`RULE` picks from ``scored`` (each with ``cv_score``, ``cv_se``, ``dim``)."""
    best = scored[0]
    for c in scored[1:]:
        if better(task, c["cv_score"], best["cv_score"]):
            best = c
    bound = best["cv_score"] + best["cv_se"] if task == "regression" else best["cv_score"] - best["cv_se"]
    close = [c for c in scored if not better(task, bound, c["cv_score"])]
    return min(close, key=lambda c: c["dim"])  # min keeps the first of equal sizes
