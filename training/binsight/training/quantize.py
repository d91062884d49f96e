"""``train fit --int8``: the int8 model beside the float one, with its own head and held-out metrics.

int8 rounding shifts the features; a head fitted on float features amplifies that (measured on the
synthetic benchmark: MAE +0.035). So the int8 model's head is refitted, same kind and
regularisation, on features from the quantized extractor (same calibration images, hence the same
quantization parameters as the backbone inside the final int8 graph).
"""

from __future__ import annotations

import json
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

__all__ = ["int8_model"]

#: Training images per batch through the quantized extractor.
_BATCH = 16


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
) -> dict[str, Any]:
    """Write the int8 model to ``out``, evaluate it on the held-out ``te``; the report's ``int8`` section.

    ``fp32`` is the float model of the same fit: its metadata (with a new ``model_version``) goes
    into the int8 file, and its held-out outputs and metrics are what the int8 ones are compared to.
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
        quantize_int8(q_fp32, out, calib)
    q_sess = session(out, threads)
    q_out, _ = predict_dataset(q_sess, read_info(q_sess, out), ds, list(te))
    q_test = metrics_for(fp32.info, ds, list(te), q_out)
    q_meta = {**fp32.meta, "precision": "int8", "model_version": model_version, "metrics": json.dumps(q_test)}
    set_metadata(out, q_meta)
    key = "mae" if ds.task == "regression" else "accuracy"
    return {
        "path": str(out),
        "fp32_path": str(fp32.path),
        "model_version": q_meta["model_version"],
        "calibration_images": len(calib),
        "head": "refitted on int8 features (same kind and regularisation)",
        "test": q_test,
        "delta": {key: (q_test[key] - fp32.metrics[key]) if q_test[key] is not None else None},
        "max_abs_diff_vs_fp32": float(np.max(np.abs(q_out - fp32.outputs))) if len(te) else None,
        "sha256": file_sha256(out)[0],
        "size": out.stat().st_size,
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
