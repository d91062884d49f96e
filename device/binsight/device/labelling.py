"""Which captures go to human labellers, and the size-capped JPEG that carries them.

An image is sent every ``every_n``-th capture (periodic coverage), when the model was unsure
(burst fills spread by ``unsure_spread`` or more, or the top class probability under
``unsure_prob``), and on a server command. Each is one JPEG, longest side at most ``max_side``,
re-encoded smaller until it fits ``max_bytes``.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

from binsight.device.config import LabellingConfig
from binsight.device.sources import Frame

__all__ = ["encode_jpeg", "label_reason", "to_b64"]

_QUALITIES = (85, 75, 65, 55, 45, 35)


def encode_jpeg(frame: Frame, max_side: int, max_bytes: int) -> bytes:
    """JPEG of ``frame`` no larger than ``max_bytes``: lower quality first, then smaller size.

    Raises
    ------
    ValueError
        Even a 64 px image at the lowest quality does not fit (cannot happen for sane caps).
    """
    img = frame
    while True:
        h, w = img.shape[:2]
        if max(h, w) > max_side:
            scale = max_side / max(h, w)
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        for q in _QUALITIES:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok and buf.size <= max_bytes:
                return np.asarray(buf).tobytes()
        if max_side <= 64:
            raise ValueError(f"cannot fit a JPEG into {max_bytes} bytes")
        max_side = max(64, int(max_side * 0.7))


def to_b64(jpeg: bytes) -> str:
    return base64.b64encode(jpeg).decode("ascii")


def label_reason(
    cfg: LabellingConfig, capture_no: int, spread: float | None, confidence: float | None
) -> str | None:
    """``"unsure"``, ``"periodic"`` or None for the ``capture_no``-th capture (1-based)."""
    if cfg.unsure and (
        (spread is not None and spread >= cfg.unsure_spread)
        or (confidence is not None and confidence < cfg.unsure_prob)
    ):
        return "unsure"
    if cfg.every_n and capture_no % cfg.every_n == 0:
        return "periodic"
    return None
