"""int8 against fp32 per backbone: latency ratio at the same input size, and what int8 costs in accuracy.

For each of EfficientNet-Lite0/1/2, `train fit --int8` defaults on real photos (``street-overflow``:
``--labels`` random training photos, the set's own 264 test photos held out) and, with ``--synth``,
on the synthetic lid renders (20 bins x 20 frames: train on bins 1-10, test on 11-20). Each fit
writes the fp32 and the int8 file at the default input size of its frames. Then both files are timed
back to back: ONNX Runtime, batch 1, one thread, a real frame at the input size, the two taking
turns for ``--rounds`` rounds of 10 runs, the fastest run of each (the project's convention,
binsight.training.runtime.fastest_ms), on the wall clock and in thread CPU time (what a busy
machine's neighbours do not add to). Prints per backbone and set: fp32 ms, int8 ms, their ratio
(target <= 0.45), the int8 kernels ONNX Runtime runs, the held-out metric of both files and the
delta, and whether the fit kept int8 (its tolerance gate).

    nice .venv/bin/python bench/training_int8.py [--data /work/shared/datasets/street-overflow]
        [--labels 200] [--synth] [--backbones efficientnet_lite0 ...] [--rounds 30]
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

from binsight.modelfile import read_model_info
from binsight.training.backbone_choice import AUTO_CANDIDATES
from binsight.training.data import Dataset, load_dataset
from binsight.training.export import kernel_counts
from binsight.training.images import input_frames
from binsight.training.pipeline import fit_dataset
from binsight.training.runtime import fastest_ms
from binsight.training.synth import generate


def one(ds: Dataset, test: np.ndarray, backbone: str, out: Path, cache: Path, rounds: int) -> dict[str, Any]:
    report = fit_dataset(ds, out / f"{backbone}.onnx", backbone=backbone, int8=True, test_indices=test,
                         cache_dir=cache, progress=False)  # fmt: skip
    q = report["int8"]
    fp32_path, int8_path = Path(q["fp32_path"]), Path(q["path"])
    size = read_model_info(int8_path).input_size
    frame = input_frames([ds.samples[int(test[0])].path], size)[0][None]
    files = {"fp32": fp32_path, "int8": int8_path}
    ms = fastest_ms(files, frame, rounds=rounds, runs=10)
    cpu = fastest_ms(files, frame, rounds=rounds, runs=10, clock="thread")
    key = "mae" if ds.task == "regression" else "accuracy"
    ran = kernel_counts(int8_path)
    return {
        "backbone": backbone,
        "input_size": list(size),
        "recipe": report["features"]["chosen"],
        "fp32_ms": ms["fp32"],
        "int8_ms": ms["int8"],
        "ratio": ms["int8"] / ms["fp32"],
        "cpu_fp32_ms": cpu["fp32"],
        "cpu_int8_ms": cpu["int8"],
        "cpu_ratio": cpu["int8"] / cpu["fp32"],
        "fit_time_ratio": q["latency"]["ratio"],
        "kernels": {k: v for k, v in ran.items() if k.startswith("QLinear") or k == "Conv"},
        "metric": key,
        "fp32": report["test"][key],
        "int8": q["test"][key],
        "delta": q["delta"][key],
        "accepted": q["accepted"],
        "train": report["split"]["train"],
        "test": report["split"]["test"],
    }


def line(set_name: str, r: dict[str, Any]) -> str:
    h, w = r["input_size"]
    return (
        f"{set_name:<16} {r['backbone']:<19} {h}x{w}  fp32 {r['fp32_ms']:.2f} ms  "
        f"int8 {r['int8_ms']:.2f} ms  "
        f"ratio {r['ratio']:.3f}; thread CPU {r['cpu_fp32_ms']:.2f} / {r['cpu_int8_ms']:.2f} ms, ratio "
        f"{r['cpu_ratio']:.3f} (at fit time {r['fit_time_ratio']:.3f})  {r['metric']} fp32 {r['fp32']:.4f} "
        f"int8 {r['int8']:.4f} delta {r['delta']:+.4f}  {'int8 kept' if r['accepted'] else 'fp32 kept'}  "
        f"QLinearConv {r['kernels'].get('QLinearConv', 0)}, float Conv {r['kernels'].get('Conv', 0)}  "
        f"(train {r['train']}, test {r['test']}, {r['recipe']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/street-overflow"))
    ap.add_argument("--labels", type=int, default=200, help="training photos (0: all)")
    ap.add_argument("--synth", action="store_true", help="also the synthetic lid renders (fill, MAE)")
    ap.add_argument("--no-photos", action="store_true", help="skip the real photos")
    ap.add_argument("--backbones", nargs="+", default=list(AUTO_CANDIDATES))
    ap.add_argument("--rounds", type=int, default=30, help="timing rounds of 10 runs per file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("artifacts/bench-int8/cache"))
    ap.add_argument("--json", action="store_true", help="also print one JSON object per fit")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="binsight-bench-int8-") as tmp:
        sets: list[tuple[str, Dataset, np.ndarray]] = []
        if not args.no_photos:
            photos = Path(tmp) / "photos"
            combined_set(args.data, args.labels, args.seed, photos)
            ds = load_dataset(photos)
            test = np.flatnonzero([s.path.name.startswith("test-") for s in ds.samples])
            sets.append((args.data.name, ds, test))
        if args.synth:
            generate(Path(tmp) / "synth", bins=20, per_bin=20, seed=args.seed)
            ds = load_dataset(Path(tmp) / "synth")
            bins = np.array([int(str(s.bin_id).split("-")[1]) for s in ds.samples])
            sets.append(("synthetic lids", ds, np.flatnonzero(bins > 10)))
        for set_name, ds, test in sets:
            for backbone in args.backbones:
                out = Path(tmp) / "out" / set_name.replace(" ", "-")
                out.mkdir(parents=True, exist_ok=True)
                r = one(ds, test, backbone, out, args.cache, args.rounds)
                print(line(set_name, r), flush=True)
                if args.json:
                    print(json.dumps({"set": set_name, **r}), flush=True)


if __name__ == "__main__":
    main()
