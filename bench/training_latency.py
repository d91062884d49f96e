"""Model-file inference latency: batch 1, one ONNX Runtime thread, fp32 and int8.

Times ``session.run`` on a uint8 BGR frame at the model's own input size (what the device feeds
after its INTER_AREA resize). Targets: fp32 <= 4.5 ms, int8 <= 2 ms. Also prints the backbone's
multiply-accumulates and the arithmetic rate they imply, next to a single-thread float32 matrix
product (numpy's BLAS) on this CPU: the rate no convolution here will beat, hence a floor per size.
Use the models bench/training_synth.py wrote; on a shared machine run it as ``chrt -f 50`` (root).

    nice .venv/bin/python bench/training_latency.py [--fp32 artifacts/bench-synth/model.fp32.onnx]
        [--int8 artifacts/bench-synth/model.onnx] [--n 300]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort

from binsight.training.runtime import session


def input_size(sess: ort.InferenceSession) -> tuple[int, int]:
    h, w = json.loads(sess.get_modelmeta().custom_metadata_map["binsight.input_size"])
    return int(h), int(w)


def latency(sess: ort.InferenceSession, n: int) -> tuple[float, float, float]:
    h, w = input_size(sess)
    frame = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    for _ in range(20):
        sess.run(None, {"image": frame})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, {"image": frame})
        times.append((time.perf_counter() - t) * 1e3)
    a = np.asarray(times)
    return float(np.median(a)), float(np.percentile(a, 90)), float(a.min())


def conv_macs(path: str, size: tuple[int, int]) -> float:
    """Multiply-accumulates of every Conv of a float model at ``size`` (shapes from one ORT run)."""
    model = onnx.load(path)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    for n in convs:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None)
        )
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    outs = sess.run([n.output[0] for n in convs], {"image": np.zeros((1, *size, 3), np.uint8)})
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    return float(
        sum(np.prod(o.shape[1:]) * np.prod(dims[n.input[1]][1:]) for n, o in zip(convs, outs, strict=True))
    )


def sgemm_gflops() -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    with threadpool_limits(1):
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", default="artifacts/bench-synth/model.fp32.onnx")
    ap.add_argument("--int8", default="artifacts/bench-synth/model.onnx")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    peak = sgemm_gflops()
    print(f"float32 matrix product, 1 thread: {peak:.1f} GFLOP/s")
    for name, path in (("fp32", args.fp32), ("int8", args.int8)):
        sess = session(path, args.threads)
        size = input_size(sess)
        med, p90, best = latency(sess, args.n)
        line = (
            f"{name} ({size[0]}x{size[1]}): batch 1, {args.threads} thread(s): "
            f"median {med:.2f} ms, p90 {p90:.2f}, min {best:.2f}"
        )
        if name == "fp32":
            macs = conv_macs(path, size)
            rate = 2 * macs / (best / 1e3) / 1e9
            floor = 2 * macs / peak / 1e6
            line += (
                f"; {macs / 1e9:.3f} GMAC -> {rate:.0f} GFLOP/s at the min; "
                f"at the matrix-product rate it would take {floor:.2f} ms"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
