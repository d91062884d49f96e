"""Capture-to-PUBACK latency on loopback: from asking the camera for a frame to the broker's PUBACK.

An in-process agent (image folder, 640x480 frames, burst 1) against a private Mosquitto; each
reading is timed at three points: capture start, stored in the outbox (fsynced), PUBACK received
(its outbox row deleted).

    nice .venv/bin/python bench/device_latency.py [--model model.onnx] [--n 200] [--release]

``--release`` starts the agent as ``device run`` does with ``[inference] release_startup_pages``
(library pages unmapped after start-up: the first capture faults back in what it needs).
"""

from __future__ import annotations

import argparse
import time

from device_common import Broker, images, model_or_tiny, percentiles, tempdir

from binsight.device.agent import Agent
from binsight.device.config import DeviceConfig
from binsight.device.memory import tune_malloc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--release", action="store_true", help="start as device run does: release start-up pages")
    args = ap.parse_args()
    tmp = tempdir()
    model, desc = model_or_tiny(args.model, tmp)
    broker = Broker(tmp)
    cfg = DeviceConfig.model_validate(
        {
            "bin_id": "bench-lat",
            "model": str(model),
            "camera": {"source": str(images(tmp)), "interval_s": args.interval, "jitter": 0.0, "burst": 1},
            "mqtt": {"port": broker.port},
            "outbox": {"path": str(tmp / "o.db")},
            "labelling": {"every_n": 0, "unsure": False},
        }
    )
    agent = Agent(cfg)
    started: dict[int, float] = {}
    stored: dict[int, float] = {}
    acked: dict[int, float] = {}
    pending_t0: list[float] = []
    capture, add_reading, delete = agent.capture, agent.outbox.add_reading, agent.outbox.delete

    def timed_capture():  # type: ignore[no-untyped-def]
        pending_t0.append(time.perf_counter())
        return capture()

    def timed_add(make):  # type: ignore[no-untyped-def]
        reading = add_reading(make)
        row = agent.outbox.max_id()
        started[row], stored[row] = pending_t0.pop(), time.perf_counter()
        return reading

    def timed_delete(ids):  # type: ignore[no-untyped-def]
        ids = list(ids)
        t = time.perf_counter()
        for i in ids:
            acked.setdefault(i, t)
        delete(ids)

    agent.capture, agent.outbox.add_reading, agent.outbox.delete = timed_capture, timed_add, timed_delete  # type: ignore[method-assign]
    tune_malloc()
    agent.start(release_memory=args.release)
    try:
        deadline = time.monotonic() + args.n * args.interval * 3 + 30
        while len([r for r in acked if r in started]) < args.n and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        agent.stop()
        broker.stop()
    done = [r for r in started if r in acked]
    rows = done[5:]  # skip the first few (connect, warm caches)
    print(f"model: {desc}; start-up pages released: {'yes' if args.release else 'no'}")
    if done:
        first = done[0]
        print(f"first capture -> stored: {(stored[first] - started[first]) * 1e3:.1f} ms")
    spans = [
        ("capture -> stored (read frame, gate, infer, fsync)", started, stored),
        ("stored -> PUBACK (publish, broker, ack, loopback)", stored, acked),
        ("capture -> PUBACK", started, acked),
    ]
    for name, a, b in spans:
        print(f"{name:52s} {percentiles([(b[r] - a[r]) * 1e3 for r in rows])} ms")


if __name__ == "__main__":
    main()
