"""The server's own check of a comparison: both models re-run on the labels it stores.

The promotion gate first reads the comparison in the candidate's training report. When ONNX Runtime
and OpenCV are importable in the server process (the ``device`` or ``training`` extra), the server
does not take the report's word for it: it runs the candidate and the active model on the latest
human labels of the held-out bins, from its own tables, and the gate refuses a candidate that is
worse there. Without them the check is skipped and the rollout records that it was.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from binsight.heldout import paired_difference
from binsight.modelfile import INPUT_NAME, read_model_info
from binsight.server.db.models import ModelRecord
from binsight.server.labels import counted_labels, image_jpeg
from binsight.server.rollout.announce import model_file

__all__ = ["recheck"]

logger = logging.getLogger(__name__)


def _held_out_labels(s: Session, bins: list[str]) -> list[tuple[bytes, float, str]]:
    """The JPEG, fill and bin of each held-out image whose label counts (binsight.server.labels)."""
    counted = counted_labels(s, kind="fill", bins=bins)
    # kind="fill": the fill is never None
    return [(image_jpeg(s, c.image_id), float(c.fill or 0.0), c.bin_id) for c in counted]


def _predict(path: Path, jpegs: list[bytes]) -> list[float]:
    import cv2
    import numpy as np
    import onnxruntime as ort

    # The metadata first: a file without its input size is named with the key, never run at a guess.
    h, w = read_model_info(path).input_size
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    preds: list[float] = []
    for start in range(0, len(jpegs), 16):
        batch = []
        for data in jpegs[start : start + 16]:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError("a stored labelling image cannot be decoded")
            batch.append(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA))
        (out,) = sess.run(["fill"], {INPUT_NAME: np.stack(batch)})
        preds.extend(float(v) for v in np.asarray(out).reshape(-1))
    return preds


def recheck(
    s: Session, models_dir: Path, candidate: ModelRecord, active: ModelRecord, bins: list[str]
) -> dict[str, Any]:
    """``{checked, n, candidate_mae, active_mae, difference}`` on the stored labels of ``bins`` (the paired
    difference with its interval, :func:`binsight.heldout.paired_difference`), or why it was skipped."""
    try:
        import cv2  # noqa: F401
        import onnxruntime  # noqa: F401
    except ModuleNotFoundError as exc:
        return {"checked": False, "why": f"{exc.name} is not installed in the server"}
    if not bins:
        return {"checked": False, "why": "the comparison names no held-out bins"}
    labels = _held_out_labels(s, bins)
    if not labels:
        return {"checked": False, "why": f"the server holds no labels of {', '.join(bins)}"}
    jpegs = [j for j, _, _ in labels]
    truth = [f for _, f, _ in labels]
    try:
        cand = _predict(model_file(candidate, models_dir), jpegs)
        act = _predict(model_file(active, models_dir), jpegs)
    except Exception as exc:  # ORT raises its own types for broken files; the gate must still answer
        logger.warning("server re-check of %s failed: %s", candidate.version, exc)
        return {"checked": False, "why": f"the models could not be run here: {exc}"[:300]}
    n = len(truth)
    cand_err = [abs(p - t) for p, t in zip(cand, truth, strict=True)]
    act_err = [abs(p - t) for p, t in zip(act, truth, strict=True)]
    return {
        "checked": True,
        "n": n,
        "candidate_mae": sum(cand_err) / n,
        "active_mae": sum(act_err) / n,
        "difference": paired_difference(cand_err, act_err, [b for _, _, b in labels]),
    }
