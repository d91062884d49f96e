"""The class head beside fill on real photos: street-overflow's classes next to synthetic fill labels.

``street-overflow`` has class labels only (``clean`` vs ``dirty`` around the container), no fill. To
check the class head of a *two-head* model on a real class task, this builds one labelled set with
both kinds of label: the street photos with their class (no fill) and a synthetic lid-camera set
with its fill (no class), each image its own bin for the street photos, whole synthetic bins held
out. The held-out split is fixed: street-overflow's own test folder plus the held-out synthetic
bins. Two fits on the same features (one cache):

* ``class only``: the street photos alone, as a class model (`train fit` on a class set);
* ``two heads``: the combined set, a fill model with a class head;

and prints each one's held-out accuracy on the same 264 street test photos (and the two-head
model's fill MAE on the held-out synthetic bins). The class head is chosen by the same rule on the
same rows in both fits, so the two accuracies should agree: the fill head beside it costs the
class head nothing.

    nice .venv/bin/python bench/class_head.py [--labels 0] [--seed 0]   # 0 = every training image
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from binsight.training.data import load_dataset
from binsight.training.pipeline import fit_dataset
from binsight.training.synth import generate

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def build(root: Path, labels: int, seed: int, into: Path, synth_bins: int) -> tuple[int, int]:
    """``into/labels.csv`` (image, fill, label, bin_id): street photos with a class, synthetic with fill.

    Street photos have no bin id (each is split on its own); the test folder's names start with
    ``test-``. Returns (street training photos, synthetic images).
    """
    rng = np.random.default_rng(seed)
    train = sorted(p for p in (root / "train").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if labels:
        train = [
            train[i] for i in sorted(rng.choice(len(train), size=min(labels, len(train)), replace=False))
        ]
    test = sorted(p for p in (root / "test").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rows: list[dict[str, str]] = []
    (into / "street").mkdir(parents=True)
    for prefix, files in (("train-", train), ("test-", test)):
        for f in files:
            name = f"street/{prefix}{f.parent.name}-{f.name}"
            shutil.copy(f, into / name)
            rows.append({"image": name, "fill": "", "label": f.parent.name, "bin_id": ""})
    generate(into / "synth", synth_bins, 8, seed=seed)
    with (into / "synth" / "labels.csv").open(newline="") as fh:
        synth = list(csv.DictReader(fh))
    for r in synth:
        rows.append({"image": f"synth/{r['image']}", "fill": r["fill"], "label": "", "bin_id": r["bin_id"]})
    with (into / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["image", "fill", "label", "bin_id"])
        w.writeheader()
        w.writerows(rows)
    return len(train), len(synth)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/datasets/street-overflow"))
    ap.add_argument("--labels", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synth-bins", type=int, default=10)
    ap.add_argument("--cache", type=Path, default=Path("artifacts/bench-class-head/cache"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="binsight-bench-") as tmp:
        data, out = Path(tmp) / "set", Path(tmp) / "out"
        out.mkdir()
        n_street, n_synth = build(args.data, args.labels, args.seed, data, args.synth_bins)
        both = load_dataset(data)
        held_bins = {f"bin-{k:04d}" for k in range(1, 1 + max(1, args.synth_bins // 5))}
        test = np.flatnonzero(
            [s.path.name.startswith("test-") or (s.bin_id in held_bins) for s in both.samples]
        )
        print(
            f"{args.data.name}: {n_street} training photos; {n_synth} synthetic fill images, seed {args.seed}"
        )
        _, street = both.head_parts()
        assert street.origin is not None
        street_test = np.flatnonzero([s.path.name.startswith("test-") for s in street.samples])
        alone = fit_dataset(street, out / "class.onnx", test_indices=street_test, seed=args.seed,
                            cache_dir=args.cache, progress=False)  # fmt: skip
        print(f"  class only: held-out accuracy {alone['test']['accuracy']:.4f} "
              f"(n {alone['test']['n']}, {alone['features']['chosen']})")  # fmt: skip
        two = fit_dataset(load_dataset(data), out / "two.onnx", test_indices=test, seed=args.seed,
                          cache_dir=args.cache, progress=False)  # fmt: skip
        ch = two["class_head"]
        print(f"  two heads:  class head held-out accuracy {ch['test_metrics']['accuracy']:.4f} "
              f"(n {ch['test']}, {ch['features']['chosen']}); fill MAE {two['test']['mae']:.4f} "
              f"on {two['split']['test']} held-out synthetic images; "
              f"majority class {ch['baselines']['majority_class']['accuracy']:.4f}")  # fmt: skip


if __name__ == "__main__":
    main()
