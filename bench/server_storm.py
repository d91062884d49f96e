"""Reconnect storm: 1,000 devices come back at once, each replaying 100 buffered readings.

Every device is its own MQTT connection (paho, QoS 1, ``historical: true``), spread over worker
processes; all start on one signal. Reported: seconds until the broker acknowledged every
publish, seconds until the server stored every reading (the drain time), and zero loss
(stored == distinct (bin_id, seq) == devices x readings).
Run: ``nice .venv/bin/python bench/server_storm.py [--devices 1000] [--per-device 100] [--db sqlite]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from multiprocessing.synchronize import Event

from server_common import (
    client,
    cpu_seconds,
    database,
    load_average,
    mosquitto,
    payload,
    server,
    stored,
    tmpdir,
    wait_stored,
)


def _devices(port: int, ids: list[str], per_device: int, go: Event, done: mp.Queue) -> None:  # type: ignore[type-arg]
    clients = []
    for d in ids:
        c = client(port, d)
        c.will_set(f"binsight/{d}/available", "offline", qos=1, retain=True)
        clients.append(c)
    go.wait()
    t0 = time.time()
    base = int(t0 * 1000) - per_device * 600_000
    infos = []
    for c, d in zip(clients, ids, strict=True):
        c.loop_start()
        c.publish(f"binsight/{d}/available", "online", qos=1, retain=True)
        for seq in range(per_device):
            infos.append(
                c.publish(f"binsight/{d}/reading", payload(d, seq, base + seq * 600_000, True), qos=1)
            )
    for i in infos:
        i.wait_for_publish(300)
    done.put(time.time() - t0)
    for c in clients:
        c.disconnect()
        c.loop_stop()


def run(kind: str, n_devices: int, per_device: int, workers: int) -> dict[str, object]:
    n = n_devices * per_device
    ids = [f"storm-{i:05d}" for i in range(n_devices)]
    work = tmpdir()
    ctx = mp.get_context("spawn")
    with mosquitto(work) as port, database(kind, work) as url, server(url, port, work) as srv:
        go = ctx.Event()
        done: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        procs = [
            ctx.Process(target=_devices, args=(port, ids[w::workers], per_device, go, done))
            for w in range(workers)
        ]
        for p in procs:
            p.start()
        time.sleep(5 + n_devices / 200)  # let every worker open its connections before the signal
        load = load_average()
        c0 = cpu_seconds(srv.pid)
        t0 = time.perf_counter()
        go.set()
        drain = wait_stored(url, n, 900)
        cpu = cpu_seconds(srv.pid) - c0
        acked = max(done.get(timeout=300) for _ in procs)
        for p in procs:
            p.join(60)
        rows, distinct = stored(url)
    return {
        "db": kind,
        "devices": n_devices,
        "per_device": per_device,
        "readings": n,
        "broker_acked_s": round(acked, 2),
        "drain_s": round(drain, 2),
        "readings_per_s": round(n / drain),
        "server_cpu_s": round(cpu, 2),
        "readings_per_server_cpu_s": round(n / cpu),
        "load_average_1m": round(load, 1),
        "stored": rows,
        "distinct": distinct,
        "lost": n - distinct,
        "doubled": rows - distinct,
        "elapsed_s": round(time.perf_counter() - t0, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--per-device", type=int, default=100)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--db", default="sqlite")
    args = ap.parse_args()
    for kind in args.db.split(","):
        print(json.dumps(run(kind, args.devices, args.per_device, args.workers)), flush=True)


if __name__ == "__main__":
    main()
