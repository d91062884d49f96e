"""CPU per reading of the ingest's ``write_batch`` alone (no broker), on PostgreSQL and SQLite.

29 batches of 1,000 readings (100 bins x 10 readings, 10 minutes apart) into a fresh database after one
warm-up batch; prints process CPU and wall microseconds per reading. Run it from two trees to compare a
change (``PYTHONPATH`` picks the tree): ``nice .venv/bin/python bench/server_write_cpu.py [--db sqlite]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from server_common import database

from binsight.protocol import Topics
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.ingest.messages import Item, parse
from binsight.server.ingest.store import BinRegistry, write_batch

T0 = 1_767_225_600_000


def batches(n_batches: int, bins: int, per_bin: int, seed: int = 0) -> list[list[Item]]:
    topics = Topics("binsight")
    rng = np.random.default_rng(seed)
    out = []
    for b in range(n_batches):
        items = []
        for k in range(bins):
            for j in range(per_bin):
                seq = b * per_bin + j
                body = {
                    "bin_id": f"b{k}",
                    "seq": seq,
                    "ts": T0 + seq * 600_000,
                    "fill": round(float(rng.uniform(0, 1)), 4),
                    "quality": "ok",
                    "model": "m",
                }
                items.append(parse(topics, f"binsight/b{k}/reading", json.dumps(body).encode(), T0, 10**12))
        out.append(items)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres,sqlite")
    args = ap.parse_args()
    work = batches(30, 100, 10)
    n = sum(len(b) for b in work[1:])
    out = {}
    for kind in args.db.split(","):
        with tempfile.TemporaryDirectory() as d, database(kind, Path(d)) as url:
            engine = make_engine(url)
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            registry = BinRegistry()
            with sessions() as s, s.begin():
                write_batch(s, work[0], registry, False, T0)
            c0, w0 = time.process_time(), time.perf_counter()
            for items in work[1:]:
                with sessions() as s, s.begin():
                    write_batch(s, items, registry, False, T0)
            out[kind] = {
                "cpu_us_per_reading": round((time.process_time() - c0) / n * 1e6, 1),
                "wall_us_per_reading": round((time.perf_counter() - w0) / n * 1e6, 1),
            }
            engine.dispose()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
