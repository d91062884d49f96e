"""Model-file inference latency: batch 1, one ONNX Runtime thread, fp32 and int8.

Times ``session.run`` on a 224x224 uint8 BGR frame (what the device feeds after its INTER_AREA
resize). Targets: fp32 <= 4.5 ms, int8 <= 2 ms. Use the models bench/training_synth.py wrote.

    nice .venv/bin/python bench/training_latency.py [--fp32 artifacts/bench-synth/model.fp32.onnx]
        [--int8 artifacts/bench-synth/model.onnx] [--n 300]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from binsight.training.runtime import session


def latency(path: str, n: int, threads: int) -> tuple[float, float, float]:
    sess = session(path, threads)
    frame = np.random.default_rng(0).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    for _ in range(20):
        sess.run(None, {"image": frame})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, {"image": frame})
        times.append((time.perf_counter() - t) * 1e3)
    a = np.asarray(times)
    return float(np.median(a)), float(np.percentile(a, 90)), float(a.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", default="artifacts/bench-synth/model.fp32.onnx")
    ap.add_argument("--int8", default="artifacts/bench-synth/model.onnx")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    for name, path in (("fp32", args.fp32), ("int8", args.int8)):
        med, p90, best = latency(path, args.n, args.threads)
        print(
            f"{name}: batch 1, {args.threads} thread(s): median {med:.2f} ms, p90 {p90:.2f}, min {best:.2f}"
        )


if __name__ == "__main__":
    main()
