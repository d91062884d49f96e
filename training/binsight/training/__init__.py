"""Training: frozen backbone -> cached deep features -> linear head -> one ONNX model.

Importing this package is cheap; torch and friends are imported by the modules that need them.
"""

from __future__ import annotations

from binsight.modelfile import MIN_INPUT_SIDE, aspect_input_size

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_LATENCY_BUDGET_MS",
    "MIN_INPUT_SIDE",
    "MIN_RETRAIN_LABELS",
    "aspect_input_size",
    "parse_input_size",
]

#: Longer side of the backbone's input unless told otherwise; the shorter side follows the frames'
#: aspect ratio, rounded up to a multiple of 32 (a 4:3 camera gets 128x160, a square one 160x160):
#: the model-file contract's rule, :func:`binsight.modelfile.aspect_input_size`, re-exported here.
#: ImageNet weights were trained at 224; 160x160 is 0.51x its arithmetic, 128x160 0.41x. Measured
#: (docs/training.md): synthetic lid-camera MAE over three seeds 0.0491 at 160x160 vs 0.0503 at 224,
#: Caltech-101 accuracy 94.76% vs 95.25%. ``train fit --input-size 224`` (or ``128x160``) chooses otherwise.
DEFAULT_INPUT_SIZE = 160

#: ``train fit --backbone auto``: the most a frame may take, in ms (batch 1, one ONNX Runtime thread,
#: timed where the model is fitted). A camera reads every few minutes, so even a Raspberry Pi-class
#: CPU (several times slower than a desktop core) stays far inside its interval at this budget;
#: lower it for cameras that must also run other work (binsight.training.backbone_choice).
DEFAULT_LATENCY_BUDGET_MS = 60.0

#: ``train fit --retrain auto`` tries re-training the backbone's last stages from this many training
#: images on (binsight.training.retrain); below it the fifth of the bins held back to decide is too
#: small to tell the re-trained stages from the linear head.
MIN_RETRAIN_LABELS = 150


def parse_input_size(text: str) -> int | tuple[int, int]:
    """``"160"`` -> ``160`` (the longer side), ``"128x160"`` -> ``(128, 160)`` (height x width).

    Only the form is checked here (argparse calls this); sizes are checked where the backbone is
    built, with an error that says what is allowed.
    """
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"input size {text!r}: want PX (the longer side) or HxW, e.g. 160 or 128x160")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
