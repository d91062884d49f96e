"""Sizing figures for docs/deploy.md: arithmetic for a fleet, and what this machine measures.

Measured here, each with the deploy/ Mosquitto config (deploy/mosquitto/mosquitto.conf rendered
into a temp folder exactly as tests/deploy does: only paths and the port change):

* broker throughput: P paho publishers (device accounts) -> Mosquitto -> one paho subscriber (the
  server account), QoS 1, every message counted and every device's seq checked;
* queue for an offline server: N readings published while the server's persistent session is
  away, the broker's resident memory before and after, then the drain when it comes back;
* stored size of one reading row with the server's own schema (its Alembic migrations) in SQLite
  and, with ``--pg``, PostgreSQL.

Then the arithmetic for ``--bins`` at ``--interval`` (readings) and ``--stats-interval`` (stats).

    nice .venv/bin/python bench/sizing.py                       # SQLite only
    nice .venv/bin/python bench/sizing.py --pg postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The same rendering and client session the deploy tests use, so the benchmark runs the shipped config.
sys.path.insert(0, str(REPO / "tests" / "deploy"))

from deploy_broker import DeployBroker, Session  # noqa: E402
from paho.mqtt.client import CallbackAPIVersion, Client  # noqa: E402
from paho.mqtt.enums import MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from binsight.protocol import Reading, Stats, Topics  # noqa: E402

MODEL = "20261129T221500Z-3fa2c1d0"  # the shape of a real model version (docs/contracts.md)


def sample_reading(bin_id: str, seq: int) -> str:
    """A reading as a device sends it (all optional fields a regression model fills)."""
    return Reading(
        bin_id=bin_id, seq=seq, ts=1_795_990_000_000 + seq, fill=0.4375, quality="ok", model=MODEL,
        historical=False, spread=0.0125, infer_ms=31.5,
    ).model_dump_json()  # fmt: skip


def sample_stats(bin_id: str) -> str:
    return Stats(
        bin_id=bin_id, ts=1_795_990_000_000, uptime_s=86_400.5, outbox_depth=0, dropped=0, model=MODEL,
        interval_s=600.0, last_infer_ms=31.5, last_error=None, camera_ok=True, rss_mb=104.2,
        captures=144, unusable=3,
    ).model_dump_json()  # fmt: skip


def mqtt_bytes(topic: str, payload: str) -> int:
    """Bytes on the wire for one MQTT 5 QoS 1 PUBLISH (no properties) plus its PUBACK, without TCP/TLS."""
    body = 2 + len(topic.encode()) + 2 + 1 + len(payload.encode())  # topic, packet id, props length
    remaining = 1 if body < 128 else 2 if body < 16_384 else 3
    return 1 + remaining + body + 4  # fixed header + body + PUBACK (v5, reason code)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_broker(root: Path, devices: int) -> DeployBroker:
    broker = DeployBroker(root)
    broker.root.mkdir()
    broker.render()
    for i in range(devices):
        broker.add_device(f"bin-{i:05d}")
    broker.add_server()
    broker.start()
    return broker


class Counter:
    """The server side: counts readings and checks each device's seq arrives complete."""

    def __init__(self) -> None:
        self.seen: dict[str, set[int]] = {}
        self.count = 0
        self.done = threading.Event()
        self.target = 0
        self.lock = threading.Lock()

    def on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        data = json.loads(msg.payload)
        with self.lock:
            self.seen.setdefault(data["bin_id"], set()).add(data["seq"])
            self.count += 1
            if self.count >= self.target:
                self.done.set()


def server_client(broker: DeployBroker, counter: Counter, *, persistent: bool) -> Client:
    c = Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5, reconnect_on_failure=False)
    c.username_pw_set("binsight-server", broker.passwords["binsight-server"])
    c.on_message = counter.on_message
    props = None
    if persistent:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", broker.port, clean_start=not persistent, properties=props)
    c.loop_start()
    if not connected.wait(10):
        raise RuntimeError("server account could not connect")
    return c


