"""ONNX Runtime sessions configured the way this project measured best on small CPUs."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = ["fastest_ms", "session"]


def session(model: str | Path | bytes, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session with ``threads`` intra-op threads (default: all cores) and no spinning.

    Spinning worker threads on a busy 2-core machine measured 2x slower than one thread, so
    spinning is off; one inter-op thread and sequential execution keep the thread count honest.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads or os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def fastest_ms(
    models: Mapping[str, str | Path | bytes],
    frame: np.ndarray,
    *,
    rounds: int = 5,
    runs: int = 10,
    warmup: int = 5,
    threads: int = 1,
    clock: str = "wall",
) -> dict[str, float]:
    """The fastest ``session.run`` (ms) of each model on ``frame`` (batch 1), the models taking turns.

    The project's latency convention: ``threads`` intra-op threads (1), the minimum over
    ``rounds`` x ``runs`` timed runs, not the median (on a busy machine every disturbance only adds
    time), and the models alternate round by round, so a neighbour's burst falls on all of them and
    their ratio is measured back to back. ``clock="thread"`` times the calling thread's CPU time
    instead of the wall clock: with one thread ONNX Runtime runs every kernel on the caller, so
    that is the run's own compute, without the time the scheduler gave to others (on 2 cores under
    load 20, fits measured wall-clock int8/fp32 ratios of 0.14 for files whose ratio is 0.44).
    """
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock {clock!r}: want 'wall' or 'thread'")
    if clock == "thread" and threads != 1:
        raise ValueError("clock='thread' times the calling thread: it needs threads=1")
    now = time.perf_counter if clock == "wall" else time.thread_time
    sessions = {name: session(model, threads) for name, model in models.items()}
    feeds = {name: {s.get_inputs()[0].name: frame} for name, s in sessions.items()}
    for name, s in sessions.items():
        for _ in range(warmup):
            s.run(None, feeds[name])
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(rounds):
        for name, s in sessions.items():
            for _ in range(runs):
                t = now()
                s.run(None, feeds[name])
                best[name] = min(best[name], (now() - t) * 1e3)
    return best
