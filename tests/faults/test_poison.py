"""Poison messages (issue #15, item 1): devices publish valid readings with poison in between, through
the real Mosquitto into a real server process (``binsight server run``), which is restarted once in
the middle. Every valid reading is stored, every poison message rejected and counted, none is left to
be redelivered forever, and the server's ingest writer lives throughout (SQLite and PostgreSQL).

Before the fix, seq 2**63 killed the writer thread on SQLite (the watchdog then exited the server, and
the broker redelivered the reading to the next one) and a NUL in ``model`` had PostgreSQL retry its
batch every 5 s forever: no valid reading behind either, from any device, was ever stored.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))  # mqtt_helpers, as in tests/server

from mqtt_helpers import (
    count_readings,
    publisher,
    start_server,
    wait_for,
    wait_published,
    write_server_toml,
)
from netutil import free_port

from binsight.server.ingest.messages import MAX_SEQ

pytestmark = pytest.mark.broker

DEVICES = [f"dev-{i}" for i in range(4)]
ROUNDS = 30


def _reading(bin_id: str, seq: object, **extra: object) -> dict[str, object]:
    ts = int(time.time() * 1000)
    return {"bin_id": bin_id, "seq": seq, "ts": ts, "fill": 0.5, "quality": "ok", "model": "m1", **extra}


def _stats(bin_id: str, **extra: object) -> dict[str, object]:
    ts = int(time.time() * 1000)
    base = {"bin_id": bin_id, "ts": ts, "uptime_s": 5.0, "outbox_depth": 0, "dropped": 0, "model": "m1"}
    return {**base, "interval_s": 600.0, **extra}


def _poison(bin_id: str) -> list[tuple[str, str, str]]:
    """(kind, payload, the reason it must be rejected for): what any device can publish on its topics."""
    good = json.dumps(_reading(bin_id, 5))
    event = {"bin_id": bin_id, "ts": int(time.time() * 1000), "kind": "command", "state": "ok"}
    return [
        ("reading", json.dumps(_reading(bin_id, 2**63)), "number_out_of_range"),
        ("reading", json.dumps(_reading(bin_id, 2**63 - 1)), "number_out_of_range"),
        ("reading", json.dumps(_reading(bin_id, 7, model="m\x00")), "bad_text"),
        ("reading", json.dumps(_reading(bin_id, 8, model="m" * 10_000)), "text_too_long"),
        ("stats", json.dumps(_stats(bin_id, model="m" * 10_000)), "text_too_long"),
        ("event", json.dumps({**event, "detail": "x" * 10_000}), "text_too_long"),
        ("reading", good[:-1] + ', "infer_ms": Infinity}', "number_out_of_range"),
        ("reading", good.replace("0.5", "NaN"), "number_out_of_range"),
        ("stats", json.dumps(_stats(bin_id)).replace("600.0", "Infinity"), "number_out_of_range"),
        ("stats", json.dumps(_stats(bin_id, outbox_depth=2**40)), "number_out_of_range"),
        ("reading", json.dumps(_reading(bin_id, "9")), "invalid_fields"),
        ("reading", json.dumps(_reading(bin_id, 10, fill="0.5")), "invalid_fields"),
        ("reading", json.dumps({**_reading(bin_id, 11), "\x00": 1}), "invalid_fields"),
    ]


def _rejects(url: str) -> Counter[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return Counter(dict(conn.execute(text("SELECT reason, count FROM ingest_rejects")).all()))
    except Exception:
        return Counter()  # before the first migration
    finally:
        engine.dispose()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_poison_messages(mosquitto: object, db_url: str, tmp_path: Path, fault_counts: Any) -> None:
    """4 devices x 30 readings (one of them seq 2**53 - 1) with 13 kinds of poison each in between;
    the server restarted half way: all 120 valid readings stored, all 52 poison ones rejected by
    reason, none lost, the server alive and healthy throughout, and the seq gaps 0."""
    port = mosquitto.port  # type: ignore[attr-defined]
    http = free_port()
    conf = write_server_toml(
        tmp_path / "server.toml", database=db_url, mqtt_port=port, http_port=http, client_id="srv-poison"
    )
    log = tmp_path / "server.log"
    proc = start_server(conf, log)
    devices = {b: publisher(port, client_id=b) for b in DEVICES}
    poison = {b: _poison(b) for b in DEVICES}
    expected: Counter[str] = Counter()

    def publish_round(k: int) -> None:
        infos = []
        for b, client in devices.items():
            # The largest seq the server takes: stored, a counted seq jump rather than 9e15 missing.
            seq = MAX_SEQ if (b, k) == ("dev-0", 3) else k
            infos.append(client.publish(f"binsight/{b}/reading", json.dumps(_reading(b, seq)), qos=1))
            if k % 2 == 0 and poison[b]:
                kind, payload, reason = poison[b].pop(0)
                infos.append(client.publish(f"binsight/{b}/{kind}", payload, qos=1))
                expected[reason] += 1
        wait_published(infos)
        fault_counts.sent += len(infos)

    def alive_and_healthy() -> None:
        assert proc.poll() is None, f"the server exited ({proc.returncode}): see {log}"
        assert "thread died" not in log.read_text()
        status, body = _get(http, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", body

    try:
        wait_for(lambda: "connected to MQTT" in log.read_text(), 30, "server connected")
        time.sleep(0.3)  # subscriptions granted
        for k in range(ROUNDS // 2):
            publish_round(k)
        wait_for(lambda: count_readings(db_url)[0] >= 40, 30, "readings stored before the restart")
        alive_and_healthy()

        _stop(proc)  # restarted in the middle: what it had not acknowledged, the broker delivers again
        assert proc.returncode == 0, f"the server did not stop cleanly: see {log}"
        for k in range(ROUNDS // 2, ROUNDS):
            publish_round(k)
        proc = start_server(conf, log)
        valid = len(DEVICES) * ROUNDS
        total_poison = sum(expected.values())
        wait_for(lambda: count_readings(db_url)[0] >= valid, 60, f"{valid} valid readings stored")
        wait_for(lambda: sum(_rejects(db_url).values()) >= total_poison, 30, "every poison message counted")
        time.sleep(1.0)  # redeliveries still in flight would add rows or rejects now
        alive_and_healthy()
        assert count_readings(db_url) == (valid, valid)
        assert _rejects(db_url) == expected
        metrics = _get(http, "/metrics")[1]
        assert "\nbinsight_seq_gaps 0.0\n" in metrics
        assert "\nbinsight_ingest_failures_in_a_row 0.0\n" in metrics
    finally:
        for client in devices.values():
            client.disconnect()
            client.loop_stop()
        _stop(proc)
        fault_counts.stored = count_readings(db_url)[0]
        fault_counts.rejected = sum(_rejects(db_url).values())
