"""Feature-extraction throughput through ONNX Runtime (the cached extractor graph), 2 threads.

Two figures: the graph alone (batches of 32 preprocessed 224x224 frames), and ``extract()`` end to
end on a fresh cache (JPEG read + decode + resize + graph + cache writes). Target: >= 250 images/s.

    nice .venv/bin/python bench/training_extraction.py [--images 256] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from binsight.training.backbone import load_backbone
from binsight.training.cache import FeatureCache
from binsight.training.data import load_dataset
from binsight.training.extract import _extractor_graph, extract, extractor_settings
from binsight.training.runtime import session
from binsight.training.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    backbone, spec = load_backbone()
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "cache", extractor_settings(spec))
        sess = session(_extractor_graph(backbone, spec, cache), args.threads)
        frames = np.random.default_rng(0).integers(0, 256, (args.batch, 224, 224, 3), dtype=np.uint8)
        sess.run(None, {"image": frames})
        runs = max(1, args.images // args.batch)
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {"image": frames})
        graph_rate = runs * args.batch / (time.perf_counter() - t)
        print(f"extractor graph: {graph_rate:.0f} images/s ({args.threads} threads, batch {args.batch})")

        data = Path(tmp) / "set"
        generate(data, bins=max(1, args.images // 32), per_bin=32, seed=1)
        ds = load_dataset(data)
        t = time.perf_counter()
        feats = extract(ds, backbone, spec, Path(tmp) / "cache", threads=args.threads, batch_size=args.batch)
        dt = time.perf_counter() - t
        n = feats.extracted
        print(f"extract() end to end, cold cache: {n / dt:.0f} images/s ({n} images)")
        t = time.perf_counter()
        again = extract(ds, backbone, spec, Path(tmp) / "cache", threads=args.threads, progress=False)
        rate = len(again.deep) / (time.perf_counter() - t)
        print(f"extract() warm cache: {rate:.0f} images/s, extracted {again.extracted}")


if __name__ == "__main__":
    main()
