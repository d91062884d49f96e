"""Decoding and resizing images the one way training, evaluation and the device all use."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = ["IMAGE_SUFFIXES", "decode", "input_frames", "read_frame", "to_input_size"]

#: Files of these kinds are images in the class-folder layout.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def decode(data: bytes) -> np.ndarray | None:
    """Decode encoded image bytes to a ``uint8`` BGR array (grey images become 3 channels).

    Returns None when the bytes are not an image OpenCV can read.
    """
    if not data:
        return None
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 1:
        return None
    return np.asarray(img, dtype=np.uint8)


def to_input_size(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a BGR frame to the model's ``(height, width)`` with ``INTER_AREA``.

    The model graph resizes bilinearly to the same size, which is then an identity: feeding frames
    resized this way makes what the device sees match what the head was fitted on.
    """
    h, w = size
    if img.shape[0] == h and img.shape[1] == w:
        return img
    return np.asarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)


def read_frame(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The image file at ``path`` decoded and resized to ``size``; None when it cannot be read or decoded."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    img = decode(data)
    return None if img is None else to_input_size(img, size)


def input_frames(
    paths: Sequence[Path], size: tuple[int, int], *, one_at_own_size: bool = False
) -> list[np.ndarray]:
    """The images at ``paths`` at the input ``size`` (undecodable ones left out): checks, calibration.

    With ``one_at_own_size`` the first image also comes at its own size, when that differs: it
    exercises the exported graph's own resize.
    """
    imgs: list[np.ndarray] = []
    for path in paths:
        img = decode(path.read_bytes())
        if img is None:  # pragma: no cover - decoded fine during extraction
            continue
        imgs.append(to_input_size(img, size))
        if one_at_own_size and len(imgs) == 1 and img.shape[:2] != size:
            imgs.append(img)
    return imgs
