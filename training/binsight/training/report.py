"""The training report's figure: learning curve against baselines, candidates, predictions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_figure"]

logger = logging.getLogger(__name__)


def write_figure(report: dict[str, Any], y_true: np.ndarray, y_pred: np.ndarray, path: Path) -> None:
    """A PNG with three panels: learning curve + baselines, candidates' CV scores, test predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regression = report["data"]["task"] == "regression"
    metric = "mae" if regression else "accuracy"
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)

    ax = axes[0]
    curve = [p for p in report["learning_curve"] if p["test"].get(metric) is not None]
    if curve:
        ax.plot([p["n"] for p in curve], [p["test"][metric] for p in curve], "o-", label="deep features")
    for k, (name, m) in enumerate(report["baselines"].items()):
        if m.get(metric) is not None:
            ax.axhline(m[metric], ls="--", color=f"C{k + 1}", label=f"baseline: {name.replace('_', ' ')}")
    ax.set_xscale("log")
    ax.set_xlabel("training labels")
    ax.set_ylabel(f"held-out {metric.upper() if regression else metric}")
    ax.set_title("Learning curve (held-out split)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    cands = report["features"]["candidates"]
    names = [c["recipe"] for c in cands]
    scores = [c["cv_score"] for c in cands]
    colours = ["C3" if c["recipe"] == report["features"]["chosen"] else "C0" for c in cands]
    ax.barh(range(len(names)), scores, color=colours)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"cross-validated {metric} (training split)")
    ax.set_title("Feature candidates (chosen in red)")
    ax.grid(alpha=0.3, axis="x")

    ax = axes[2]
    if regression:
        ax.scatter(y_true, y_pred, s=8, alpha=0.6)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("true fill")
        ax.set_ylabel("predicted fill (model file, ONNX Runtime)")
        ax.set_title(f"Held-out test: MAE {report['test']['mae']:.3f}")
    else:
        conf = np.asarray(report["test"]["confusion"], dtype=float)
        rows = conf.sum(axis=1, keepdims=True)
        ax.imshow(
            np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0), cmap="Blues", vmin=0, vmax=1
        )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(f"Held-out test: accuracy {report['test']['accuracy']:.3f}")
    fig.suptitle(f"binsight training report: {report['data']['root']}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    logger.info("figure written to %s", path)
