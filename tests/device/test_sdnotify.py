"""sd_notify over a real UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

import pytest

from binsight.device.sdnotify import Notifier


def test_ready_watchdog_stopping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """READY/STATUS, WATCHDOG (when WatchdogSec is set) and STOPPING reach the socket."""
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        n = Notifier()
        assert n.watchdog_s == 30.0
        assert n.ready("bin b-1")
        assert server.recv(4096) == b"READY=1\nSTATUS=bin b-1"
        assert n.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"
        assert n.stopping()
        assert server.recv(4096) == b"STOPPING=1"


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NOTIFY_SOCKET starting with @ is in the abstract namespace."""
    name = f"binsight-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier().status("hello")
        assert server.recv(100) == b"STATUS=hello"


def test_outside_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NOTIFY_SOCKET: nothing sent, no watchdog; another process's WATCHDOG_PID is ignored."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    n = Notifier()
    assert not n.active and n.watchdog_s is None
    assert not n.ready("x") and not n.watchdog()


def test_agent_under_systemd_sends_ready_and_watchdog(tmp_path: Path, scenes: Path, model_v1: Path) -> None:
    """``device run`` with NOTIFY_SOCKET and WATCHDOG_USEC set: READY=1, then WATCHDOG=1 pings at
    a third of the interval (here even with no broker reachable), then STOPPING=1 on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    from device_support import write_config
    from netutil import free_port

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
