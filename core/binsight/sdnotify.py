"""systemd's sd_notify protocol: one datagram to ``$NOTIFY_SOCKET``; no dependency needed.

Both long-running processes speak it: the device agent (``WATCHDOG=1`` from its capture loop) and
the server (``WATCHDOG=1`` from its thread watchdog, only while every thread it runs is alive), so
``WatchdogSec=`` restarts a hung or half-dead process. ``READY=1`` once it runs, ``STATUS=...`` for
``systemctl status``, ``STOPPING=1``. Outside systemd every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier"]

logger = logging.getLogger(__name__)


class Notifier:
    """Reads ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` once, at construction."""

    def __init__(self, enabled: bool = True) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "") if enabled else ""
        # A leading "@" names a socket in the abstract namespace.
        self.address = "\0" + addr[1:] if addr.startswith("@") else addr
        self.watchdog_s: float | None = None
        usec = os.environ.get("WATCHDOG_USEC") if enabled else None
        pid = os.environ.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (pid is None or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6

    @property
    def active(self) -> bool:
        return bool(self.address)

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; False if not sent."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode("utf-8"))
        except OSError as exc:
            logger.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.watchdog_s is not None and self.notify("WATCHDOG=1")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")
