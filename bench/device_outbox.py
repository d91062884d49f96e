"""Outbox throughput: readings/s written (each its own fsynced transaction) and replayed to a broker.

Writes ``--n`` readings with the broker away, then starts the agent's MQTT link against a private
Mosquitto and times the replay until the outbox is empty (every row PUBACKed and deleted).

    nice .venv/bin/python bench/device_outbox.py [--n 5000] [--inflight 100]
"""

from __future__ import annotations

import argparse
import time

from device_common import Broker, tempdir

from binsight.device.config import MqttConfig
from binsight.device.link import Link
from binsight.device.outbox import Outbox
from binsight.protocol import Reading


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--backlog", type=int, default=0, help="replay this many (filled fast, unsynced)")
    args = ap.parse_args()
    tmp = tempdir()
    total = max(args.n, args.backlog)
    box = Outbox(tmp / "o.db", {"reading": total + 10})
    ts = int(time.time() * 1000)

    def make(seq: int) -> Reading:
        return Reading(bin_id="bench-ob", seq=seq, ts=ts + seq, fill=0.42, quality="ok", model="bench")

    t0 = time.perf_counter()
    for _ in range(args.n):
        box.add_reading(make)
    write_s = time.perf_counter() - t0
    # Only the timed writes above are fsynced; a large backlog for the replay is filled quickly.
    box._db.execute("PRAGMA synchronous=OFF")
    for _ in range(total - args.n):
        box.add_reading(make)
    box._db.execute("PRAGMA synchronous=FULL")
    broker = Broker(tmp)
    link = Link(MqttConfig(port=broker.port, inflight=args.inflight), "bench-ob", box)
    t1 = time.perf_counter()
    link.start()
    try:
        while box.depth() > 0 and time.perf_counter() - t1 < 600:
            time.sleep(0.01)
        replay_s = time.perf_counter() - t1
    finally:
        link.stop()
        broker.stop()
    print(f"written: {args.n} readings in {write_s:.2f} s = {args.n / write_s:.0f} readings/s "
          f"({write_s / args.n * 1e3:.2f} ms each, WAL + synchronous=FULL)")  # fmt: skip
    print(f"replayed: {total} readings in {replay_s:.2f} s = {total / replay_s:.0f} readings/s "
          f"(connect included; inflight {args.inflight}; acked {link.counters.acked})")  # fmt: skip


if __name__ == "__main__":
    main()
