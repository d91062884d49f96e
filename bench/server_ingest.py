"""Sustained ingest through Mosquitto into SQLite and PostgreSQL, with zero loss.

Two measurements per database, each with a fresh database and broker:

* ``live``: publishers (separate processes) send N readings while the server ingests; the rate is
  N / (time from the first publish to the last reading committed).
* ``backlog``: N readings wait in the broker for the server's persistent session (server down),
  then the server starts; the rate is N / drain time: the server's own ceiling, publisher excluded.

Zero loss is checked: stored rows == distinct (bin_id, seq) == N.
Run: ``nice .venv/bin/python bench/server_ingest.py [--n 100000] [--bins 1000] [--db sqlite,postgres]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time

from server_common import (
    cpu_seconds,
    database,
    load_average,
    mosquitto,
    publish_range,
    server,
    stored,
    tmpdir,
    wait_stored,
)


def _publish_parallel(port: int, bins: list[str], per_bin: int, publishers: int) -> float:
    chunks = [bins[i::publishers] for i in range(publishers)]
    with mp.get_context("spawn").Pool(publishers) as pool:
        t0 = time.perf_counter()
        pool.starmap(publish_range, [(port, c, per_bin, f"pub-{i}") for i, c in enumerate(chunks)])
        return time.perf_counter() - t0


def run(kind: str, n: int, n_bins: int, publishers: int, modes: list[str]) -> dict[str, object]:
    bins = [f"bench-{i:05d}" for i in range(n_bins)]
    per_bin = n // n_bins
    n = per_bin * n_bins
    out: dict[str, object] = {
        "db": kind,
        "readings": n,
        "bins": n_bins,
        "publishers": publishers,
        "load_average_1m_at_start": round(load_average(), 1),
    }
    if "live" in modes:
        out["live"] = _live(kind, n, bins, per_bin, publishers)
    if "backlog" in modes:
        out["backlog"] = _backlog(kind, n, bins, per_bin, publishers)
    return out


def _live(kind: str, n: int, bins: list[str], per_bin: int, publishers: int) -> dict[str, object]:
    work = tmpdir()
    with mosquitto(work) as port, database(kind, work) as url, server(url, port, work) as proc:
        c0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        pub_s = _publish_parallel(port, bins, per_bin, publishers)
        wait_stored(url, n, 600)
        total = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - c0
        rows, distinct = stored(url)
        return {
            "publish_s": round(pub_s, 2),
            "stored_s": round(total, 2),
            "readings_per_s": round(n / total),
            "server_cpu_s": round(cpu, 2),
            "readings_per_server_cpu_s": round(n / cpu),
            "stored": rows,
            "distinct": distinct,
            "lost": n - distinct,
            "doubled": rows - distinct,
        }


def _backlog(kind: str, n: int, bins: list[str], per_bin: int, publishers: int) -> dict[str, object]:
    """Create the persistent session, stop the server, queue N in the broker, start it and drain."""
    work = tmpdir()
    with mosquitto(work) as port, database(kind, work) as url:
        with server(url, port, work):
            pass
        _publish_parallel(port, bins, per_bin, publishers)
        with server(url, port, work) as proc:
            c0 = cpu_seconds(proc.pid)
            drain = wait_stored(url, n, 900)
            cpu = cpu_seconds(proc.pid) - c0
            rows, distinct = stored(url)
        return {
            "drain_s": round(drain, 2),
            "readings_per_s": round(n / drain),
            "server_cpu_s": round(cpu, 2),
            "readings_per_server_cpu_s": round(n / cpu),
            "stored": rows,
            "distinct": distinct,
            "lost": n - distinct,
            "doubled": rows - distinct,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--bins", type=int, default=1000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--modes", default="live,backlog")
    args = ap.parse_args()
    for kind in args.db.split(","):
        print(json.dumps(run(kind, args.n, args.bins, args.publishers, args.modes.split(","))), flush=True)


if __name__ == "__main__":
    main()
