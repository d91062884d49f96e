"""The quality gate names the first problem of a frame."""

from __future__ import annotations

from collections.abc import Callable

import cv2
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


def test_defaults_pass_rendered_lid_frames() -> None:
    """The default thresholds accept what the synthetic lid camera renders (the demo's cameras),
    empty deep dim bins included: only broken frames may become null readings."""
    synth = pytest.importorskip("binsight.training.synth")
    cfg = QualityConfig()
    rejected = []
    # Seeds 4-7 hold the hardest renders found over 7 seeds x 20 bins: deep, dim, smooth empty
    # bins and a full bin saturated by the flash.
    for seed in range(4, 8):
        for bin_index in range(10):
            for fill in (0.0, 0.01, 0.5, 1.0):
                q = assess(synth.render_frame(bin_index, fill, seed=seed, frame=seed), cfg)
                if not q.ok:
                    rejected.append((seed, bin_index, fill, q))
    assert not rejected


def test_blurred_rendered_frames_are_caught() -> None:
    """Rendered frames with detail, out of focus, are caught. (An empty bin whose floor is smooth
    anyway looks the same in and out of focus: no gate can tell, and it is accepted.)"""
    synth = pytest.importorskip("binsight.training.synth")
    cfg = QualityConfig()
    rejected = []
    for bin_index in range(5):
        for fill in (0.3, 0.6, 1.0):
            frame = synth.render_frame(bin_index, fill, seed=1, frame=1)
            q = assess(cv2.GaussianBlur(frame, (0, 0), 4), cfg)
            if q.reason != "blurred":
                rejected.append((bin_index, fill, q))
    assert not rejected
