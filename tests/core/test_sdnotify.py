"""sd_notify over a real UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from binsight.sdnotify import Notifier


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
