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

import dataclasses
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from binsight.errors import DataError
from binsight.training import DEFAULT_INPUT_SIZE, MIN_RETRAIN_LABELS, aspect_input_size
from binsight.training.backbone import Backbone, BackboneSpec, check_input_size, load_backbone
from binsight.training.backbone_choice import AUTO, DEFAULT_LATENCY_BUDGET_MS, choose_backbone
from binsight.training.baselines import LEARNING_CURVE, baselines, learning_curve
from binsight.training.class_head import (
    ClassPart,
    FittedClassHead,
    class_head_report,
    split_parts,
    test_class_head,
)
from binsight.training.data import Dataset, load_dataset
from binsight.training.extract import Features, extract
from binsight.training.images import decode, input_frames
from binsight.training.retrain import RECIPE as RETRAINED_RECIPE
from binsight.training.retrain import Mode, RetrainSettings, decide_and_retrain, retrained_backbone
from binsight.training.selection import RULE as SELECTION_RULE
from binsight.training.selection import Selection, TrainingRows, select
from binsight.version import __version__

if TYPE_CHECKING:
    from binsight.training.evaluate import TestedFile
    from binsight.training.features import ExportGraph

__all__ = ["LEARNING_CURVE", "fit", "fit_dataset", "holdout_split", "model_file"]

logger = logging.getLogger(__name__)

#: Mirror images added to regression training sets (see fit_dataset).
REGRESSION_FLIPS = ("hflip", "vflip", "hvflip")
MIN_IMAGES = 10
#: How many training images calibrate the int8 model.
CALIBRATION_IMAGES = 100
#: The largest difference allowed between the exported file and the torch graph it came from.
MAX_EXPORT_DIFF = 1e-4


def holdout_split(
    ds: Dataset, seed: int = 0, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray, str]:
    """Train and test indices, and a sentence saying how the split was made."""
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    n = len(ds.samples)
    # Only classes stratify; a set with both kinds of label has no one target for every image.
    y = ds.targets() if ds.task == "classification" else np.zeros(n)
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


@dataclass(frozen=True)
class Split:
    """Training and held-out sample indices, and a sentence saying how they were chosen."""

    train: np.ndarray
    test: np.ndarray
    method: str


def _split(ds: Dataset, test_indices: np.ndarray | None, seed: int) -> Split:
    """The caller's held-out split, else :func:`holdout_split`; the training side needs two classes."""
    if test_indices is None:
        tr, te, note = holdout_split(ds, seed)
    else:
        te = np.asarray(sorted(set(int(i) for i in test_indices)))
        tr = np.setdiff1d(np.arange(len(ds.samples)), te)
        note = "given by the caller"
    if ds.task == "classification" and len(np.unique(ds.targets()[tr])) < 2:
        raise DataError(f"{ds.root}: the training split holds fewer than two classes")
    return Split(tr, te, note)


