"""A class head beside the fill head: one backbone run, two linear heads, one model file.

A labelled set may carry fill labels, class labels (``overflowing``, ``contaminated``...) or both
(docs/contracts.md, "Training data sets"):

* fill only: a fill model, as always;
* classes only: a class model (``task`` ``classification``, output ``probs``), as always;
* both: a fill model with a class head. Images with a fill label fit the fill head, images with a
  class label fit the class head (an image with both is in both), on the same cached features of
  the same backbone. One held-out split is drawn over the whole set (whole bins held out), so
  neither head has seen a held-out bin. The class head chooses its own feature recipe and head
  by the same grouped CV and one-standard-error rule as a class model, and the exported graph
  pools the backbone's maps once per head: ``fill [N]`` and ``probs [N, C]``.

The file states the classes (``binsight.classes``), the class head (``binsight.class_head``) and
its held-out metrics (``binsight.class_metrics``) beside the fill head's (``binsight.metrics``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binsight.training.data import Dataset
from binsight.training.extract import Features
from binsight.training.selection import Selection

__all__ = [
    "MIN_CLASS_IMAGES",
    "ClassPart",
    "FittedClassHead",
    "class_head_report",
    "split_parts",
    "test_class_head",
]

logger = logging.getLogger(__name__)

#: Fewer class labels than this in a fill set: no class head (the report says why).
MIN_CLASS_IMAGES = 10


@dataclass(frozen=True)
class ClassPart:
    """The class-labelled part of a set with both kinds of label, and its held-out positions."""

    ds: Dataset
    test: np.ndarray  # positions in ``ds``


@dataclass(frozen=True)
class FittedClassHead:
    """The class head fitted on a :class:`ClassPart`: its features, split and chosen recipe and head."""

    part: ClassPart
    feats: Features
    train: np.ndarray
    chosen: Selection

    def graph_head(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """``(recipe, weight, bias)`` for :class:`binsight.training.features.ExportGraph`."""
        return self.chosen.recipe, self.chosen.head.weight, self.chosen.head.bias

    def describe(self) -> dict[str, Any]:
        """``binsight.class_head``: the head as ``binsight.head`` describes the fill head, and its recipe."""
        return {**self.chosen.head.describe(), "features": str(self.chosen.recipe)}


def split_parts(ds: Dataset, test: np.ndarray) -> tuple[Dataset, np.ndarray, ClassPart | None, str | None]:
    """The fill part, its held-out positions, the class part (or None) and why there is none.

    ``test`` holds positions in ``ds`` (the whole set, one split for both heads).
    """
    fill, cls = ds.head_parts()
    held = {int(i) for i in test}
    assert fill.origin is not None and cls.origin is not None
    fill_test = np.array([k for k, i in enumerate(fill.origin) if i in held], dtype=np.int64)
    cls_test = np.array([k for k, i in enumerate(cls.origin) if i in held], dtype=np.int64)
    y = cls.targets()
    train_classes = np.unique(np.delete(y, cls_test)) if len(y) else np.array([])
    why = None
    if len(cls.samples) < MIN_CLASS_IMAGES:
        why = f"{len(cls.samples)} images with a class label; a class head needs {MIN_CLASS_IMAGES}"
    elif len(cls.classes) < 2:
        why = f"one class ({cls.classes[0]!r}) among the class labels; a class head needs two"
    elif len(train_classes) < 2:
        why = "the training split holds fewer than two classes"
    elif len(cls_test) == 0:
        why = "no class label in the held-out bins: the class head could not be tested"
    if why is not None:
        logger.warning("%s: no class head: %s", ds.root, why)
        return fill, fill_test, None, why
    return fill, fill_test, ClassPart(cls, cls_test), None


def test_class_head(
    path: Path, meta: dict[str, str], fitted: FittedClassHead, *, threads: int | None
) -> tuple[dict[str, Any], np.ndarray]:
    """Run the *file*'s ``probs`` on the class part's held-out images; stamp and return their metrics."""
    from binsight.errors import DataError
    from binsight.modelfile import CLASS_OUTPUT
    from binsight.training.evaluate import class_metrics_for, predict_dataset
    from binsight.training.export import set_metadata
    from binsight.training.modelfile import read_info
    from binsight.training.runtime import session

    sess = session(path, threads)
    info = read_info(sess, path)
    part = fitted.part
    probs, unread = predict_dataset(sess, info, part.ds, list(part.test), output=CLASS_OUTPUT)
    if unread:  # pragma: no cover - the same bytes decoded during extraction
        raise DataError(f"{part.ds.samples[unread[0]].where()}: became unreadable during training")
    metrics = class_metrics_for(info, part.ds, list(part.test), probs)
    meta["class_metrics"] = json.dumps(metrics)
    set_metadata(path, meta)
    return metrics, probs


def class_head_report(
    fitted: FittedClassHead | None, why: str | None, metrics: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The report's ``class_head`` section (None for a set without class labels)."""
    if fitted is None:
        return None if why is None else {"fitted": False, "reason": why}
    from binsight.training.metrics import classification_metrics

    part, chosen = fitted.part, fitted.chosen
    y = part.ds.targets()
    majority = int(np.bincount(y[fitted.train], minlength=len(part.ds.classes)).argmax())
    return {
        "fitted": True,
        "classes": part.ds.classes,
        "images": len(part.ds.samples),
        "train": len(fitted.train),
        "test": len(part.test),
        "features": {
            "candidates": [{**c, "recipe": str(c["recipe"])} for c in chosen.scored],
            "chosen": str(chosen.recipe),
        },
        "head": chosen.head.describe(),
        "test_metrics": metrics,
        "cv_vs_held_out": {
            "metric": "accuracy",
            "cv_estimate": chosen.head.cv_score,
            "cv_standard_error": chosen.cv_se,
            "held_out": None if metrics is None else metrics.get("accuracy"),
        },
        "baselines": {
            "majority_class": classification_metrics(
                y[part.test], np.full(len(part.test), majority), part.ds.classes
            )
        },
    }
