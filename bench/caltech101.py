"""Caltech 101 (development subset, real photos, CC BY 4.0): 30 training images per class.

The standard transfer-learning protocol: 30 random images of each class train the head (feature
candidates and C chosen by CV on those), every other image tests it. Reports the exported model
file's accuracy and macro F1 (ONNX Runtime) and the baselines.

    nice .venv/bin/python bench/caltech101.py [--data /work/shared/datasets/caltech101-dev] [--per-class 30]
        [--input-size 160|HxW]
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from binsight.training import DEFAULT_INPUT_SIZE, parse_input_size
from binsight.training.data import load_dataset
from binsight.training.pipeline import fit_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/shared/datasets/caltech101-dev")
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--out", default="artifacts/bench-caltech101")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument(
        "--input-size",
        type=parse_input_size,
        default=DEFAULT_INPUT_SIZE,
        help="longer side (the shorter follows the frames' aspect) or HxW",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ds = load_dataset(args.data)
    y = ds.targets()
    rng = np.random.default_rng(args.seed)
    test = []
    for k in range(len(ds.classes)):
        idx = rng.permutation(np.flatnonzero(y == k))
        test.extend(idx[args.per_class :].tolist())
    out = Path(args.out)
    report = fit_dataset(
        ds,
        out / "caltech101.onnx",
        backbone=args.backbone,
        input_size=args.input_size,
        report_path=out / "report.json",
        test_indices=np.asarray(test),
        seed=args.seed,
        threads=2,
    )
    t = report["test"]
    print(f"input size: {report['backbone']['input_size']}")
    print(f"classes: {len(ds.classes)}, train: {report['split']['train']}, test: {report['split']['test']}")
    print(
        json.dumps(
            {"candidates": {c["recipe"]: round(c["cv_score"], 4) for c in report["features"]["candidates"]}}
        )
    )
    print(f"features: {report['features']['chosen']}; head: {json.dumps(report['head'])[:160]}")
    print(f"test accuracy: {t['accuracy']:.4f}  macro F1: {t['macro_f1']:.4f}")
    for name, m in report["baselines"].items():
        print(f"baseline {name}: accuracy {m['accuracy']:.4f}")
    print(
        "learning curve:",
        ", ".join(f"{p['n']}: {p['test']['accuracy']:.3f}" for p in report["learning_curve"]),
    )
    print(f"timings: {json.dumps({k: round(v, 1) for k, v in report['timings'].items()})}")


if __name__ == "__main__":
    main()