def _model_version(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds the block took to ``timings[key]`` (the report's ``timings``)."""
    t = time.perf_counter()
    yield
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t


def fit(  # noqa: PLR0917 - the signature the demo and the retraining loop call
    data_dir: str | Path,
    out: str | Path,
    backbone: str = "efficientnet_lite0",
    int8: bool = False,
    report_path: str | Path | None = None,
    skip_bad: bool = False,
    cache_dir: str | Path | None = None,
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    retrain: Mode = "auto",
    int8_tolerance: float | None = None,
) -> dict[str, Any]:
    """Fit a fill-level (or class) model on a labelled set and write it as one ONNX file.

    Parameters
    ----------
    data_dir
        A labelled set in either layout of docs/contracts.md.
    out
        The model file to write. With ``int8`` it is the int8 model and the float model is kept
        beside it as ``<out stem>.fp32.onnx``, unless the int8 model loses more than
        ``int8_tolerance`` on the held-out split: then ``out`` is the float model and the int8 one
        is kept as ``<out stem>.int8.onnx`` (the report's ``int8.accepted`` and ``int8.verdict``).
    backbone
        ``efficientnet_lite0`` (default), ``efficientnet_lite1``, ``efficientnet_lite2``,
        ``mobilenet_v3_large``, ``efficientnet_b0``, ``resnet50``, or ``NAME=/path/to/weights.pth``;
        ``auto`` chooses among the three Lites by CV within ``latency_budget_ms`` (per frame, batch 1,
        one ONNX Runtime thread, timed on this machine; the report's ``backbone.choice`` says how).
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
    retrain
        ``auto`` (default): with at least :data:`~binsight.training.retrain.MIN_RETRAIN_LABELS`
        training images, also re-train the backbone's last stages (early layers frozen) and keep
        them when they beat the linear head on held-back training bins
        (:mod:`binsight.training.retrain`); ``on`` keeps them regardless; ``off`` never tries.
    int8_tolerance
        With ``int8``: the most held-out MAE may rise (regression) or accuracy fall (classification)
        against the fp32 model; default :data:`binsight.training.quantize.INT8_TOLERANCE`.

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
        latency_budget_ms=latency_budget_ms,
        retrain=retrain,
        int8_tolerance=int8_tolerance,
    )


# long: the fit is one sequence of steps (features, selection, export, test, int8, report) read top to bottom
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
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    retrain: Mode = "auto",
    retrain_settings: RetrainSettings | None = None,
    int8_tolerance: float | None = None,
) -> dict[str, Any]:
    """:func:`fit` on a loaded set; ``test_indices`` fixes the held-out split (benchmarks).

    ``retrain_settings`` changes the re-training schedule (tests; benchmarks that measure it).

    ``backbone="auto"`` chooses among EfficientNet-Lite0/1/2 by CV within ``latency_budget_ms``
    (:mod:`binsight.training.backbone_choice`).
    """
    from binsight.training.features import ExportGraph
    from binsight.training.quantize import int8_model

    t0 = time.perf_counter()
    out = Path(out)
    if out.suffix != ".onnx":
        raise DataError(f"{out}: the model file must end in .onnx")
    timings: dict[str, float] = {}
    # A set with fill and class labels: one split over the whole set, then each head its own part.
    class_part: ClassPart | None = None
    no_class_head: str | None = None
    split_note: str | None = None
    test_bins: list[str] | None = None  # a set with both labels: the held-out bins of the whole split
    frames = ds  # the input size follows every image's frame, not only the fill part's
    if ds.has_class_labels:
        whole = _split(ds, test_indices, seed)
        test_bins = sorted({str(ds.samples[i].bin_id) for i in whole.test if ds.samples[i].bin_id})
        ds, test_indices, class_part, no_class_head = split_parts(ds, whole.test)
        split_note = f"{whole.method} (one split for the fill and the class head)"
        if class_part is not None and int8:
            class_part, no_class_head = None, "--int8 with a class head is not built yet (fit without --int8)"
    # A lid camera looks straight down: a mirrored frame shows the same fill, so regression heads
    # also train on the three mirror images of each training frame (measured on the synthetic
    # benchmark: MAE 0.054 -> 0.047). Classes may not be mirror-invariant, so they get none.
    flips = REGRESSION_FLIPS if augment and ds.task == "regression" else ()

    def run(model: Backbone, spec: BackboneSpec) -> tuple[tuple[Features, Split, Selection], float, float]:
        done = _extract_select(ds, model, spec, cache_dir=cache_dir, flips=flips, threads=threads,
                               progress=progress, skip_bad=skip_bad, test_indices=test_indices, seed=seed,
                               timings=timings)  # fmt: skip
        return done, done[2].cv_score, done[2].cv_se

    choice: dict[str, Any] | None = None
    if backbone == AUTO:
        best, choice = choose_backbone(ds.task, resolve_input_size(input_size, frames), run,
                                       budget_ms=latency_budget_ms, cache_dir=cache_dir)  # fmt: skip
        assert best.backbone is not None and best.spec is not None
        model, spec = best.backbone, best.spec
        feats, split, chosen = best.result
    else:
        model, spec = _backbone(backbone, input_size, frames)
        (feats, split, chosen), _, _ = run(model, spec)
    if split_note is not None:
        split = Split(split.train, split.test, split_note)
    fitted_class: FittedClassHead | None = None
    if class_part is not None:
        # The same backbone's (cached) features of the class-labelled images; no mirrors (see flips).
        c_feats, c_split, c_chosen = _extract_select(
            class_part.ds, model, spec, cache_dir=cache_dir, flips=(), threads=threads, progress=progress,
            skip_bad=skip_bad, test_indices=class_part.test, seed=seed, timings=timings,
        )  # fmt: skip
        fitted_class = FittedClassHead(class_part, c_feats, c_split.train, c_chosen)
    tr, te = split.train, split.test
    y, groups = ds.targets(), ds.groups()
    train_rows = TrainingRows(feats, y, groups, flips)
    head, cols = chosen.head, chosen.cols
    with _timed(timings, "baselines_curve_s"):
        compared = baselines(feats, y, tr, te, ds=ds, groups=groups[tr], seed=seed)
        curve = learning_curve(tr, feats.deep[te][:, cols], y[te], train_rows=train_rows, cols=cols, ds=ds,
                               head=head, seed=seed)  # fmt: skip

    # A class head beside fill shares the backbone: re-training its tail for one head would change
    # the other's features, so a two-head fit keeps the frozen backbone.
    retrain_mode: Mode = retrain if fitted_class is None else "off"
    with _timed(timings, "retrain_s"):
        at_size = _retrain_size(backbone, spec, ds, train_images=len(tr), mode=retrain_mode,
                                budget_ms=latency_budget_ms, cache_dir=cache_dir)  # fmt: skip
        retrained, retrain_info = decide_and_retrain(ds, model, spec, tr, chosen, train_rows, flips,
                                                     retrain_mode, seed, retrain_settings,
                                                     at_size)  # fmt: skip
    if fitted_class is not None:
        retrain_info = {**retrain_info, "reason": "a class head beside fill shares the frozen backbone"}
    recipe = chosen.recipe
    if retrained is not None:
        # The re-trained tail replaces the backbone's (at the size it was trained at); its weights id
        # says so (and keeps the feature cache of the ImageNet backbone apart from this one's).
        model = retrained_backbone(retrained.backbone, retrained.tail)
        spec = retrained.spec
        spec = dataclasses.replace(spec, weights=f"{spec.weights}+retrained-{retrained.digest()}")
        recipe = RETRAINED_RECIPE
        head = dataclasses.replace(head, weight=retrained.weight, bias=retrained.bias, cv_score=float("nan"),
                                   cv_scores={}, temperature=1.0)  # fmt: skip

    # Export the one graph, check it against torch, then evaluate the file itself.
    graph = ExportGraph(model, spec, recipe, weight=head.weight, bias=head.bias, task=ds.task,
                        class_head=None if fitted_class is None else fitted_class.graph_head())  # fmt: skip
    fp32_path = out.with_name(out.stem + ".fp32.onnx") if int8 else out
    with _timed(timings, "export_s"):
        diff = _export_checked(graph, fp32_path, ds, te)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    meta = _metadata(ds, spec, chosen, now)
    if retrained is not None:
        meta["features"] = str(recipe)
        retrained_head = {"kind": "retrained_last_stages", "tail_stages": retrain_info["tail_stages"],
                          "validation": retrain_info["validation"]}  # fmt: skip
        meta["head"] = json.dumps(retrained_head)
    if fitted_class is not None:
        meta["classes"] = json.dumps(fitted_class.part.ds.classes)
        meta["class_head"] = json.dumps(fitted_class.describe())
    tested = _stamp_and_test(fp32_path, meta, ds, te, threads=threads, timings=timings)
    class_metrics = None
    if fitted_class is not None:
        with _timed(timings, "test_inference_s"):
            class_metrics, _ = test_class_head(fp32_path, meta, fitted_class, threads=threads)
    int8_report: dict[str, Any] | None = None
    if int8:
        with _timed(timings, "int8_s"):
            int8_report = int8_model(out, tested, ds, tr, te, extractor=(model, spec), head=head,
                                     recipe=recipe, flips=flips, model_version=_model_version(now),
                                     calibration_images=calibration_images, threads=threads, seed=seed,
                                     cache_dir=cache_dir, tolerance=int8_tolerance)  # fmt: skip
        if not int8_report["accepted"]:
            tested = _keep_fp32(out, tested, int8_report)
    timings["total_s"] = time.perf_counter() - t0
    asked = input_size if isinstance(input_size, int) else list(input_size)
    report = _report(ds, split, spec=spec, asked=asked if isinstance(backbone, str) else None, chosen=chosen,
                     flips=flips, feats=feats, fp32=tested, diff=diff, baselines=compared, curve=curve,
                     int8=int8_report, timings=timings, choice=choice)  # fmt: skip
    report["retrain"] = retrain_info
    if retrained is not None:
        report["head"] = json.loads(meta["head"])
        report["features"]["chosen"] = str(recipe)
    report["class_head"] = class_head_report(fitted_class, no_class_head, class_metrics)
    if test_bins is not None:
        report["split"]["test_bins"] = test_bins
    if report_path is not None:
        _write_report(report, Path(report_path), y[te], tested.outputs)
    held_out = json.dumps(tested.metrics)[:200]
    if class_metrics is not None:
        held_out += f"; class head accuracy {class_metrics['accuracy']:.4f}"
    logger.info("model %s written to %s; held-out %s", meta["model_version"], out, held_out)
    return report


def model_file(report: dict[str, Any]) -> str:
    """The file a fit's ``report`` made the model: the int8 one when it was asked for and kept."""
    q = report.get("int8")
    return str(q["path"] if q and q["accepted"] else report["export"]["path"])


def _keep_fp32(out: Path, fp32: TestedFile, int8_report: dict[str, Any]) -> TestedFile:
    """The int8 model lost too much: ``out`` becomes the fp32 model, the int8 one ``<stem>.int8.onnx``."""
    refused = out.with_name(out.stem + ".int8.onnx")
    os.replace(out, refused)
    os.replace(fp32.path, out)
    int8_report["path"] = str(refused)
    int8_report["fp32_path"] = str(out)
    return dataclasses.replace(fp32, path=out)


def _retrain_size(
    backbone: str | tuple[Backbone, BackboneSpec],
    spec: BackboneSpec,
    ds: Dataset,
    *,
    train_images: int,
    mode: Mode,
    budget_ms: float,
    cache_dir: str | Path | None,
) -> tuple[Backbone, BackboneSpec] | None:
    """The backbone at :data:`~binsight.training.retrain.RETRAIN_INPUT_SIDE` to re-train at, when the
    fit's input is smaller, the backbone is named (not the caller's own) and that size's extractor
    keeps within the latency budget; else None (re-train at the fit's own size)."""
    from binsight.training.backbone_choice import extractor_latency_ms
    from binsight.training.retrain import RETRAIN_INPUT_SIDE

    if (
        mode == "off"
        or (mode == "auto" and train_images < MIN_RETRAIN_LABELS)
        or not isinstance(backbone, str)
    ):
        return None
    size = resolve_input_size(RETRAIN_INPUT_SIDE, ds)
    if max(size) <= max(spec.input_size):
        return None
    name = spec.name if backbone == AUTO else backbone
    bigger, big_spec = load_backbone(name, input_size=size)
    ms = extractor_latency_ms(bigger, big_spec, cache_dir)
    if ms > budget_ms:
        logger.info(
            "re-training stays at %s: %s takes %.1f ms (budget %.0f)", spec.input_size, size, ms, budget_ms
        )
        return None
    return bigger, big_spec


def _cv_gap(task: str, chosen: Selection, held: dict[str, Any]) -> dict[str, Any]:
    """The head's grouped-CV estimate on the training split next to the held-out figure of the file.

    A gap much wider than the CV's own standard error says the training bins were not like the
    held-out ones (or the choice over-fitted the folds): expect new cameras to sit nearer the
    held-out figure, or below it.
    """
    key = "mae" if task == "regression" else "accuracy"
    cv, value = chosen.head.cv_score, held.get(key)
    se = chosen.cv_se
    return {
        "metric": key,
        "cv_estimate": cv,
        "cv_standard_error": se,
        "held_out": value,
        "gap": None if value is None else value - cv,
    }


def _extract_select(
    ds: Dataset,
    model: Backbone,
    spec: BackboneSpec,
    *,
    cache_dir: str | Path | None,
    flips: tuple[str, ...],
    threads: int | None,
    progress: bool,
    skip_bad: bool,
    test_indices: np.ndarray | None,
    seed: int,
    timings: dict[str, float],
) -> tuple[Features, Split, Selection]:
    """Features of every sample through ``model``, the held-out split, and the recipe and head chosen."""
    with _timed(timings, "features_s"):
        feats = extract(ds, model, spec, cache_dir, flips=flips, threads=threads, progress=progress)
    _drop_unreadable(ds, feats, skip_bad=skip_bad, fixed_split=test_indices is not None)
    split = _split(ds, test_indices, seed)
    train_rows = TrainingRows(feats, ds.targets(), ds.groups(), flips)
    with _timed(timings, "heads_s"):
        chosen = select(train_rows, split.train, ds.task, len(ds.classes), seed)
    return feats, split, chosen


def _backbone(
    backbone: str | tuple[Backbone, BackboneSpec], input_size: int | tuple[int, int], ds: Dataset
) -> tuple[Backbone, BackboneSpec]:
    """The backbone by name, at the input size for the set's frames; or the caller's own (benchmarks)."""
    if isinstance(backbone, str):
        return load_backbone(backbone, input_size=resolve_input_size(input_size, ds))
    return backbone


def _drop_unreadable(ds: Dataset, feats: Features, *, skip_bad: bool, fixed_split: bool) -> None:
    """Fail on images extraction could not decode, or (``skip_bad``) leave them out; check what is left."""
    if feats.unreadable:
        first = ds.samples[feats.unreadable[0]]
        if not skip_bad:
            names = ", ".join(ds.samples[i].where() for i in feats.unreadable[:5])
            raise DataError(
                f"{first.where()}: cannot decode the image ({len(feats.unreadable)} unreadable: {names})"
            )
        ds.drop(feats.unreadable, "unreadable image")
        if fixed_split:
            raise DataError("unreadable images in a set with a fixed test split")
    if len(ds.samples) < MIN_IMAGES:
        raise DataError(f"{ds.root}: {len(ds.samples)} usable images; need at least {MIN_IMAGES}")
    if ds.task == "classification" and len(ds.classes) < 2:
        raise DataError(f"{ds.root}: fewer than two classes left after skipping bad images")


def _export_checked(graph: ExportGraph, path: Path, ds: Dataset, te: np.ndarray) -> float:
    """Export ``graph`` to ``path`` and return its largest difference from torch on held-out images.

    The images are up to four of ``te`` at the input size plus the first at its own size, so the
    graph's own resize is checked too.
    """
    from binsight.training.export import export_model, max_abs_diff

    export_model(graph, path)
    size = graph.preprocess.size
    check = input_frames([ds.samples[int(i)].path for i in te[:4]], size, one_at_own_size=True)
    diff = max_abs_diff(graph, path, check)
    if diff > MAX_EXPORT_DIFF:
        raise RuntimeError(f"exported graph differs from the torch pipeline by {diff:.3g} (> 1e-4)")
    return diff


def _metadata(ds: Dataset, spec: BackboneSpec, chosen: Selection, now: dt.datetime) -> dict[str, str]:
    """The model file's ``binsight.*`` metadata (docs/contracts.md), before its held-out metrics."""
    meta: dict[str, str] = {
        "task": ds.task,
        "input_size": json.dumps(list(spec.input_size)),
        "backbone": spec.name,
        "backbone_weights": spec.weights,
        "features": str(chosen.recipe),
        "head": json.dumps(chosen.head.describe()),
        "binsight_version": __version__,
        "model_version": _model_version(now),
        "dataset_fingerprint": ds.fingerprint(),
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "precision": "fp32",
    }
    if ds.task == "classification":
        meta["classes"] = json.dumps(ds.classes)
    return meta


def _stamp_and_test(
    path: Path,
    meta: dict[str, str],
    ds: Dataset,
    te: np.ndarray,
    *,
    threads: int | None,
    timings: dict[str, float],
) -> TestedFile:
    """Stamp ``meta`` into the file, run the *file* on the held-out split, stamp its metrics too."""
    from binsight.training.evaluate import TestedFile, metrics_for, predict_dataset
    from binsight.training.export import set_metadata
    from binsight.training.modelfile import read_info
    from binsight.training.runtime import session

    set_metadata(path, meta)
    sess = session(path, threads)
    info = read_info(sess, path)
    with _timed(timings, "test_inference_s"):
        out_te, unread = predict_dataset(sess, info, ds, list(te))
    if unread:  # pragma: no cover - the same bytes decoded during extraction
        raise DataError(f"{ds.samples[unread[0]].where()}: became unreadable during training")
    test = metrics_for(info, ds, list(te), out_te)
    meta["metrics"] = json.dumps(test)
    set_metadata(path, meta)
    return TestedFile(path, meta, info, out_te, test)


def _report(
    ds: Dataset,
    split: Split,
    *,
    spec: BackboneSpec,
    asked: int | list[int] | None,
    chosen: Selection,
    flips: tuple[str, ...],
    feats: Features,
    fp32: TestedFile,
    diff: float,
    baselines: dict[str, dict[str, Any]],
    curve: list[dict[str, Any]],
    int8: dict[str, Any] | None,
    timings: dict[str, float],
    choice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The fit's report, one section per step ("Splits and the report" in docs/training.md)."""
    from binsight.modelfile import file_sha256

    regression = ds.task == "regression"
    return {
        "binsight_version": __version__,
        "created_at": fp32.meta["created_at"],
        "data": {
            "root": str(ds.root),
            "layout": ds.layout,
            "task": ds.task,
            "images": len(ds.samples),
            "classes": ds.classes,
            "bins": len({s.bin_id for s in ds.samples if s.bin_id}),
            "fingerprint": fp32.meta["dataset_fingerprint"],
            "skipped": [s.as_dict() for s in ds.skipped],
        },
        "split": {
            "method": split.method,
            "train": len(split.train),
            "test": len(split.test),
            "test_bins": sorted({str(ds.samples[i].bin_id) for i in split.test if ds.samples[i].bin_id}),
        },
        "backbone": {
            "name": spec.name,
            "weights": spec.weights,
            "input_size": list(spec.input_size),
            "input_size_asked": asked if asked is not None else list(spec.input_size),
            "taps": dict(zip(spec.taps, spec.tap_channels, strict=True)),
            **({"choice": choice} if choice is not None else {}),
        },
        "features": {
            "metric": "mae (lower is better)" if regression else "accuracy (higher is better)",
            "candidates": [{**c, "recipe": str(c["recipe"])} for c in chosen.scored],
            "screened_with": "ridge (the head itself)" if regression else "ridge classifier",
            "rule": SELECTION_RULE,
            "chosen": str(chosen.recipe),
            "input_size": list(spec.input_size),
            "augmentation": list(flips),
            "extraction": {
                "images": len(feats.deep),
                "extracted": feats.extracted,
                "from_cache": len(feats.deep) - feats.extracted,
                "seconds": timings["features_s"],
            },
        },
        "head": chosen.head.describe(),
        "test": fp32.metrics,
        "cv_vs_held_out": _cv_gap(ds.task, chosen, fp32.metrics),
        "baselines": baselines,
        "learning_curve": curve,
        "export": {
            "path": str(fp32.path),
            "model_version": fp32.meta["model_version"],
            "precision": "fp32",
            "sha256": file_sha256(fp32.path)[0],
            "size": fp32.path.stat().st_size,
            "onnx_checker": "passed",
            "max_abs_diff_vs_torch": diff,
        },
        "int8": int8,
        "timings": timings,
    }


def _write_report(report: dict[str, Any], path: Path, y_te: np.ndarray, out_te: np.ndarray) -> None:
    """The JSON report at ``path`` (atomically) and its figure beside it (``.png``, named in the report)."""
    from binsight.training.report import write_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fig = path.with_suffix(".png")
    report["figure"] = str(fig)
    write_figure(report, y_te, out_te, fig)
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    staged.replace(path)


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
