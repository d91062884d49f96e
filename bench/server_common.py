"""Shared parts of the server benchmarks: a private Mosquitto configured as deploy/ does, a server
process, throwaway databases, fast publishers and a stored-readings counter."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BINSIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """Mosquitto with deploy/'s no-loss settings (max_queued_messages 0, 1000 in flight)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "max_inflight_messages 1000\nmax_connections -1\npersistence false\n"
    )
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    name = f"binsight_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def server(
    db_url: str, mqtt_port: int, workdir: Path, client_id: str = "bench-server"
) -> Iterator[subprocess.Popen[bytes]]:
    """``binsight server run`` in its own process, connected and subscribed."""
    conf = workdir / f"{client_id}.toml"
    conf.write_text(
        f'database = "{db_url}"\n[mqtt]\nport = {mqtt_port}\nclient_id = "{client_id}"\n'
        f"[http]\nport = {free_port()}\n"
    )
    log = workdir / f"{client_id}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "binsight", "-v", "server", "run", "--config", str(conf)],
        stdout=open(log, "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while "connected to MQTT" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(0.5)  # subscriptions granted
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(port: int, client_id: str) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=60)
    return c


def payload(bin_id: str, seq: int, ts: int, historical: bool = False) -> str:
    return json.dumps(
        {
            "bin_id": bin_id,
            "seq": seq,
            "ts": ts,
            "fill": (seq % 97) / 97,
            "quality": "ok",
            "model": "bench",
            "historical": historical,
        }
    )


def publish_range(port: int, bins: list[str], per_bin: int, client_id: str) -> float:
    """Publish ``per_bin`` readings for each bin (QoS 1); returns the seconds it took, acks included."""
    c = client(port, client_id)
    c.loop_start()
    t0 = time.perf_counter()
    base = int(time.time() * 1000)
    infos = []
    for seq in range(per_bin):
        for b in bins:
            infos.append(c.publish(f"binsight/{b}/reading", payload(b, seq, base + seq), qos=1))
    for i in infos:
        i.wait_for_publish(120)
    elapsed = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return elapsed


def stored(db_url: str) -> tuple[int, int]:
    """(rows, distinct (bin_id, seq)) in readings."""
    eng = create_engine(db_url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM readings")).scalar_one()
            distinct = conn.execute(
                text("SELECT count(*) FROM (SELECT DISTINCT bin_id, seq FROM readings) d")
            ).scalar_one()
            return int(rows), int(distinct)
    finally:
        eng.dispose()


def wait_stored(db_url: str, n: int, timeout: float) -> float:
    """Seconds until ``n`` readings are stored (polling every 0.1 s); raises on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if stored(db_url)[0] >= n:
            return time.perf_counter() - t0
        time.sleep(0.1)
    raise TimeoutError(f"only {stored(db_url)[0]} of {n} readings stored after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc), to report figures that contention
    on a shared machine does not distort as much as wall time does."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return os.getloadavg()[0]


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="binsight-bench-"))
