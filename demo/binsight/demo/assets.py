"""The demo's model and camera frames, built once and cached in the demo's data folder."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from binsight.demo.world import DemoCity
from binsight.training import DEFAULT_INPUT_SIZE
from binsight.version import __version__

__all__ = ["ensure_frames", "ensure_model"]

logger = logging.getLogger(__name__)

#: The training set: synthetic bins 0..N-1 of seed 0. The demo's cameras use other bins (see below), so
#: the model meets camera views it was not trained on, as a real deployment does.
TRAIN = {"bins": 16, "per_bin": 15, "seed": 0}
#: Demo camera k looks like synthetic bin FIRST_CAMERA_BIN + k.
FIRST_CAMERA_BIN = 100
#: Frames are rendered at these fill steps and reused (hard links), so 30 bins x 216 frames is quick.
FILL_STEP = 0.02
FRAME_SIZE = (240, 320)


def _stamp_ok(stamp: Path, key: dict[str, object]) -> bool:
    try:
        return bool(json.loads(stamp.read_text()) == key)
    except (OSError, ValueError):
        return False


def ensure_model(folder: Path) -> Path:
    """Train the demo's fill model unless a model made with the same recipe is already there."""
    model = folder / "model.onnx"
    stamp = folder / "stamp.json"
    # The input size (and how it is chosen) is part of the recipe: a model cached before the
    # default changed is retrained.
    key: dict[str, object] = {
        "train": TRAIN,
        "binsight": __version__,
        "input_size": DEFAULT_INPUT_SIZE,
        "input_aspect": "frames",
    }
    if model.exists() and _stamp_ok(stamp, key):
        logger.info("using the cached demo model %s", model)
        return model
    # Imported only when training is needed: torch takes tens of seconds to import on a busy machine.
    from binsight.training.pipeline import fit
    from binsight.training.synth import generate

    folder.mkdir(parents=True, exist_ok=True)
    generate(folder / "train-set", TRAIN["bins"], TRAIN["per_bin"], TRAIN["seed"])
    fit(folder / "train-set", model, report_path=folder / "report.json", cache_dir=folder / "features")
    stamp.write_text(json.dumps(key))
    return model


def ensure_frames(city: DemoCity, folder: Path) -> dict[str, Path]:
    """One folder of JPEGs per bin, in capture order; returns ``{bin_id: folder}``."""
    import cv2

    from binsight.training.synth import render_frame

    renders = folder / "_renders"
    out: dict[str, Path] = {}
    for b in city.bins:
        seq_dir = folder / b.bin_id
        stamp = seq_dir / "stamp.json"
        key: dict[str, object] = {"fills": list(b.fills), "bin": FIRST_CAMERA_BIN + b.index, "v": 1}
        out[b.bin_id] = seq_dir
        if _stamp_ok(stamp, key):
            continue
        shutil.rmtree(seq_dir, ignore_errors=True)
        seq_dir.mkdir(parents=True)
        for i, fill in enumerate(b.fills):
            q = round(round(fill / FILL_STEP) * FILL_STEP, 4)
            src = renders / f"{FIRST_CAMERA_BIN + b.index}" / f"{q:.2f}.jpg"
            if not src.exists():
                src.parent.mkdir(parents=True, exist_ok=True)
                frame = render_frame(FIRST_CAMERA_BIN + b.index, q, seed=0, size=FRAME_SIZE)
                if not cv2.imwrite(str(src), frame, [cv2.IMWRITE_JPEG_QUALITY, 90]):
                    raise OSError(f"could not write {src}")
            dst = seq_dir / f"{i:05d}.jpg"
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        stamp.write_text(json.dumps(key))
    return out
