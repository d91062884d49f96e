"""The quality gate: is a frame usable for a fill reading, and if not, why.

Measured on a grey copy scaled to 320 px wide, so thresholds do not depend on the camera's
resolution. Checks run in this order, first failure wins:

``dark``         mean brightness below ``dark_mean``;
``overexposed``  more than ``overexposed_fraction`` of the pixels saturated (>= 250);
``blocked``      a uniform view (standard deviation below ``blocked_std``): lens covered or blank;
``blurred``      variance of the Laplacian below ``blur_var`` and below ``blur_ratio`` times the grey
                 variance: little fine detail, in absolute terms and relative to the frame's
                 contrast (a dim, smooth, empty bin has little detail but also little contrast,
                 and is not blurred): out of focus, fogged or smeared.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from binsight.device.config import QualityConfig
from binsight.device.sources import Frame

__all__ = ["FrameQuality", "assess", "sharpness"]

_WIDTH = 320


@dataclass(frozen=True)
class FrameQuality:
    reason: str | None  # None: usable; else one of binsight.protocol.QUALITY_REASONS
    mean: float
    saturated: float
    std: float
    sharpness: float

    @property
    def ok(self) -> bool:
        return self.reason is None


def _grey(frame: Frame) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    h, w = grey.shape[:2]
    if w > _WIDTH:
        grey = cv2.resize(grey, (_WIDTH, max(1, round(h * _WIDTH / w))), interpolation=cv2.INTER_AREA)
    return grey


def sharpness(frame: Frame) -> float:
    """Variance of the Laplacian of the scaled grey frame: higher is sharper."""
    return float(cv2.Laplacian(_grey(frame), cv2.CV_64F).var())


def assess(frame: Frame, cfg: QualityConfig) -> FrameQuality:
    """Measure one frame and name the first quality problem, if any."""
    grey = _grey(frame)
    mean = float(grey.mean())
    std = float(grey.std())
    saturated = float(np.count_nonzero(grey >= 250)) / grey.size
    sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    reason: str | None = None
    if mean < cfg.dark_mean:
        reason = "dark"
    elif saturated > cfg.overexposed_fraction:
        reason = "overexposed"
    elif std < cfg.blocked_std:
        reason = "blocked"
    elif sharp < cfg.blur_var and sharp < cfg.blur_ratio * std * std:
        reason = "blurred"
    return FrameQuality(reason=reason, mean=mean, saturated=saturated, std=std, sharpness=sharp)
