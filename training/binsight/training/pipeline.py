"""``binsight train fit``: labelled set -> deep features -> validated linear head -> one ONNX model.

Steps: validate the set; extract (cached) features of every tap through ONNX Runtime; hold out a
test split that keeps each bin on one side; score every feature candidate by grouped CV on the
training split and keep the best; fit its head; export preprocessing + backbone + head as one
graph; check it against torch; evaluate the *file* on the held-out split with ONNX Runtime; add a
learning curve and baselines; optionally quantize to int8 and evaluate that too; write the report.

The exported head is the one fitted on the training split, so the metrics stamped into the file
are held-out metrics of exactly that file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from binsight.errors import DataError
from binsight.training import DEFAULT_INPUT_SIZE, aspect_input_size
from binsight.training.backbone import Backbone, BackboneSpec, check_input_size, load_backbone
from binsight.training.data import Dataset, load_dataset
from binsight.training.extract import Features, extract
from binsight.training.features import layout_of
from binsight.training.heads import HeadKind, LinearHead, fit_fixed, fit_head, screen
from binsight.training.images import decode, to_input_size
from binsight.training.metrics import classification_metrics, regression_metrics
from binsight.training.recipes import Recipe, candidates
from binsight.version import __version__

__all__ = ["LEARNING_CURVE", "fit", "fit_dataset", "holdout_split"]

logger = logging.getLogger(__name__)

LEARNING_CURVE = (10, 25, 50, 100, 200)
#: Mirror images added to regression training sets (see fit_dataset).
REGRESSION_FLIPS = ("hflip", "vflip", "hvflip")
MIN_IMAGES = 10
#: How many training images calibrate the int8 model.
CALIBRATION_IMAGES = 100


def holdout_split(
    ds: Dataset, seed: int = 0, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and test indices, and a sentence saying how the split was made."""
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    n = len(ds.samples)
    y = ds.targets()
    groups = ds.groups()
    bins = {s.bin_id for s in ds.samples if s.bin_id}
    if len(bins) >= 2:
        n_groups = len(np.unique(groups))
        n_test = max(1, round(test_fraction * n_groups))
        splitter = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
        tr, te = next(splitter.split(np.zeros(n), y, groups))
        note = f"by bin_id: {n_test} of {n_groups} bins held out, no bin on both sides"
        if not ds.has_bins:
            note += "; images without bin_id were split one by one"
        return tr, te, note
    stratify = ds.task == "classification" and np.bincount(y).min() >= 2
    n_test = max(1, round(test_fraction * n))
    if stratify:
        n_test = max(n_test, len(ds.classes))
        tr, te = next(StratifiedShuffleSplit(1, test_size=n_test, random_state=seed).split(np.zeros(n), y))
    else:
        tr, te = next(ShuffleSplit(1, test_size=n_test, random_state=seed).split(np.zeros(n)))
    note = (
        "random (no bin_id column): images of one bin may sit on both sides, so the held-out "
        "metrics may be optimistic for new bins"
    )
    return tr, te, note


