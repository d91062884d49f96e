"""Feature-extraction throughput through ONNX Runtime (the cached extractor graph), 2 threads.

For each input size: the graph alone (``--threads`` workers sharing one single-threaded session, as
``extract()`` runs it, batches of ``--batch`` preprocessed frames), and ``extract()`` end to end on a
fresh cache (JPEG read + decode + resize + graph + cache writes, 320x240 synthetic frames).
Target: >= 250 images/s. On a shared machine run it as ``chrt -f 50`` (root) or when idle.

    nice .venv/bin/python bench/training_extraction.py [--images 256] [--threads 2]
        [--sizes 224,160,128x160,128]   (PX = PXxPX; 128x160 is what 160 gives 4:3 frames)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from binsight.training import parse_input_size
from binsight.training.backbone import load_backbone
from binsight.training.cache import FeatureCache
from binsight.training.data import load_dataset
from binsight.training.extract import extract, extractor_graph, extractor_settings
from binsight.training.runtime import session
from binsight.training.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--sizes", default="224,160,128x160,128", help="input sizes (PX or HxW), comma-separated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "set"
        generate(data, bins=max(1, args.images // 32), per_bin=32, seed=1)
        for size in (parse_input_size(s) for s in args.sizes.split(",")):
            backbone, spec = load_backbone(input_size=size)
            h, w = spec.input_size
            cache_dir = Path(tmp) / f"cache{h}x{w}"
            sess = session(
                extractor_graph(backbone, spec, FeatureCache(cache_dir, extractor_settings(spec))), 1
            )
            frames = np.random.default_rng(0).integers(0, 256, (args.batch, h, w, 3), dtype=np.uint8)
            runs = max(args.threads, args.images // args.batch)

            def run(_: int, sess: object = sess, frames: np.ndarray = frames) -> None:
                sess.run(None, {"image": frames})  # type: ignore[attr-defined]

            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(run, range(args.threads)))  # warm-up
                t = time.perf_counter()
                list(pool.map(run, range(runs)))
                graph_rate = runs * args.batch / (time.perf_counter() - t)
            ds = load_dataset(data)
            t = time.perf_counter()
            feats = extract(ds, backbone, spec, cache_dir, threads=args.threads, batch_size=args.batch)
            cold = feats.extracted / (time.perf_counter() - t)
            t = time.perf_counter()
            again = extract(ds, backbone, spec, cache_dir, threads=args.threads, progress=False)
            warm = len(again.deep) / (time.perf_counter() - t)
            print(
                f"input {h}x{w}: graph {graph_rate:.0f} images/s, extract() cold cache "
                f"{cold:.0f} images/s ({feats.extracted} images), warm cache {warm:.0f} images/s "
                f"({args.threads} threads, batch {args.batch})",
                flush=True,
            )


if __name__ == "__main__":
    main()
