"""The quality gate names the first problem of a frame."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from device_support import blank, blurred, dark, overexposed, scene

from binsight.device.config import QualityConfig
from binsight.device.quality import assess, sharpness
from binsight.protocol import QUALITY_REASONS


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: scene(128), None),
        (lambda: scene(60), None),
        (dark, "dark"),
        (lambda: blank(3), "dark"),
        (overexposed, "overexposed"),
        (lambda: blank(255), "overexposed"),
        (blank, "blocked"),
        (blurred, "blurred"),
    ],
)
def test_reasons(make: Callable[[], np.ndarray], reason: str | None) -> None:
    """Usable scenes pass; dark, overexposed, blank and blurred frames get their reason."""
    q = assess(make(), QualityConfig())
    assert q.reason == reason
    assert q.reason is None or q.reason in QUALITY_REASONS


def test_resolution_independent() -> None:
    """The same scene at 4x the resolution gets the same verdict and similar sharpness."""
    small = scene(128)
    big = np.asarray(np.kron(small, np.ones((4, 4, 1))), dtype=np.uint8)
    assert assess(big, QualityConfig()).ok
    assert sharpness(big) == pytest.approx(sharpness(small), rel=0.5)


def test_thresholds_are_configurable() -> None:
    """Raising dark_mean turns a dim scene into a dark one."""
    assert assess(scene(60), QualityConfig(dark_mean=80)).reason == "dark"