def publish_all(broker: DeployBroker, publishers: int, per_publisher: int) -> None:
    """Each device account publishes its readings at QoS 1 as fast as the broker acknowledges."""
    topics = Topics()

    def run(i: int) -> None:
        name = f"bin-{i:05d}"
        s = Session(broker.port, name, broker.passwords[name])
        s.client.max_inflight_messages_set(1000)
        assert s.connect()
        infos = [
            s.client.publish(topics.reading(name), sample_reading(name, seq), qos=1)
            for seq in range(per_publisher)
        ]
        for info in infos:
            info.wait_for_publish(120)
        s.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(publishers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def complete(counter: Counter, publishers: int, per_publisher: int) -> bool:
    want = set(range(per_publisher))
    return len(counter.seen) == publishers and all(v == want for v in counter.seen.values())


def measure_throughput(root: Path, messages: int, publishers: int) -> dict[str, Any]:
    broker = start_broker(root, publishers)
    try:
        counter = Counter()
        per = messages // publishers
        counter.target = per * publishers
        sub = server_client(broker, counter, persistent=False)
        sub.subscribe(Topics().wildcard("reading"), qos=1)
        time.sleep(0.3)
        assert broker.proc is not None
        cpu0 = cpu_s(broker.proc.pid)
        t0 = time.perf_counter()
        publish_all(broker, publishers, per)
        counter.done.wait(120)
        elapsed = time.perf_counter() - t0
        broker_cpu = cpu_s(broker.proc.pid) - cpu0
        sub.disconnect()
        sub.loop_stop()
        return {
            "publishers": publishers,
            "sent": counter.target,
            "received": counter.count,
            "complete": complete(counter, publishers, per),
            "seconds": round(elapsed, 3),
            "per_s": round(counter.count / elapsed),
            # What the broker itself spent: the ceiling for one Mosquitto core is 1e6 / this.
            "broker_cpu_s": round(broker_cpu, 3),
            "broker_cpu_us_per_reading": round(broker_cpu * 1e6 / max(counter.count, 1), 1),
        }
    finally:
        broker.stop()


def measure_offline_queue(root: Path, messages: int) -> dict[str, Any]:
    """Readings pile up for an absent server session; memory per queued reading; then the drain."""
    broker = start_broker(root, 1)
    try:
        assert broker.proc is not None
        counter = Counter()
        counter.target = messages
        sub = server_client(broker, counter, persistent=True)
        sub.subscribe(Topics().wildcard("reading"), qos=1)
        time.sleep(0.3)
        sub.disconnect()
        sub.loop_stop()
        time.sleep(0.3)
        rss_before = rss_kib(broker.proc.pid)
        publish_all(broker, 1, messages)
        time.sleep(0.5)
        rss_after = rss_kib(broker.proc.pid)
        t0 = time.perf_counter()
        sub = server_client(broker, counter, persistent=True)
        counter.done.wait(120)
        elapsed = time.perf_counter() - t0
        sub.disconnect()
        sub.loop_stop()
        return {
            "queued": messages,
            "received_after_reconnect": counter.count,
            "complete": complete(counter, 1, messages),
            "broker_rss_kib_before": rss_before,
            "broker_rss_kib_after": rss_after,
            "bytes_per_queued_reading": round((rss_after - rss_before) * 1024 / messages),
            "drain_seconds": round(elapsed, 3),
            "drain_per_s": round(counter.count / elapsed),
        }
    finally:
        broker.stop()


def _reading_rows(start: int, count: int, bins: int = 10_000) -> list[dict[str, Any]]:
    """Rows ``start .. start+count`` of a fleet of ``bins`` reporting in turn."""
    now = 1_795_990_000_000
    return [
        {
            "bin_id": f"bin-{i % bins:05d}",
            "seq": i // bins,
            "ts": now + i,
            "received_at": now + i + 250,
            "fill": (i % 97) / 97,
            "quality": "ok",
            "model": MODEL,
            "historical": False,
            "spread": 0.0125,
            "infer_ms": 31.5,
            "label": None,
        }
        for i in range(start, start + count)
    ]


def measure_rows(url: str, rows: int) -> dict[str, Any]:
    """Bytes per stored reading (table + indexes) with the server's schema."""
    from sqlalchemy import insert, text

    from binsight.server.db.engine import make_engine
    from binsight.server.db.migrate import upgrade
    from binsight.server.db.models import Reading as ReadingRow

    engine = make_engine(url)
    upgrade(engine)
    batch = 20_000
    t0 = time.perf_counter()
    for start in range(0, rows, batch):
        with engine.begin() as conn:
            conn.execute(insert(ReadingRow), _reading_rows(start, min(batch, rows - start)))
    insert_s = time.perf_counter() - t0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE readings"))
            size = int(conn.execute(text("SELECT pg_total_relation_size('readings')")).scalar_one())
        else:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            pages = int(conn.execute(text("PRAGMA page_count")).scalar_one())
            page = int(conn.execute(text("PRAGMA page_size")).scalar_one())
            size = pages * page
    engine.dispose()
    return {
        "dialect": engine.dialect.name,
        "rows": rows,
        "bytes": size,
        "bytes_per_row": round(size / rows, 1),
        "insert_rows_per_s": round(rows / insert_s),
    }


def pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"binsight_sizing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: IPv4 (20) + TCP (20) + TCP timestamps (12): what each MQTT packet costs on the wire beyond itself
#: when it travels alone (the usual case at one reading per ten minutes); TLS adds its records.
TCP_IP_BYTES = 52


def arithmetic(
    bins: int,
    interval_s: float,
    stats_interval_s: float,
    row_bytes: dict[str, float],
    *,
    keepalive_s: float = 30.0,
    image_every_n: int = 144,
    image_max_bytes: int = 200_000,
) -> dict[str, Any]:
    topics = Topics()
    reading = sample_reading("bin-00001", 1)
    stats = sample_stats("bin-00001")
    reading_wire = mqtt_bytes(topics.reading("bin-00001"), reading)
    stats_wire = mqtt_bytes(topics.stats("bin-00001"), stats) - 4  # QoS 0: no PUBACK, no packet id
    readings_s = bins / interval_s
    stats_s = bins / stats_interval_s
    readings_day = readings_s * 86_400
    out: dict[str, Any] = {
        "bins": bins,
        "interval_s": interval_s,
        "stats_interval_s": stats_interval_s,
        "reading_payload_bytes": len(reading),
        "reading_mqtt_bytes": reading_wire,
        "stats_payload_bytes": len(stats),
        "stats_mqtt_bytes": stats_wire,
        "readings_per_s": round(readings_s, 2),
        "stats_per_s": round(stats_s, 2),
        "messages_per_s": round(readings_s + stats_s, 2),
        "mqtt_bytes_per_day": round(readings_day * reading_wire + stats_s * 86_400 * stats_wire),
        "reading_rows_per_day": round(readings_day),
    }
    for dialect, per_row in row_bytes.items():
        out[f"{dialect}_bytes_per_year"] = round(readings_day * 365 * per_row)
    # One device's link per day: each reading (PUBLISH + PUBACK), stats (PUBLISH) and keepalive
    # (PINGREQ + PINGRESP, 2 bytes each) as its own TCP segments. An estimate for data plans.
    per_device_day = (
        86_400 / interval_s * (reading_wire + 2 * TCP_IP_BYTES)
        + 86_400 / stats_interval_s * (stats_wire + TCP_IP_BYTES)
        + 86_400 / keepalive_s * 2 * (2 + TCP_IP_BYTES)
    )
    out["keepalive_s"] = keepalive_s
    out["device_wire_bytes_per_day_estimate"] = round(per_device_day)
    # Labelling images: periodic ones only (unsure ones come on top); the size cap is an upper bound.
    images_day = bins * 86_400 / interval_s / image_every_n if image_every_n else 0.0
    out["periodic_images_per_day"] = round(images_day)
    out["image_bytes_per_day_at_cap"] = round(images_day * image_max_bytes)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bins", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=600.0, help="seconds between readings (device default)")
    p.add_argument(
        "--stats-interval", type=float, default=60.0, help="seconds between stats (device default)"
    )
    p.add_argument("--keepalive", type=float, default=30.0, help="MQTT keepalive seconds (device default)")
    p.add_argument("--messages", type=int, default=50_000, help="readings per broker measurement")
    p.add_argument("--publishers", default="1,8", help="comma-separated publisher counts to measure")
    p.add_argument("--rows", type=int, default=200_000, help="reading rows to store for the size figure")
    p.add_argument("--pg", default=None, help="PostgreSQL admin URL: also measure row size there")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args()
    if shutil.which("mosquitto") is None:
        p.error("mosquitto is not installed")

    result: dict[str, Any] = {"loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}
    root = Path(tempfile.mkdtemp(prefix="binsight-sizing-"))
    root.chmod(0o755)  # Mosquitto started as root reads these files as "mosquitto"
    try:
        result["broker"] = [
            measure_throughput(root / f"tp{n}", args.messages, int(n)) for n in args.publishers.split(",")
        ]
        result["offline_queue"] = measure_offline_queue(root / "queue", args.messages)
        rows = [measure_rows(f"sqlite:///{root / 'rows.db'}", args.rows)]
        if args.pg:
            name, url = pg_database(args.pg)
            try:
                rows.append(measure_rows(url, args.rows))
            finally:
                drop_pg_database(args.pg, name)
        result["rows"] = rows
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["fleet"] = arithmetic(
        args.bins,
        args.interval,
        args.stats_interval,
        {r["dialect"]: r["bytes_per_row"] for r in rows},
        keepalive_s=args.keepalive,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
