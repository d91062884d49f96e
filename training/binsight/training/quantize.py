"""``train fit --int8``: the int8 model beside the float one, with its own head and held-out metrics.

int8 rounding shifts the features; a head fitted on float features amplifies that (measured on the
synthetic benchmark: MAE +0.035). So the int8 model's head is refitted, same kind and
regularisation, on features from the quantized extractor (same calibration images, hence the same
quantization parameters as the backbone inside the final int8 graph).

The int8 file is then checked three ways before it becomes the model: ONNX Runtime must run every
convolution as ``QLinearConv`` (:func:`binsight.training.export.quantize_int8`), its latency is
measured against the fp32 file (back to back, one thread, the fastest run of each), and its held-out
metric must stay within a tolerance of the fp32 file's (:data:`INT8_TOLERANCE`): otherwise the fit
keeps the fp32 model and the report says why (``int8.accepted``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from binsight.training.backbone import Backbone, BackboneSpec
from binsight.training.cache import FeatureCache, default_cache_dir
from binsight.training.data import Dataset
from binsight.training.evaluate import TestedFile, metrics_for, predict_dataset
from binsight.training.extract import FLIPS, extractor_graph, extractor_settings
from binsight.training.features import ExportGraph, layout_of
from binsight.training.heads import LinearHead, fit_fixed
from binsight.training.images import input_frames
from binsight.training.recipes import Recipe
from binsight.training.runtime import session

__all__ = ["INT8_TOLERANCE", "int8_model", "int8_verdict"]

logger = logging.getLogger(__name__)

#: Training images per batch through the quantized extractor.
_BATCH = 16

#: How much held-out accuracy the int8 model may lose against the fp32 one, by task: MAE may rise
#: by 0.01 (the synthetic benchmark's target), accuracy may fall by 2 points (about five images of
#: street-overflow's 264 test photos: less is inside that split's noise).
INT8_TOLERANCE = {"regression": 0.01, "classification": 0.02}

#: Latency comparison: rounds x runs of each file, taking turns.
_LATENCY_ROUNDS, _LATENCY_RUNS = 8, 10


def int8_verdict(
    task: str, fp32: dict[str, Any], int8: dict[str, Any], tolerance: float | None = None
) -> tuple[bool, str]:
    """Whether the int8 model's held-out metric is within ``tolerance`` of the fp32 one, and why.

    ``fp32``/``int8`` are held-out metrics as :func:`binsight.training.evaluate.metrics_for` gives;
    the metric is MAE (regression, lower is better) or accuracy (classification). Without held-out
    figures nothing can be checked: the int8 model is kept and the reason says so.
    """
    tol = INT8_TOLERANCE[task] if tolerance is None else tolerance
    if not tol >= 0:
        raise ValueError(f"int8 tolerance {tolerance!r}: want a number >= 0")
    key = "mae" if task == "regression" else "accuracy"
    a, b = fp32.get(key), int8.get(key)
    if a is None or b is None:
        return True, f"no held-out {key} to compare: int8 kept unchecked"
    loss = (b - a) if task == "regression" else (a - b)
    if loss > tol:
        return False, f"int8 loses {loss:.4f} {key} on the held-out split (tolerance {tol:g}): fp32 kept"
    return True, f"int8 within {tol:g} {key} of fp32 on the held-out split (loss {loss:+.4f})"


# long: quantize, check the kernels, time, test and gate the int8 file: one sequence read top to bottom
def int8_model(
    out: Path,
    fp32: TestedFile,
    ds: Dataset,
    tr: np.ndarray,
    te: np.ndarray,
    *,
    extractor: tuple[Backbone, BackboneSpec],
    head: LinearHead,
    recipe: Recipe,
    flips: tuple[str, ...],
    model_version: str,
    calibration_images: int,
    threads: int | None,
    seed: int,
    cache_dir: str | Path | None,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """Write the int8 model to ``out``, evaluate it on the held-out ``te``; the report's ``int8`` section.

    ``fp32`` is the float model of the same fit: its metadata (with a new ``model_version``) goes
    into the int8 file, and its held-out outputs and metrics are what the int8 ones are compared to.
    The section's ``accepted`` is :func:`int8_verdict` with ``tolerance``; the caller keeps the fp32
    file as the model when it is false. The file's ``binsight.quantization`` metadata states the
    scheme, the calibration, the measured latency ratio and the accuracy delta.
    """
    from binsight.modelfile import file_sha256
    from binsight.training.export import export_model, quantize_int8, set_metadata
    from binsight.training.modelfile import read_info

    model, spec = extractor
    calib_idx = np.random.default_rng(seed).permutation(tr)[:calibration_images]
    calib = input_frames([ds.samples[int(i)].path for i in calib_idx], spec.input_size)
    q_head = _int8_head(ds, tr, calib, extractor=extractor, head=head, recipe=recipe, flips=flips,
                        threads=threads, seed=seed, cache_dir=cache_dir)  # fmt: skip
    q_graph = ExportGraph(model, spec, recipe, weight=q_head.weight, bias=q_head.bias, task=ds.task)
    with tempfile.TemporaryDirectory(prefix="binsight-int8-") as tmp:
        q_fp32 = Path(tmp) / "int8-head.fp32.onnx"
        export_model(q_graph, q_fp32)
        set_metadata(q_fp32, fp32.meta)
        kernels = quantize_int8(q_fp32, out, calib)
    q_sess = session(out, threads)
    q_out, _ = predict_dataset(q_sess, read_info(q_sess, out), ds, list(te))
    q_test = metrics_for(fp32.info, ds, list(te), q_out)
    key = "mae" if ds.task == "regression" else "accuracy"
    delta = {key: (q_test[key] - fp32.metrics[key]) if q_test[key] is not None else None}
    accepted, verdict = int8_verdict(ds.task, fp32.metrics, q_test, tolerance)
    latency = _latency(fp32.path, out, calib[0][None])
    scheme = {
        "format": "QDQ, static",
        "weights": "int8, per output channel, symmetric",
        "activations": "uint8, per tensor, MinMax calibration",
        "quantized": "backbone convolutions, ReLU6 clips and residual adds; input fed as uint8",
        "float": "preprocessing resize, pooling, heads",
        "calibration_images": len(calib),
        "int8_kernels": {k: v for k, v in kernels.items() if k.startswith("QLinear")},
        "fp32_model_version": fp32.meta["model_version"],
        "latency_vs_fp32": latency["ratio"],
        "int8_ms": latency["int8_ms"],
        "fp32_ms": latency["fp32_ms"],
        "latency_measured": latency["measured"],
        "delta": delta,
    }
    q_meta = {**fp32.meta, "precision": "int8", "model_version": model_version, "metrics": json.dumps(q_test),
              "quantization": json.dumps(scheme)}  # fmt: skip
    set_metadata(out, q_meta)
    if not accepted:
        logger.warning("%s", verdict)
    return {
        "path": str(out),
        "fp32_path": str(fp32.path),
        "model_version": q_meta["model_version"],
        "calibration_images": len(calib),
        "head": "refitted on int8 features (same kind and regularisation)",
        "test": q_test,
        "delta": delta,
        "accepted": accepted,
        "verdict": verdict,
        "tolerance": INT8_TOLERANCE[ds.task] if tolerance is None else tolerance,
        "latency": latency,
        "kernels": kernels,
        "max_abs_diff_vs_fp32": float(np.max(np.abs(q_out - fp32.outputs))) if len(te) else None,
        "sha256": file_sha256(out)[0],
        "size": out.stat().st_size,
    }


def _latency(fp32: Path, int8: Path, frame: np.ndarray) -> dict[str, Any]:
    """Both files back to back on a real frame at the input size (as the device feeds it), 1 thread.

    The ratio is that of the thread CPU times (:func:`binsight.training.runtime.fastest_ms`): a fit
    runs wherever it is started, often beside other work, where the wall clock measures the
    neighbours. The wall-clock minimums are kept beside it.
    """
    from binsight.training.runtime import fastest_ms

    files = {"fp32": fp32, "int8": int8}
    cpu = fastest_ms(files, frame, rounds=_LATENCY_ROUNDS, runs=_LATENCY_RUNS, clock="thread")
    wall = fastest_ms(files, frame, rounds=_LATENCY_ROUNDS, runs=_LATENCY_RUNS)
    return {
        "fp32_ms": round(cpu["fp32"], 3),
        "int8_ms": round(cpu["int8"], 3),
        "ratio": round(cpu["int8"] / cpu["fp32"], 3),
        "wall_fp32_ms": round(wall["fp32"], 3),
        "wall_int8_ms": round(wall["int8"], 3),
        "wall_ratio": round(wall["int8"] / wall["fp32"], 3),
        "measured": (
            f"ONNX Runtime, batch 1, 1 thread, the fastest of {_LATENCY_ROUNDS * _LATENCY_RUNS} runs of "
            f"each file, the two taking turns; ms and ratio in thread CPU time, wall_* on the wall clock; "
            f"on {platform.machine()} ({os.cpu_count()} CPUs) at fit time"
        ),
    }


def _int8_head(
    ds: Dataset,
    tr: np.ndarray,
    calib: list[np.ndarray],
    *,
    extractor: tuple[Backbone, BackboneSpec],
    head: LinearHead,
    recipe: Recipe,
    flips: tuple[str, ...],
    threads: int | None,
    seed: int,
    cache_dir: str | Path | None,
) -> LinearHead:
    """The head refitted on training features computed by the statically quantized extractor."""
    from binsight.training.export import quantize_int8

    model, spec = extractor
    cache = FeatureCache(default_cache_dir(cache_dir), extractor_settings(spec))
    graph = extractor_graph(model, spec, cache)
    cols = layout_of(spec).columns(recipe)
    rows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    y = ds.targets()
    with tempfile.TemporaryDirectory(prefix="binsight-int8-") as tmp:
        q_graph = Path(tmp) / "extractor.int8.onnx"
        quantize_int8(graph, q_graph, calib, keep_metadata=False)
        sess = session(q_graph, threads)
        for start in range(0, len(tr), _BATCH):
            idx = tr[start : start + _BATCH]
            imgs = input_frames([ds.samples[int(i)].path for i in idx], spec.input_size)
            for variant in ("", *flips):
                batch = np.stack(
                    [im if not variant else np.ascontiguousarray(im[FLIPS[variant]]) for im in imgs]
                )
                (feats,) = sess.run(["features"], {"image": batch})
                rows.append(np.asarray(feats)[:, cols])
                targets.append(y[idx])
    return fit_fixed(
        np.concatenate(rows), np.concatenate(targets), ds.task, head.kind, head.param,
        n_classes=len(ds.classes), seed=seed,
    )  # fmt: skip
