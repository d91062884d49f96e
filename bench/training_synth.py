"""Synthetic lid-camera benchmark: train on 10 bins' images (200 labels), test on 10 other bins.

Renders 20 bins x 20 frames (seed 0), fits the default pipeline (EfficientNet-Lite0 features,
candidates by grouped CV, ridge head) on bins 1-10 only and evaluates the exported model file
(fp32 and int8, ONNX Runtime) on bins 11-20. Target: MAE <= 0.05, int8 within 0.01 of fp32.
Also writes the model files, report and figure to --out for the latency benchmark.

    nice .venv/bin/python bench/training_synth.py [--out artifacts/bench-synth] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from binsight.training import DEFAULT_INPUT_SIZE, parse_input_size
from binsight.training.data import load_dataset
from binsight.training.pipeline import fit_dataset
from binsight.training.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="artifacts/bench-synth")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="feature cache (default: BINSIGHT_CACHE_DIR or ~/.cache)")
    ap.add_argument(
        "--input-size",
        type=parse_input_size,
        default=DEFAULT_INPUT_SIZE,
        help="longer side (the shorter follows the frames' aspect) or HxW",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    generate(data, bins=20, per_bin=20, seed=args.seed)
    ds = load_dataset(data)
    bins = np.array([int(str(s.bin_id).split("-")[1]) for s in ds.samples])
    test = np.flatnonzero(bins > 10)
    report = fit_dataset(
        ds,
        out / "model.onnx",
        int8=True,
        report_path=out / "report.json",
        cache_dir=args.cache,
        test_indices=test,
        seed=args.seed,
        threads=2,
        input_size=args.input_size,
    )
    fp32, int8 = report["test"], report["int8"]["test"]
    print(
        json.dumps(
            {"candidates": {c["recipe"]: round(c["cv_score"], 4) for c in report["features"]["candidates"]}}
        )
    )
    print(
        f"train images: {report['split']['train']} (bins 1-10), "
        f"test images: {report['split']['test']} (bins 11-20)"
    )
    print(f"features: {report['features']['chosen']}; head: {json.dumps(report['head'])[:120]}")
    print(f"fp32 test MAE: {fp32['mae']:.4f}  RMSE: {fp32['rmse']:.4f}  R2: {fp32['r2']:.3f}")
    print(f"int8 test MAE: {int8['mae']:.4f}  (delta {report['int8']['delta']['mae']:+.4f})")
    for name, m in report["baselines"].items():
        print(f"baseline {name}: MAE {m['mae']:.4f}")
    print("learning curve:", ", ".join(f"{p['n']}: {p['test']['mae']:.4f}" for p in report["learning_curve"]))
    print(f"report: {out / 'report.json'}; models: {report['export']['path']}, {report['int8']['path']}")


if __name__ == "__main__":
    main()
