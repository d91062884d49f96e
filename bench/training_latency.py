"""Model-file inference latency: batch 1, one ONNX Runtime thread, fp32 and int8.

Times ``session.run`` on a uint8 BGR frame at the model's own input size (what the device feeds
after its INTER_AREA resize). Targets: fp32 <= 4.5 ms, int8 <= 2 ms. Also prints the backbone's
multiply-accumulates and the arithmetic rate they imply, next to a single-thread float32 matrix
product (numpy's BLAS) on this CPU: the rate no convolution here will beat, hence a floor per size.
Use the models bench/training_synth.py wrote; on a shared machine run it as ``chrt -f 50`` (root).
The two models take turns for ``--rounds`` rounds of ``--n`` runs; besides the median over all runs
it prints the quietest round's median, since a virtual machine's neighbours come and go (the matrix
product's rate, printed first, tells how busy the host is: ~100-107 GFLOP/s when quiet here).

    nice .venv/bin/python bench/training_latency.py [--fp32 artifacts/bench-synth/model.fp32.onnx]
        [--int8 artifacts/bench-synth/model.onnx] [--rounds 10] [--n 50]
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


def latency(sessions: dict[str, ort.InferenceSession], rounds: int, n: int) -> dict[str, np.ndarray]:
    """Per model, ``rounds`` x ``n`` timed runs (ms), the models taking turns round by round.

    Taking turns spreads a noisy neighbour's bursts over every model instead of over whichever
    happened to run then.
    """
    frames = {}
    for name, sess in sessions.items():
        h, w = input_size(sess)
        frames[name] = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        for _ in range(20):
            sess.run(None, {"image": frames[name]})
    times: dict[str, list[list[float]]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, sess in sessions.items():
            feed = {"image": frames[name]}
            one = []
            for _ in range(n):
                t = time.perf_counter()
                sess.run(None, feed)
                one.append((time.perf_counter() - t) * 1e3)
            times[name].append(one)
    return {name: np.asarray(t) for name, t in times.items()}


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
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=50, help="runs per model per round")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    peak = sgemm_gflops()
    print(f"float32 matrix product, 1 thread: {peak:.1f} GFLOP/s")
    paths = {"fp32": args.fp32, "int8": args.int8}
    sessions = {name: session(path, args.threads) for name, path in paths.items()}
    runs = latency(sessions, args.rounds, args.n)
    for name, t in runs.items():
        size = input_size(sessions[name])
        med = float(np.median(t))
        quiet = float(np.median(t, axis=1).min())
        line = (
            f"{name} ({size[0]}x{size[1]}): batch 1, {args.threads} thread(s), {t.size} runs: "
            f"median {med:.2f} ms, p90 {np.percentile(t, 90):.2f}, quietest round's median {quiet:.2f}, "
            f"min {t.min():.2f}"
        )
        if name == "fp32":
            macs = conv_macs(paths[name], size)
            rate = 2 * macs / (t.min() / 1e3) / 1e9
            floor = 2 * macs / peak / 1e6
            line += (
                f"; {macs / 1e9:.3f} GMAC -> {rate:.0f} GFLOP/s at the min; "
                f"at the matrix-product rate it would take {floor:.2f} ms"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