def _metrics(task: str, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    if task == "regression":
        return regression_metrics(y, pred)
    return classification_metrics(y, pred.argmax(axis=1) if pred.ndim == 2 else pred, classes)


def _better(task: str, a: float, b: float) -> bool:
    return a < b if task == "regression" else a > b


def _learning_curve(
    tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    *,
    train_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    ds: Dataset,
    head: LinearHead,
    seed: int,
) -> list[dict[str, Any]]:
    """Held-out metrics of the chosen head refitted on random subsets of the training labels."""
    rng = np.random.default_rng(seed)
    sizes = [s for s in LEARNING_CURVE if s < len(tr)] + [len(tr)]
    out: list[dict[str, Any]] = []
    for size in sizes:
        x, y, _ = train_rows(rng.permutation(tr)[:size])
        if ds.task == "classification" and len(np.unique(y)) < 2:
            continue
        h = fit_fixed(x, y, ds.task, head.kind, head.param, n_classes=len(ds.classes), seed=seed)
        out.append({"n": int(size), "test": _metrics(ds.task, y_te, h.predict(x_te), ds.classes)})
    return out


def _baselines(
    feats: Features,
    y: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    *,
    ds: Dataset,
    groups: np.ndarray | None,
    seed: int,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if ds.task == "regression":
        out["mean"] = regression_metrics(y[te], np.full(len(te), float(y[tr].mean())))
    else:
        majority = int(np.bincount(y[tr], minlength=len(ds.classes)).argmax())
        out["majority_class"] = classification_metrics(y[te], np.full(len(te), majority), ds.classes)
    kinds: tuple[HeadKind, ...] = ("ridge",) if ds.task == "regression" else ("logistic",)
    for name, x in feats.baseline.items():
        h = fit_head(x[tr], y[tr], ds.task, len(ds.classes), groups=groups, kinds=kinds, seed=seed)
        out[name] = _metrics(ds.task, y[te], h.predict(x[te]), ds.classes)
    return out


def _model_version(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def fit(  # noqa: PLR0917 - the signature the demo and the retraining loop call
    data_dir: str | Path,
    out: str | Path,
    backbone: str = "efficientnet_lite0",
    int8: bool = False,
    report_path: str | Path | None = None,
    skip_bad: bool = False,
    cache_dir: str | Path | None = None,
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> dict[str, Any]:
    """Fit a fill-level (or class) model on a labelled set and write it as one ONNX file.

    Parameters
    ----------
    data_dir
        A labelled set in either layout of DESIGN.md.
    out
        The model file to write. With ``int8`` it is the int8 model and the float model is kept
        beside it as ``<out stem>.fp32.onnx``.
    backbone
        ``efficientnet_lite0`` (default), ``mobilenet_v3_large``, ``efficientnet_b0``, ``resnet50``,
        or ``NAME=/path/to/weights.pth``.
    report_path
        Where to write the JSON report; the PNG figure goes beside it (``.png``).
    skip_bad
        Leave bad rows and unreadable images out (listed in the report) instead of failing.
    cache_dir
        Feature cache folder (default ``$BINSIGHT_CACHE_DIR`` or ``~/.cache/binsight/features``).
    input_size
        The longer side of the backbone's input (a multiple of 32), the shorter one following the
        frames' aspect ratio (:func:`resolve_input_size`: 4:3 frames at 160 give 128x160), or an
        explicit ``(h, w)``. Default :data:`binsight.training.DEFAULT_INPUT_SIZE` (160). 224 is
        what the ImageNet weights were trained at (docs/training.md has the measured latency and
        accuracy of each size).

    Returns
    -------
    dict
        The report (also written to ``report_path`` when given).
    """
    ds = load_dataset(data_dir, skip_bad=skip_bad)
    return fit_dataset(
        ds,
        Path(out),
        backbone=backbone,
        int8=int8,
        report_path=report_path,
        skip_bad=skip_bad,
        cache_dir=cache_dir,
        input_size=input_size,
    )


def fit_dataset(
    ds: Dataset,
    out: Path,
    *,
    backbone: str | tuple[Backbone, BackboneSpec] = "efficientnet_lite0",
    int8: bool = False,
    report_path: str | Path | None = None,
    skip_bad: bool = False,
    cache_dir: str | Path | None = None,
    test_indices: np.ndarray | None = None,
    seed: int = 0,
    threads: int | None = None,
    progress: bool = True,
    calibration_images: int = CALIBRATION_IMAGES,
    augment: bool = True,
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
) -> dict[str, Any]:
    """:func:`fit` on a loaded set; ``test_indices`` fixes the held-out split (benchmarks)."""
    from binsight.training.evaluate import metrics_for, predict_dataset
    from binsight.training.export import export_model, max_abs_diff, quantize_int8, set_metadata, sha256_file
    from binsight.training.features import ExportGraph
    from binsight.training.modelfile import read_info
    from binsight.training.report import write_figure
    from binsight.training.runtime import session

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix != ".onnx":
        raise DataError(f"{out}: the model file must end in .onnx")
    if isinstance(backbone, str):
        model, spec = load_backbone(backbone, input_size=resolve_input_size(input_size, ds))
    else:
        model, spec = backbone
    timings: dict[str, float] = {}

    t = time.perf_counter()
    # A lid camera looks straight down: a mirrored frame shows the same fill, so regression heads
    # also train on the three mirror images of each training frame (measured on the synthetic
    # benchmark: MAE 0.054 -> 0.047). Classes may not be mirror-invariant, so they get none.
    flips = REGRESSION_FLIPS if augment and ds.task == "regression" else ()
    feats = extract(ds, model, spec, cache_dir, flips=flips, threads=threads, progress=progress)
    timings["features_s"] = time.perf_counter() - t
    if feats.unreadable:
        first = ds.samples[feats.unreadable[0]]
        if not skip_bad:
            names = ", ".join(ds.samples[i].where() for i in feats.unreadable[:5])
            raise DataError(
                f"{first.where()}: cannot decode the image ({len(feats.unreadable)} unreadable: {names})"
            )
        ds.drop(feats.unreadable, "unreadable image")
        if test_indices is not None:
            raise DataError("unreadable images in a set with a fixed test split")
    if len(ds.samples) < MIN_IMAGES:
        raise DataError(f"{ds.root}: {len(ds.samples)} usable images; need at least {MIN_IMAGES}")
    if ds.task == "classification" and len(ds.classes) < 2:
        raise DataError(f"{ds.root}: fewer than two classes left after skipping bad images")

    y = ds.targets()
    groups = ds.groups()
    if test_indices is None:
        tr, te, split_note = holdout_split(ds, seed)
    else:
        te = np.asarray(sorted(set(int(i) for i in test_indices)))
        tr = np.setdiff1d(np.arange(len(y)), te)
        split_note = "given by the caller"
    if ds.task == "classification" and len(np.unique(y[tr])) < 2:
        raise DataError(f"{ds.root}: the training split holds fewer than two classes")
    g_tr = groups[tr]

    def train_rows(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features, targets and groups of training ``rows`` plus their mirror images."""
        x = np.concatenate([feats.deep[rows][:, cols], *(feats.flipped[f][rows][:, cols] for f in flips)])
        reps = 1 + len(flips)
        return x, np.tile(y[rows], reps), np.tile(groups[rows], reps)

    # Feature candidates, each scored by grouped CV on the training split only (a ridge alpha path:
    # for regression that is the head itself; for classes a ridge classifier ranks the candidates
    # and the logistic/SVM head is then chosen by CV on the winner).
    t = time.perf_counter()
    scored: list[dict[str, Any]] = []
    for r in candidates(feats.layout):
        cols = feats.layout.columns(r)
        x_aug, y_aug, g_aug = train_rows(tr, cols)
        score, alpha, table = screen(x_aug, y_aug, ds.task, len(ds.classes), groups=g_aug, seed=seed)
        logger.info("candidate %s (%s features): cv %.4f (alpha %g)", r, len(cols), score, alpha)
        scored.append({"recipe": r, "dim": len(cols), "cv_score": score, "alpha": alpha, "cv_scores": table})
    best = scored[0]
    for c in scored[1:]:
        if _better(ds.task, c["cv_score"], best["cv_score"]):
            best = c
    recipe = best["recipe"]
    cols = feats.layout.columns(recipe)
    x_aug, y_aug, g_aug = train_rows(tr, cols)
    head = fit_head(x_aug, y_aug, ds.task, len(ds.classes), groups=g_aug, seed=seed)
    cols = feats.layout.columns(recipe)
    timings["heads_s"] = time.perf_counter() - t
    x_te = feats.deep[te][:, cols]

    t = time.perf_counter()
    baselines = _baselines(feats, y, tr, te, ds=ds, groups=g_tr, seed=seed)
    curve = _learning_curve(
        tr, x_te, y[te], train_rows=lambda rows: train_rows(rows, cols), ds=ds, head=head, seed=seed
    )
    timings["baselines_curve_s"] = time.perf_counter() - t

    # Export the one graph, check it against torch, then evaluate the file itself.
    t = time.perf_counter()
    fill_model = ExportGraph(model, spec, recipe, weight=head.weight, bias=head.bias, task=ds.task)
    fp32_path = out.with_name(out.stem + ".fp32.onnx") if int8 else out
    export_model(fill_model, fp32_path)
    check_imgs = _check_images(ds, te, spec.input_size)
    diff = max_abs_diff(fill_model, fp32_path, check_imgs)
    if diff > 1e-4:
        raise RuntimeError(f"exported graph differs from the torch pipeline by {diff:.3g} (> 1e-4)")
    timings["export_s"] = time.perf_counter() - t

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    version = _model_version(now)
    meta: dict[str, str] = {
        "task": ds.task,
        "input_size": json.dumps(list(spec.input_size)),
        "backbone": spec.name,
        "backbone_weights": spec.weights,
        "features": str(recipe),
        "head": json.dumps(head.describe()),
        "binsight_version": __version__,
        "model_version": version,
        "dataset_fingerprint": ds.fingerprint(),
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "precision": "fp32",
    }
    if ds.task == "classification":
        meta["classes"] = json.dumps(ds.classes)
    set_metadata(fp32_path, meta)
    sess = session(fp32_path, threads)
    info = read_info(sess, fp32_path)
    t = time.perf_counter()
    out_te, unread = predict_dataset(sess, info, ds, list(te))
    timings["test_inference_s"] = time.perf_counter() - t
    if unread:  # pragma: no cover - the same bytes decoded during extraction
        raise DataError(f"{ds.samples[unread[0]].where()}: became unreadable during training")
    test = metrics_for(info, ds, list(te), out_te)
    meta["metrics"] = json.dumps(test)
    set_metadata(fp32_path, meta)

    int8_report: dict[str, Any] | None = None
    if int8:
        t = time.perf_counter()
        rng = np.random.default_rng(seed)
        calib_idx = rng.permutation(tr)[:calibration_images]
        calib = _check_images(ds, calib_idx, spec.input_size, odd=False)
        # int8 rounding shifts the features; a head fitted on float features amplifies that (measured
        # on the synthetic benchmark: MAE +0.035). So the int8 model's head is refitted, same kind
        # and regularisation, on features from the quantized extractor (same calibration images,
        # hence the same quantization parameters as the backbone inside the final int8 graph).
        q_head = _int8_head(
            ds,
            tr,
            calib,
            model=model,
            spec=spec,
            head=head,
            recipe=recipe,
            flips=flips,
            threads=threads,
            seed=seed,
            cache_dir=cache_dir,
        )
        q_model = ExportGraph(model, spec, recipe, weight=q_head.weight, bias=q_head.bias, task=ds.task)
        with tempfile.TemporaryDirectory(prefix="binsight-int8-") as tmp:
            q_fp32 = Path(tmp) / "int8-head.fp32.onnx"
            export_model(q_model, q_fp32)
            set_metadata(q_fp32, meta)
            quantize_int8(q_fp32, out, calib)
        q_sess = session(out, threads)
        q_out, _ = predict_dataset(q_sess, read_info(q_sess, out), ds, list(te))
        q_test = metrics_for(info, ds, list(te), q_out)
        key = "mae" if ds.task == "regression" else "accuracy"
        q_meta = {
            **meta,
            "precision": "int8",
            "model_version": _model_version(now),
            "metrics": json.dumps(q_test),
        }
        set_metadata(out, q_meta)
        timings["int8_s"] = time.perf_counter() - t
        int8_report = {
            "path": str(out),
            "fp32_path": str(fp32_path),
            "model_version": q_meta["model_version"],
            "calibration_images": len(calib),
            "head": "refitted on int8 features (same kind and regularisation)",
            "test": q_test,
            "delta": {key: (q_test[key] - test[key]) if q_test[key] is not None else None},
            "max_abs_diff_vs_fp32": float(np.max(np.abs(q_out - out_te))) if len(te) else None,
            "sha256": sha256_file(out),
            "size": out.stat().st_size,
        }

    timings["total_s"] = time.perf_counter() - t0
    bins = sorted({s.bin_id for s in ds.samples if s.bin_id})
    report: dict[str, Any] = {
        "binsight_version": __version__,
        "created_at": meta["created_at"],
        "data": {
            "root": str(ds.root),
            "layout": ds.layout,
            "task": ds.task,
            "images": len(ds.samples),
            "classes": ds.classes,
            "bins": len(bins),
            "fingerprint": meta["dataset_fingerprint"],
            "skipped": [s.as_dict() for s in ds.skipped],
        },
        "split": {
            "method": split_note,
            "train": len(tr),
            "test": len(te),
            "test_bins": sorted({str(ds.samples[i].bin_id) for i in te if ds.samples[i].bin_id}),
        },
        "backbone": {
            "name": spec.name,
            "weights": spec.weights,
            "input_size": list(spec.input_size),
            "input_size_asked": (input_size if isinstance(input_size, int) else list(input_size))
            if isinstance(backbone, str)
            else list(spec.input_size),
            "taps": dict(zip(spec.taps, spec.tap_channels, strict=True)),
        },
        "features": {
            "metric": "mae (lower is better)" if ds.task == "regression" else "accuracy (higher is better)",
            "candidates": [{**c, "recipe": str(c["recipe"])} for c in scored],
            "screened_with": "ridge (the head itself)" if ds.task == "regression" else "ridge classifier",
            "chosen": str(recipe),
            "input_size": list(spec.input_size),
            "augmentation": list(flips),
            "extraction": {
                "images": len(feats.deep),
                "extracted": feats.extracted,
                "from_cache": len(feats.deep) - feats.extracted,
                "seconds": timings["features_s"],
            },
        },
        "head": head.describe(),
        "test": test,
        "baselines": baselines,
        "learning_curve": curve,
        "export": {
            "path": str(fp32_path),
            "model_version": version,
            "precision": "fp32",
            "sha256": sha256_file(fp32_path),
            "size": fp32_path.stat().st_size,
            "onnx_checker": "passed",
            "max_abs_diff_vs_torch": diff,
        },
        "int8": int8_report,
        "timings": timings,
    }
    if report_path is not None:
        rp = Path(report_path)
        rp.parent.mkdir(parents=True, exist_ok=True)
        fig = rp.with_suffix(".png")
        report["figure"] = str(fig)
        y_te = y[te]
        write_figure(report, y_te, out_te, fig)
        staged = rp.with_name(f".{rp.name}.tmp")
        staged.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        staged.replace(rp)
    logger.info("model %s written to %s; held-out %s", version, out, json.dumps(test)[:200])
    return report


#: Frames whose size decides the input's aspect ratio (spread over the set; decoding is the cost).
ASPECT_SAMPLE = 64


def resolve_input_size(size: int | tuple[int, int], ds: Dataset) -> tuple[int, int]:
    """``(h, w)`` as given, or for one number the input whose longer side it is, at the frames' aspect.

    The shorter side follows the frames' median aspect ratio, rounded *up* to a multiple of 32
    (:func:`binsight.training.aspect_input_size`): a 4:3 camera at 160 gets ``(128, 160)``, a square
    one ``(160, 160)``, a portrait 3:4 one ``(160, 128)``. Squashing a 4:3 frame into a square
    distorts the shapes the ImageNet weights learned on undistorted crops, and costs 25% more
    arithmetic than the aspect-true 128x160, which measured as accurate (docs/training.md). The
    frames' sizes are read from up to :data:`ASPECT_SAMPLE` images spread over the set (unreadable
    ones are left to extraction to report). The size is checked before any image is read.
    """
    if not isinstance(size, int):
        return check_input_size(size)
    side = check_input_size(size)[0]
    n, m = len(ds.samples), min(len(ds.samples), ASPECT_SAMPLE)
    picks = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
    shapes: list[tuple[int, int]] = []
    for i in picks:
        try:
            img = decode(ds.samples[i].path.read_bytes())
        except OSError:
            img = None
        if img is not None:
            shapes.append((int(img.shape[0]), int(img.shape[1])))
    hw = aspect_input_size(side, shapes)
    logger.info("input size %sx%s (h x w) for %s sampled frames, longer side %s", *hw, len(shapes), size)
    return hw


def _int8_head(
    ds: Dataset,
    tr: np.ndarray,
    calib: list[np.ndarray],
    *,
    model: Backbone,
    spec: BackboneSpec,
    head: LinearHead,
    recipe: Recipe,
    flips: tuple[str, ...],
    threads: int | None,
    seed: int,
    cache_dir: str | Path | None,
) -> LinearHead:
    """The head refitted on training features computed by the statically quantized extractor."""
    from binsight.training.cache import FeatureCache, default_cache_dir
    from binsight.training.export import quantize_int8
    from binsight.training.extract import FLIPS, _extractor_graph, extractor_settings
    from binsight.training.runtime import session

    cache = FeatureCache(default_cache_dir(cache_dir), extractor_settings(spec))
    graph = _extractor_graph(model, spec, cache)
    cols = layout_of(spec).columns(recipe)
    rows: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    y = ds.targets()
    with tempfile.TemporaryDirectory(prefix="binsight-int8-") as tmp:
        q_graph = Path(tmp) / "extractor.int8.onnx"
        quantize_int8(graph, q_graph, calib, keep_metadata=False)
        sess = session(q_graph, threads)
        for start in range(0, len(tr), 16):
            idx = tr[start : start + 16]
            imgs = _check_images(ds, idx, spec.input_size, odd=False)
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


def _check_images(
    ds: Dataset, indices: np.ndarray, size: tuple[int, int], *, odd: bool = True
) -> list[np.ndarray]:
    """Images at the input size; with ``odd``, also one at its own size (exercises the in-graph resize)."""
    picked = list(indices[:4]) if odd else list(indices)
    imgs: list[np.ndarray] = []
    for i in picked:
        img = decode(ds.samples[int(i)].path.read_bytes())
        if img is None:  # pragma: no cover - decoded fine during extraction
            continue
        imgs.append(to_input_size(img, size))
        if odd and len(imgs) == 1 and img.shape[:2] != size:
            imgs.append(img)
    return imgs
