"""SIGKILL mid-stream and restart: no reading lost, seq continues; SIGTERM stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from device_support import distinct_seqs, write_config

pytestmark = pytest.mark.broker


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "binsight", "-v", "device", "run", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
        env=env,
    )


def test_sigkill_mid_stream_loses_nothing(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, collector_factory
) -> None:
    """Kill -9 while readings flow, restart: the received seqs are 0..N without a gap, none repeat
    a number for a different capture, and the second run continues where the first stopped."""
    col = collector_factory(mosquitto.port)
    cfg = write_config(
        tmp_path, bin_id="bin-k", source=scenes, model=model_v1, port=mosquitto.port, interval_s=0.05
    )
    log = tmp_path / "agent.log"
    proc = _start(cfg, log)
    try:
        col.wait_for(lambda: len(col.payloads("reading")) >= 15, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        first_run = distinct_seqs(col.payloads("reading"))
        proc = _start(cfg, log)
        col.wait_for(lambda: len(distinct_seqs(col.payloads("reading"))) >= len(first_run) + 15, timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    readings = col.payloads("reading")
    seqs = distinct_seqs(readings)
    assert seqs == list(range(len(seqs))), "a seq is missing or out of order"
    by_seq: dict[int, int] = {}
    for r in readings:  # a resent reading is the same capture (same ts), never a new one
        assert by_seq.setdefault(r["seq"], r["ts"]) == r["ts"]
    assert max(seqs) > max(first_run)
    assert col.raw("available")[-1] == b"offline"
