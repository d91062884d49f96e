"""`binsight demo --duration S`: the whole system, headless, must produce a route plan."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
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


def test_demo_headless_makes_a_plan(tmp_path: Path, mosquitto: object) -> None:
    """The demo trains, renders, serves, runs real agents and makes at least one plan through the API."""
    port = mosquitto.port  # type: ignore[attr-defined]
    data = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable, "-m", "binsight", "demo", "--duration", "45", "--bins", "6",
            "--data", str(data), "--port", str(free_port()), "--mqtt-port", str(port),
            "--first-plan-after", "15", "--plan-every", "20",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "admin token: bst_" in proc.stdout
    assert "plan " in proc.stdout
    db = sqlite3.connect(data / "binsight.db")
    readings = db.execute("SELECT COUNT(*), COUNT(DISTINCT bin_id) FROM readings").fetchone()
    assert readings[0] >= 6 * 5 and readings[1] == 6
    status, result = db.execute(
        "SELECT status, result FROM plans ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    assert status == "done"
    assert json.loads(result)["routes"]
    assert db.execute("SELECT COUNT(*) FROM models WHERE active").fetchone()[0] == 1
    # The second run reuses the trained model and the rendered frames.
    report = json.loads((data / "model" / "report.json").read_text())
    assert report["test"]["mae"] < 0.12
