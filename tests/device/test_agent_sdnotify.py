"""``binsight device run`` under systemd: READY, WATCHDOG pings and STOPPING over a real socket."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from device_support import write_config
from netutil import free_port


def test_agent_under_systemd_sends_ready_and_watchdog(tmp_path: Path, scenes: Path, model_v1: Path) -> None:
    """``device run`` with NOTIFY_SOCKET and WATCHDOG_USEC set: READY=1, then WATCHDOG=1 pings at
    a third of the interval (here even with no broker reachable), then STOPPING=1 on SIGTERM."""
    cfg = write_config(tmp_path, bin_id="bin-sd", source=scenes, model=model_v1, port=free_port())
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(20)
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1500000"}
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "binsight", "-q", "device", "run", "--config", str(cfg)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            messages = [server.recv(4096)]
            assert messages[0].startswith(b"READY=1\nSTATUS=bin bin-sd, model v1")
            pings = []
            while len(pings) < 6:  # no gap longer than WatchdogSec, even while waiting for a broker
                messages.append(server.recv(4096))
                if messages[-1] == b"WATCHDOG=1":
                    pings.append(time.monotonic())
            gaps = [b - a for a, b in itertools.pairwise(pings)]
            assert max(gaps) < 1.5, gaps
            proc.send_signal(signal.SIGTERM)
            while (m := server.recv(4096)) == b"WATCHDOG=1":
                pass
            assert m == b"STOPPING=1"
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
