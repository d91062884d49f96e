"""Backbones on real photos: EfficientNet-Lite0/1/2 and `--backbone auto`, CV estimate vs held-out.

For each backbone, `train fit` defaults (recipe screen, head CV, mirror augmentation for fill) on
``--labels`` training images per run, then the exported file is scored on the set's own test split.
Prints, per backbone: the extractor's latency (ONNX Runtime, batch 1, one thread, this machine, so
compare them as ratios), the grouped-CV estimate on the training labels, the held-out figure, and the
gap between the two; then what `auto` chose under ``--budget-ms`` and what it scored.

The default set is ``street-overflow`` (real street photos, ``clean`` vs ``dirty``, its own
train/test folders); any folder with ``train/<class>/`` and ``test/<class>/`` works the same way.

    nice .venv/bin/python bench/backbones.py [--data /work/shared/datasets/street-overflow]
        [--labels 200 0] [--seed 0] [--budget-ms 60]      # --labels 0 = every training image
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from binsight.training import DEFAULT_LATENCY_BUDGET_MS
from binsight.training.backbone_choice import AUTO_CANDIDATES
from binsight.training.data import load_dataset
from binsight.training.pipeline import fit_dataset

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def combined_set(root: Path, labels: int, seed: int, into: Path) -> int:
    """``into/<class>/`` with ``labels`` random training images (all for 0) and every test image.

    Test images get a ``test-`` prefix; returns how many training images went in.
    """
    rng = np.random.default_rng(seed)
    train = sorted(p for p in (root / "train").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if labels:
        train = [
            train[i] for i in sorted(rng.choice(len(train), size=min(labels, len(train)), replace=False))
        ]
    test = sorted(p for p in (root / "test").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    for prefix, files in (("train-", train), ("test-", test)):
        for f in files:
            (into / f.parent.name).mkdir(parents=True, exist_ok=True)
            (into / f.parent.name / (prefix + f.name)).symlink_to(f.resolve())
    return len(train)


def one_fit(data: Path, backbone: str, seed: int, budget_ms: float, cache: Path, out: Path) -> dict[str, Any]:
    ds = load_dataset(data)
    test = np.flatnonzero([s.path.name.startswith("test-") for s in ds.samples])
    report = fit_dataset(ds, out / f"{backbone}.onnx", backbone=backbone, test_indices=test, seed=seed,
                         cache_dir=cache, progress=False, latency_budget_ms=budget_ms)  # fmt: skip
    key = "mae" if ds.task == "regression" else "accuracy"
    gap = report["cv_vs_held_out"]
    return {
        "backbone": report["backbone"]["name"],
        "choice": report["backbone"].get("choice"),
        "metric": key,
        "cv": gap["cv_estimate"],
        "cv_se": gap["cv_standard_error"],
        "recipe": report["features"]["chosen"],
        "held_out": report["test"][key],
        "train": report["split"]["train"],
        "test": report["split"]["test"],
        "fit_s": report["timings"]["total_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/street-overflow"))
    ap.add_argument("--labels", type=int, nargs="+", default=[200, 0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget-ms", type=float, default=DEFAULT_LATENCY_BUDGET_MS)
    ap.add_argument("--cache", type=Path, default=Path("artifacts/bench-backbones/cache"))
    ap.add_argument("--json", action="store_true", help="print one JSON object per fit")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for labels in args.labels:
        with tempfile.TemporaryDirectory(prefix="binsight-bench-") as tmp:
            data, out = Path(tmp) / "set", Path(tmp) / "out"
            out.mkdir()
            n = combined_set(args.data, labels, args.seed, data)
            print(f"{args.data.name}: {n} training labels, seed {args.seed}", flush=True)
            for backbone in (*AUTO_CANDIDATES, "auto"):
                r = one_fit(data, backbone, args.seed, args.budget_ms, args.cache, out)
                if args.json:
                    print(json.dumps({"labels": n, "asked": backbone, **r}), flush=True)
                    continue
                line = (
                    f"  {backbone:<19} {r['metric']} CV {r['cv']:.4f} (SE {r['cv_se']:.4f})  "
                    f"held-out {r['held_out']:.4f}  "
                    f"gap {r['held_out'] - r['cv']:+.4f}  (train {r['train']}, test {r['test']}, "
                    f"fit {r['fit_s']:.0f} s, {r['recipe']})"
                )
                if r["choice"]:
                    lat = ", ".join(
                        f"{c['name'][-5:]} {c['latency_ms']:.1f} ms" for c in r["choice"]["candidates"]
                    )
                    budget = r["choice"]["latency_budget_ms"]
                    line += f"\n  {'':<19} chose {r['backbone']} under {budget:g} ms ({lat})"
                print(line, flush=True)


if __name__ == "__main__":
    main()
