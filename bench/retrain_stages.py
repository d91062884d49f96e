"""Re-training the last stages vs the linear head, on real photos, as the labels grow.

For each ``--labels`` count (random training images, seed ``--seed``; 0 = all of them), `train fit`
runs twice on the same split: ``--retrain off`` (the linear head on frozen features) and
``--retrain on`` (the backbone's stages after stage4 re-trained on cached maps, early layers frozen).
Both exported files are scored on the set's own test split. The ``on`` run also reports the inner
comparison that ``--retrain auto`` decides by (a fifth of the training bins held back), so the line
says what `auto` would have shipped.

    nice .venv/bin/python bench/retrain_stages.py [--data /work/shared/datasets/street-overflow]
        [--labels 200 0] [--backbone efficientnet_lite0] [--input-size 160] [--seed 0] [--json]

The default set is ``street-overflow`` (real street photos, ``clean`` vs ``dirty``); any folder with
``train/<class>/`` and ``test/<class>/`` works (see bench/backbones.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from backbones import combined_set

from binsight.training.data import load_dataset
from binsight.training.pipeline import fit_dataset


def one(data: Path, args: argparse.Namespace, cache: Path, out: Path, retrain: str) -> dict[str, Any]:
    ds = load_dataset(data)
    test = np.flatnonzero([s.path.name.startswith("test-") for s in ds.samples])
    report = fit_dataset(ds, out / f"{retrain}.onnx", backbone=args.backbone, test_indices=test,
                         seed=args.seed, cache_dir=cache, progress=False, input_size=args.input_size,
                         retrain=retrain)  # type: ignore[arg-type]  # fmt: skip
    key = "mae" if ds.task == "regression" else "accuracy"
    return {"held_out": report["test"][key], "metric": key, "retrain": report["retrain"],
            "train": report["split"]["train"], "test": report["split"]["test"],
            "fit_s": report["timings"]["total_s"],
            "retrain_s": report["timings"].get("retrain_s")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/street-overflow"))
    ap.add_argument("--labels", type=int, nargs="+", default=[200, 0])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--input-size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        cache = Path(tmp) / "cache"
        for labels in args.labels:
            data = Path(tmp) / f"set-{labels}"
            n = combined_set(args.data, labels, args.seed, data)
            off = one(data, args, cache, Path(tmp), "off")
            on = one(data, args, cache, Path(tmp), "on")
            val = on["retrain"]["validation"]
            wins = on["retrain"]["reason"] == "beat the linear head"  # what --retrain auto decides
            rows.append({"labels": n, "test": off["test"], "metric": off["metric"], "linear": off["held_out"],
                         "retrained": on["held_out"], "inner": val, "auto_retrains": wins,
                         "retrain_s": on["retrain_s"]})  # fmt: skip
            if not args.json:
                r = rows[-1]
                pct = 100.0 if r["metric"] == "accuracy" else 1.0
                print(f"{n:5d} labels  held-out {r['metric']} ({r['test']} test images): linear "
                      f"{pct * r['linear']:.1f}  retrained {pct * r['retrained']:.1f}   inner check on "
                      f"{val['images']} images: {pct * val['linear']:.1f} vs {pct * val['retrained']:.1f} "
                      f"(se {pct * val['difference_se']:.1f}) -> auto "
                      f"{'re-trains' if wins else 'keeps linear'}"
                      f"   re-training took {r['retrain_s']:.0f} s", flush=True)  # fmt: skip
    if args.json:
        print(json.dumps({"data": str(args.data), "backbone": args.backbone, "input_size": args.input_size,
                          "seed": args.seed, "runs": rows}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
