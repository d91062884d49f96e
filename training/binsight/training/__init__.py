"""Training: frozen backbone -> cached deep features -> linear head -> one ONNX model.

Importing this package is cheap; torch and friends are imported by the modules that need them.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

#: Longer side of the backbone's input unless told otherwise; the shorter side follows the frames'
#: aspect ratio, rounded up to a multiple of 32 (a 4:3 camera gets 128x160, a square one 160x160).
#: ImageNet weights were trained at 224; 160x160 is 0.51x its arithmetic, 128x160 0.41x. Measured
#: (docs/training.md): synthetic lid-camera MAE over three seeds 0.0491 at 160x160 vs 0.0503 at 224,
#: Caltech-101 accuracy 94.76% vs 95.25%. ``train fit --input-size 224`` (or ``128x160``) chooses otherwise.
DEFAULT_INPUT_SIZE = 160

#: Smallest input side: below this the final 7x7-at-224 map shrinks under 2x2 and grid pooling loses meaning.
MIN_INPUT_SIDE = 64


def aspect_input_size(side: int, frames_hw: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """``(h, w)`` with the longer side ``side`` and the shorter following the frames' median aspect.

    The shorter side is rounded *up* to a multiple of 32 (never shrinking the frame more along it
    than along the longer side) and kept between :data:`MIN_INPUT_SIDE` and ``side``. No frames: a
    square. Arithmetic only (no torch), so the device can tell whether its frames fit a model;
    :func:`binsight.training.pipeline.resolve_input_size` checks ``side`` and calls this.
    """
    if not frames_hw:
        return side, side
    aspect = statistics.median(h / w for h, w in frames_hw)

    def shorter(fraction: float) -> int:
        return min(side, max(MIN_INPUT_SIDE, 32 * math.ceil(side * fraction / 32 - 1e-9)))

    return (shorter(aspect), side) if aspect <= 1.0 else (side, shorter(1.0 / aspect))


def parse_input_size(text: str) -> int | tuple[int, int]:
    """``"160"`` -> ``160`` (the longer side), ``"128x160"`` -> ``(128, 160)`` (height x width).

    Only the form is checked here (argparse calls this); sizes are checked where the backbone is
    built, with an error that says what is allowed.
    """
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"input size {text!r}: want PX (the longer side) or HxW, e.g. 160 or 128x160")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
