"""``binsight train eval``: a model file on a labelled set, with ONNX Runtime alone.

No torch and no scikit-learn: this runs wherever the ``device`` extra is installed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from binsight.errors import DataError
from binsight.modelfile import CLASS_OUTPUT, ModelInfo
from binsight.training.data import Dataset, load_dataset
from binsight.training.images import read_frame
from binsight.training.metrics import classification_metrics, regression_metrics
from binsight.training.modelfile import batches, read_info, run
from binsight.training.runtime import session

__all__ = ["TestedFile", "evaluate", "predict_dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestedFile:
    """A model file written by ``train fit``, with its outputs and metrics on the held-out split."""

    path: Path
    meta: dict[str, str]  # the ``binsight.*`` metadata stamped into it, without the prefix
    info: ModelInfo
    outputs: np.ndarray  # fills [N] or probabilities [N, K], row-aligned with the held-out split
    metrics: dict[str, Any]


def predict_dataset(
    sess: Any,
    info: ModelInfo,
    ds: Dataset,
    indices: list[int] | None = None,
    batch_size: int = 16,
    *,
    output: str | None = None,
) -> tuple[np.ndarray, list[int]]:
    """Outputs (``output``, default the task's) for ``ds.samples[indices]``, and the undecodable indices."""
    idx = list(range(len(ds.samples))) if indices is None else list(indices)
    outs: list[np.ndarray] = []
    unreadable: list[int] = []
    for chunk in batches(idx, batch_size):
        imgs = []
        for i in chunk:
            img = read_frame(ds.samples[i].path, info.input_size)
            if img is None:
                unreadable.append(i)
                continue
            imgs.append(img)
        if imgs:
            outs.append(run(sess, info, imgs, output))
    fills = (output or info.output) == "fill"
    empty = np.empty((0,) if fills else (0, len(info.classes)), np.float32)
    return (np.concatenate(outs) if outs else empty), unreadable


def metrics_for(info: ModelInfo, ds: Dataset, kept: list[int], out: np.ndarray) -> dict[str, Any]:
    """Metrics as ``train eval --json`` prints them, for the rows ``kept`` and outputs ``out``."""
    if info.task == "regression":
        if ds.task != "regression":
            raise DataError(f"{ds.root}: the model predicts fill levels but the set has class labels")
        y = np.array([ds.samples[i].fill for i in kept], dtype=np.float64)
        return regression_metrics(y, out.astype(np.float64))
    if ds.task != "classification":
        raise DataError(f"{ds.root}: the model predicts classes but the set has fill levels")
    return class_metrics_for(info, ds, kept, out)


def class_metrics_for(info: ModelInfo, ds: Dataset, kept: list[int], probs: np.ndarray) -> dict[str, Any]:
    """Classification metrics of ``probs`` (a class model's, or a fill model's class head) on ``kept``."""
    index = {c: k for k, c in enumerate(info.classes)}
    y = np.array([index[ds.samples[i].label or ""] for i in kept], dtype=np.int64)
    return classification_metrics(y, probs.argmax(axis=1), list(info.classes))


def evaluate(
    model_path: str | Path, data_dir: str | Path, skip_bad: bool = False, threads: int | None = None
) -> dict[str, Any]:
    """Evaluate a model file on a labelled set.

    Returns
    -------
    dict
        Regression: ``n``, ``mae``, ``rmse``, ``r2``; classification: ``n``, ``accuracy``,
        ``macro_f1``, ``classes``, ``confusion``. A fill model with a class head adds ``class``
        (the class head's metrics) on a set with class labels too; on a set with class labels only
        it gives the class head's metrics and ``head: "class"``. Always ``skipped`` (file, row,
        reason) and ``model`` (its version and precision).

    Raises
    ------
    DataError
        A bad row or unreadable image without ``skip_bad``; labels the model does not know.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise DataError(f"{model_path}: model file does not exist")
    try:
        sess = session(model_path, threads)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise DataError(f"{model_path}: ONNX Runtime cannot load it: {exc}") from exc
    info = read_info(sess, model_path)
    ds = load_dataset(data_dir, skip_bad=skip_bad)
    fill_part: Dataset | None = ds
    class_part: Dataset | None = None
    if ds.has_class_labels:  # fill and class labels: each head on its own part
        fill_part, class_part = ds.head_parts()
    if info.has_class_head and ds.task == "classification":  # class labels only: the class head alone
        fill_part, class_part = None, ds
    if not info.has_class_head:
        class_part = None
    result: dict[str, Any] = {}
    skipped = [s.as_dict() for s in ds.skipped]
    if fill_part is not None:
        result, bad = _evaluate_part(sess, info, fill_part, info.output, skip_bad)
        skipped += bad
    if class_part is not None:
        metrics, bad = _evaluate_part(sess, info, class_part, CLASS_OUTPUT, skip_bad)
        skipped += bad
        if fill_part is None:
            result = {**metrics, "head": "class"}
        else:
            result["class"] = metrics
    result["skipped"] = skipped
    result["model"] = {
        "version": info.model_version,
        "precision": info.precision,
        "path": str(model_path),
    }
    logger.info(
        "evaluated %s on %s: %s", model_path, data_dir, json.dumps({k: result[k] for k in list(result)[:4]})
    )
    return result


def _evaluate_part(
    sess: Any, info: ModelInfo, ds: Dataset, output: str, skip_bad: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics of one output (``fill`` or ``probs``) on ``ds``, and what was left out."""
    classes = output != "fill"
    before = len(ds.skipped)
    if classes:
        unknown = [i for i, s in enumerate(ds.samples) if s.label not in info.classes]
        if unknown and not skip_bad:
            s = ds.samples[unknown[0]]
            raise DataError(
                f"{s.where()}: label {s.label!r} is not one of the model's classes {list(info.classes)}"
            )
        ds.drop(unknown, "label not known to the model")
    out, unreadable = predict_dataset(sess, info, ds, output=output)
    if unreadable and not skip_bad:
        raise DataError(f"{ds.samples[unreadable[0]].where()}: cannot decode the image (use --skip-bad)")
    gone = set(unreadable)
    kept = [i for i in range(len(ds.samples)) if i not in gone]
    skipped = [s.as_dict() for s in ds.skipped[before:]] + [
        {"file": str(ds.samples[i].path), "row": ds.samples[i].row, "reason": "unreadable image"}
        for i in unreadable
    ]
    if classes:
        return class_metrics_for(info, ds, kept, out), skipped
    return metrics_for(info, ds, kept, out), skipped
