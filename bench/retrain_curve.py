"""The learning curve of the live retraining loop: held-out MAE as human labels accumulate.

A synthetic fleet (``--bins`` lid cameras, ``--per-bin`` captures each, seed ``--seed``) sends its
images for labelling in capture-time order, round robin over the cameras, as periodic sampling
does (``--order random``: shuffled, as ideal coverage sampling would). ``--held-out`` whole bins
are the fixed held-out label set (never trained on, as the promotion gate's comparison keeps bins
apart). After each step of ``--steps`` labels the loop
retrains (``fit_dataset``, features from the cache, the exported ONNX file evaluated with ONNX
Runtime on the held-out bins) and the gate compares the candidate with the active model on those
same labels: promoted only when not worse. Prints one row per step and a JSON summary.

    nice .venv/bin/python bench/retrain_curve.py [--bins 12] [--per-bin 30] [--held-out 3] \\
        [--steps 10,20,30,50,80,120,180,270] [--order capture|random] [--out DIR] [--input-size 160|HxW]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from binsight.training import DEFAULT_INPUT_SIZE, parse_input_size
from binsight.training.backbone import load_backbone
from binsight.training.data import Dataset, load_dataset
from binsight.training.pipeline import fit_dataset, resolve_input_size
from binsight.training.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=12)
    ap.add_argument("--per-bin", type=int, default=30)
    ap.add_argument("--held-out", type=int, default=3)
    ap.add_argument("--steps", default="10,20,30,50,80,120,180,270")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--input-size",
        type=parse_input_size,
        default=DEFAULT_INPUT_SIZE,
        help="longer side (the shorter follows the frames' aspect) or HxW",
    )
    ap.add_argument("--out", default="artifacts/bench-retrain")
    ap.add_argument(
        "--order",
        choices=("capture", "random"),
        default="capture",
        help="labels arrive in capture order (periodic sampling) or shuffled (ideal coverage sampling)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    generate(out / "data", args.bins, args.per_bin, args.seed)
    full = load_dataset(out / "data")
    held_bins = sorted({str(s.bin_id) for s in full.samples})[-args.held_out :]
    held = [s for s in full.samples if s.bin_id in held_bins]
    # Labels arrive in capture order across the fleet (the generator spaces captures 6 h apart).
    pool = sorted(
        (s for s in full.samples if s.bin_id not in held_bins), key=lambda s: (s.captured_at or "", s.bin_id)
    )
    if args.order == "random":
        pool = [pool[i] for i in np.random.default_rng(args.seed).permutation(len(pool))]
    steps = [n for n in (int(x) for x in args.steps.split(",")) if n <= len(pool)]
    # The input size `train fit --from-server` would use: the default longer side at the frames' aspect.
    backbone = load_backbone("efficientnet_lite0", input_size=resolve_input_size(args.input_size, full))
    cache = out / "features"
    y_held = np.array([s.fill for s in held], dtype=np.float64)
    mean_mae: list[float] = []
    rows: list[dict[str, Any]] = []
    active_mae: float | None = None
    print(
        f"held-out: {len(held)} labels from bins {', '.join(held_bins)}; pool {len(pool)} labels "
        f"arriving in {args.order} order; input {backbone[1].input_size[0]}x{backbone[1].input_size[1]}"
    )
    print(
        f"{'labels':>7} {'bins':>5} {'MAE':>7} {'RMSE':>7} {'mean-baseline':>14} {'gate':>9} "
        f"{'active MAE':>11} {'fit s':>6}"
    )
    for n in steps:
        train = pool[:n]
        ds = Dataset(root=full.root, task="regression", samples=[*train, *held])
        t = time.perf_counter()
        report = fit_dataset(
            ds,
            out / f"model-{n}.onnx",
            backbone=backbone,
            cache_dir=cache,
            test_indices=np.arange(n, n + len(held)),
            seed=args.seed,
            progress=False,
        )
        secs = time.perf_counter() - t
        mae = float(report["test"]["mae"])
        base = float(np.mean(np.abs(y_held - np.mean([s.fill for s in train]))))
        mean_mae.append(base)
        promoted = active_mae is None or mae <= active_mae
        if promoted:
            active_mae = mae
        row = {
            "labels": n,
            "bins": len({s.bin_id for s in train}),
            "mae": round(mae, 4),
            "rmse": round(float(report["test"]["rmse"]), 4),
            "mean_baseline_mae": round(base, 4),
            "promoted": promoted,
            "active_mae": round(active_mae, 4),
            "fit_s": round(secs, 1),
            "backbone_runs": report["features"]["extraction"]["extracted"],
        }
        rows.append(row)
        print(
            f"{n:>7} {row['bins']:>5} {mae:>7.4f} {row['rmse']:>7.4f} {base:>14.4f} "
            f"{'promoted' if promoted else 'refused':>9} {active_mae:>11.4f} {secs:>6.1f}"
        )
    print(json.dumps({"held_out_bins": held_bins, "held_out_labels": len(held), "curve": rows}))


if __name__ == "__main__":
    main()
