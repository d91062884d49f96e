"""Publishing many readings fast (paho, QoS 1) and waiting for the database to catch up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]


def publisher(port: int, client_id: str = "test-pub", host: str = "127.0.0.1") -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    c.loop_start()
    return c


def publish_readings(
    c: mqtt.Client, bins: list[str], per_bin: int, start_seq: int = 0, ts: int | None = None, **extra: Any
) -> list[mqtt.MQTTMessageInfo]:
    base = ts if ts is not None else int(time.time() * 1000)
    infos = []
    for k in range(per_bin):
        for b in bins:
            seq = start_seq + k
            body = {
                "bin_id": b,
                "seq": seq,
                "ts": base + seq,
                "fill": (seq % 100) / 100,
                "quality": "ok",
                "model": "m1",
                **extra,
            }
            infos.append(c.publish(f"binsight/{b}/reading", json.dumps(body), qos=1))
    return infos


def wait_published(infos: list[mqtt.MQTTMessageInfo], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for i in infos:
        i.wait_for_publish(max(0.1, deadline - time.monotonic()))
        assert i.is_published(), "broker did not acknowledge a publish"


def count_readings(url: str) -> tuple[int, int]:
    """(rows, distinct (bin_id, seq)) in the readings table; (0, 0) before the table exists."""
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM readings")).scalar_one()
            distinct = conn.execute(
                text("SELECT count(*) FROM (SELECT DISTINCT bin_id, seq FROM readings) AS d")
            ).scalar_one()
            return int(rows), int(distinct)
    except Exception:
        return 0, 0
    finally:
        eng.dispose()


def command_answer(bin_id: str, ref: str, state: str = "ok") -> str:
    """The event a device publishes when it ran (``ok``) or refused a command ``ref``."""
    event = {"bin_id": bin_id, "ts": int(time.time() * 1000), "kind": "command", "state": state, "ref": ref}
    return json.dumps(event)


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def write_server_toml(
    path: Path, *, database: str, mqtt_port: int, http_port: int, client_id: str, **ingest: Any
) -> Path:
    lines = [
        f'database = "{database}"',
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {mqtt_port}",
        f'client_id = "{client_id}"',
        "[http]",
        'host = "127.0.0.1"',
        f"port = {http_port}",
        "[ingest]",
        *(f"{k} = {json.dumps(v)}" for k, v in ingest.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_server(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``binsight server run`` as its own process (so a test can SIGKILL it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "binsight", "-v", "server", "run", "--config", str(config)],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env=env,
    )
