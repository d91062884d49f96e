"""`binsight demo --duration S`: the whole system, headless, must produce a route plan."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netutil import free_port

from binsight.demo.world import make_city

pytestmark = [pytest.mark.slow, pytest.mark.torch, pytest.mark.broker]


def test_city_is_deterministic_and_has_collections() -> None:
    """Same seed, same city; fill trajectories rise and contain collections (sharp drops)."""
    a, b = make_city(12), make_city(12)
    assert a == b
    drops = sum(1 for bin_ in a.bins for x, y in zip(bin_.fills, bin_.fills[1:], strict=False) if x - y > 0.5)
    assert drops >= 6
    assert all(0.0 <= f <= 1.0 for bin_ in a.bins for f in bin_.fills)
    assert len({bin_.site for bin_ in a.bins}) >= 2


def _demo(data: Path, mqtt_port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "binsight", "demo", "--duration", "45", "--bins", "6",
            "--data", str(data), "--port", str(free_port()), "--mqtt-port", str(mqtt_port),
            "--first-plan-after", "15", "--plan-every", "20", "--history-h", "6",
        ],
        capture_output=True, text=True, timeout=1100,
    )  # fmt: skip


@pytest.mark.timeout(1800)  # two demos, the first one training its model
def test_demo_headless_makes_a_plan(tmp_path: Path, mosquitto: object) -> None:
    """The demo trains, renders, serves, runs real agents and makes at least one plan through the API.

    No reading is ever in the server's future (the history is backfilled up to now, then real time),
    and a second demo in a new folder on the same broker works though the first one's retained
    ``available`` messages create its bins before the import runs (issue #17).
    """
    port = mosquitto.port  # type: ignore[attr-defined]
    data = tmp_path / "demo"
    proc = _demo(data, port)
    finished_ms = time.time() * 1000
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "admin token: bst_" in proc.stdout
    assert "plan " in proc.stdout
    db = sqlite3.connect(data / "binsight.db")
    readings = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT bin_id), MIN(ts), MAX(ts) FROM readings"
    ).fetchone()
    assert readings[0] >= 6 * 5 and readings[1] == 6
    assert readings[3] <= finished_ms  # never in the future
    assert readings[2] <= finished_ms - 4 * 3_600_000  # the backfilled history
    status, result = db.execute(
        "SELECT status, result FROM plans ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    assert status == "done"
    plan = json.loads(result)
    # Routes, or a quiet day: every bin is either on a route or skipped with the reason.
    routed = {s["id"] for r in plan["routes"] for s in r["stops"] if s["kind"] == "bin"}
    skipped = {s["id"]: s["reason"] for s in plan.get("skipped", [])}
    assert {b.bin_id for b in make_city(6).bins} <= routed | set(skipped)
    assert all(skipped.values())
    assert db.execute("SELECT COUNT(*) FROM models WHERE active").fetchone()[0] == 1
    report = json.loads((data / "model" / "report.json").read_text())
    assert report["test"]["mae"] < 0.12
    # A new folder (the trained model and rendered frames copied, not retrained) on the same broker.
    again = tmp_path / "again"
    again.mkdir()
    for part in ("model", "frames"):
        shutil.copytree(data / part, again / part)
    proc = _demo(again, port)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "UNIQUE constraint" not in proc.stderr
    db = sqlite3.connect(again / "binsight.db")
    assert db.execute("SELECT COUNT(*) FROM bins WHERE registered").fetchone()[0] == 6
