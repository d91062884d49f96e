"""Labelling images: when they are sent, and the size cap on the JPEG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from device_support import scene

from binsight.device.config import LabellingConfig
from binsight.device.labelling import encode_jpeg, label_reason


@pytest.mark.parametrize("max_bytes", [10_000, 30_000, 200_000])
def test_jpeg_fits_the_cap(max_bytes: int) -> None:
    """A noisy 1080p frame is re-encoded and scaled until it fits max_bytes and max_side."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(1080, 1920, 3), dtype=np.uint8)
    jpeg = encode_jpeg(frame, 640, max_bytes)
    assert len(jpeg) <= max_bytes
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and max(img.shape[:2]) <= 640


def test_small_frame_kept_as_is() -> None:
    """A frame already small enough keeps its size."""
    img = cv2.imdecode(np.frombuffer(encode_jpeg(scene(100), 640, 200_000), np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)


def test_label_reasons() -> None:
    """Unsure beats periodic; every_n=0 means never periodic."""
    cfg = LabellingConfig(every_n=3)
    assert [label_reason(cfg, n, None, None) for n in (1, 2, 3, 6)] == [None, None, "periodic", "periodic"]
    assert label_reason(cfg, 1, 0.3, None) == "unsure"
    assert label_reason(cfg, 1, None, 0.4) == "unsure"
    assert label_reason(cfg, 1, 0.05, 0.9) is None
    assert label_reason(LabellingConfig(every_n=0, unsure=False), 3, 0.5, 0.1) is None
