"""Image retention: how fast a prune deletes, and how long ingest waits meanwhile, SQLite and PostgreSQL.

A fresh database gets ``--n`` images of ``--kb`` kB (random bytes: JPEG does not compress) over
``--bins`` bins, received uniformly over the last 60 days, 10% of them labelled. The prune then
deletes the unlabelled ones older than 30 days (about 45% of the table) with the default batch size
and no pause between batches, while a probe thread inserts one image every 20 ms and times each
commit (the wait a camera's image would see). Reported: images/s and MB/s deleted, the longest delete
transaction, the probe's worst commit, and the space: SQLite file size and free pages (and the VACUUM
that gives them back), PostgreSQL's ``pg_total_relation_size('images')``.

Run: ``nice .venv/bin/python bench/server_retention.py [--n 50000] [--kb 50] [--db sqlite,postgres]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import threading
import time

from server_common import database, load_average, tmpdir
from sqlalchemy import insert, text

from binsight.server.config import RetentionConfig
from binsight.server.db.engine import make_engine, make_sessionmaker, now_ms
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import Image, Label
from binsight.server.retention import prune_images, sqlite_space, vacuum_sqlite

DAY = 86_400_000


def _fill(sessions, n: int, kb: int, bins: int, now: int) -> float:  # type: ignore[no-untyped-def]
    rng = random.Random(0)
    blobs = [os.urandom(kb * 1000) for _ in range(16)]
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        rows = []
        for i in range(start, min(n, start + 500)):
            at = now - int(rng.uniform(0, 60) * DAY)
            jpeg = blobs[i % 16][:-8] + i.to_bytes(8, "big")
            rows.append(
                {
                    "bin_id": f"bin-{i % bins:04d}",
                    "seq": i,
                    "ts": at,
                    "received_at": at,
                    "reason": "every_n",
                    "predicted_fill": 0.5,
                    "model": "m1",
                    "sha256": hashlib.sha256(jpeg).hexdigest(),
                    "size": len(jpeg),
                    "jpeg": jpeg,
                }
            )
        with sessions() as s, s.begin():
            ids = s.execute(insert(Image).returning(Image.id, sort_by_parameter_order=True), rows).scalars()
            labels = [
                {
                    "image_id": i,
                    "fill": 0.5,
                    "skipped": False,
                    "unusable": False,
                    "who": "b",
                    "created_at": now,
                }
                for i in ids
                if rng.random() < 0.1
            ]
            if labels:
                s.execute(insert(Label), labels)
    return time.perf_counter() - t0


def _probe(sessions, stop: threading.Event, waits: list[float], kb: int) -> None:  # type: ignore[no-untyped-def]
    seq = 0
    while not stop.wait(0.02):
        jpeg = os.urandom(kb * 1000)
        t = time.perf_counter()
        with sessions() as s, s.begin():
            s.add(
                Image(
                    bin_id="probe",
                    seq=seq,
                    ts=now_ms(),
                    received_at=now_ms(),
                    reason="every_n",
                    model="m1",
                    sha256=hashlib.sha256(jpeg).hexdigest(),
                    size=len(jpeg),
                    jpeg=jpeg,
                )
            )
        waits.append(time.perf_counter() - t)
        seq += 1


def _space(engine, kind: str) -> str:  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size, free = sqlite_space(engine)
        return f"file {size / 1e6:.0f} MB ({free / 1e6:.0f} MB free pages)"
    with engine.connect() as conn:
        size = conn.execute(text("SELECT pg_total_relation_size('images')")).scalar_one()
    return f"images table {size / 1e6:.0f} MB"


def bench(kind: str, n: int, kb: int, bins: int) -> None:
    work = tmpdir()
    with database(kind, work) as url:
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        now = now_ms()
        fill_s = _fill(sessions, n, kb, bins, now)
        if kind == "postgres":
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        print(
            f"[{kind}] {n} images x {kb} kB over {bins} bins stored in {fill_s:.1f} s; {_space(engine, kind)}"
        )
        cfg = RetentionConfig(batch_pause_s=0.0, max_unlabelled_per_bin=10_000)
        dry = prune_images(sessions, cfg, now=now, dry_run=True)
        print(f"[{kind}] dry run: {dry.summary(cfg)}")
        stop, waits = threading.Event(), []  # type: ignore[var-annotated]
        probe = threading.Thread(target=_probe, args=(sessions, stop, waits, kb))
        probe.start()
        time.sleep(0.5)
        result = prune_images(sessions, cfg, now=now)
        time.sleep(0.5)
        stop.set()
        probe.join()
        waits.sort()
        p99 = waits[int(0.99 * (len(waits) - 1))]
        print(f"[{kind}] prune: {result.summary(cfg)}")
        print(
            f"[{kind}] rate {result.deleted / result.seconds:,.0f} images/s, "
            f"{result.bytes / 1e6 / result.seconds:.0f} MB/s; probe inserts during prune: {len(waits)}, "
            f"p99 {p99 * 1000:.0f} ms, worst {waits[-1] * 1000:.0f} ms"
        )
        print(f"[{kind}] after prune: {_space(engine, kind)}")
        if kind == "sqlite":
            t = time.perf_counter()
            size = vacuum_sqlite(engine)
            print(f"[{kind}] VACUUM {time.perf_counter() - t:.1f} s: file {size / 1e6:.0f} MB")
        engine.dispose()
    print(f"[{kind}] load average {load_average():.2f} (2 cores)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--kb", type=int, default=50)
    ap.add_argument("--bins", type=int, default=1000)
    ap.add_argument("--db", default="sqlite,postgres")
    args = ap.parse_args()
    for kind in args.db.split(","):
        bench(kind, args.n, args.kb, args.bins)


if __name__ == "__main__":
    main()
