"""The twin's cameras: a reading every interval with the fill model's error, unusable frames and outages.

All of a run's camera noise is drawn up front from the seed, so every policy sees the very same readings
of the same fill (a policy cannot be lucky with its frames). The error is Gaussian with the mean absolute
error asked for (``sd = mae * sqrt(pi / 2)``); a camera sees at most a full bin (1.0), not the overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_MAE", "Cameras", "SensingConfig", "build_cameras"]

#: The shipped fill model's error on held-out frames, rounded (docs/training.md: MAE about 0.05).
DEFAULT_MAE = 0.05
#: The collection policies the twin compares (binsight.server.twin.policies builds them).
POLICIES = ("fixed", "weekly", "threshold", "binsight", "oracle")


@dataclass(frozen=True)
class SensingConfig:
    """Camera behaviour: interval, model error, unusable frames and outages."""

    interval_h: int = 1
    mae: float = DEFAULT_MAE
    unusable: float = 0.03  # share of frames with no usable fill (dark, lid open, ...)
    outages_per_week: float = 0.05  # per camera; each lasts from 2 hours to 3 days (log-uniform)

    def __post_init__(self) -> None:
        if self.interval_h < 1:
            raise ValueError(f"sensing.interval_h must be at least 1 hour, got {self.interval_h}")
        if not 0.0 <= self.mae <= 0.5:
            raise ValueError(f"sensing.mae must be within 0..0.5, got {self.mae}")
        if not 0.0 <= self.unusable < 1.0 or self.outages_per_week < 0:
            raise ValueError("sensing.unusable must be within 0..1 and outages_per_week >= 0")


@dataclass
class Cameras:
    """Per bin and hour: the reading error, whether a frame is usable, whether the camera is up."""

    cfg: SensingConfig
    error: NDArray[np.float32]  # (bins, hours)
    usable: NDArray[np.bool_]  # (bins, hours): frame usable and camera up
    online: NDArray[np.bool_]  # (bins, hours): camera up (it sends, usable or not)

    def captures_at(self, hour: int) -> bool:
        """Whether the cameras capture at the end of ``hour``."""
        return (hour + 1) % self.cfg.interval_h == 0

    def read(self, level: NDArray[np.float64], hour: int) -> NDArray[np.float64]:
        """What each camera reports at the end of ``hour``: fill 0..1, NaN when unusable or offline."""
        seen = np.clip(np.minimum(level, 1.0) + self.error[:, hour], 0.0, 1.0)
        out: NDArray[np.float64] = np.where(self.usable[:, hour], seen, np.nan)
        return out


def _outages(n: int, hours: int, per_week: float, rng: np.random.Generator) -> NDArray[np.bool_]:
    online = np.ones((n, hours), dtype=bool)
    count = rng.poisson(per_week * hours / 168.0, n)
    for b in range(n):
        for _ in range(int(count[b])):
            start = int(rng.integers(0, hours))
            length = round(math.exp(rng.uniform(math.log(2), math.log(72))))
            online[b, start : start + length] = False
    return online


def build_cameras(cfg: SensingConfig, n_bins: int, hours: int, seed: int) -> Cameras:
    """Draw every camera's error, unusable frames and outages from ``seed`` (the world's)."""
    rng = np.random.default_rng([seed, 15])
    sd = cfg.mae * math.sqrt(math.pi / 2)
    error = (rng.normal(0.0, 1.0, (n_bins, hours)) * sd).astype(np.float32)
    frame_ok = rng.uniform(0, 1, (n_bins, hours)) >= cfg.unusable
    online = _outages(n_bins, hours, cfg.outages_per_week, rng)
    return Cameras(cfg, error, frame_ok & online, online)
