"""The server's watchdog: every thread it runs is checked; a dead one stops the process.

A server whose ingest writer died still answers HTTP but stores nothing; one whose MQTT loop died
neither hears nor sends. Neither heals by itself, so the process exits non-zero and its service
manager restarts it. Under systemd (``Type=notify``, ``WatchdogSec=``) the same loop sends
``WATCHDOG=1``, only while every thread is alive, so a process that hangs is restarted too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from binsight.sdnotify import Notifier

__all__ = ["ThreadWatchdog"]

logger = logging.getLogger(__name__)


class ThreadWatchdog:
    """Checks ``threads`` every ``check_s`` (or a third of systemd's ``WatchdogSec``, if shorter).

    Parameters
    ----------
    threads
        A name per thread (for the log line) and a callable saying whether it is alive.
    notifier
        Where ``WATCHDOG=1`` goes (a no-op outside systemd).
    check_s
        Seconds between checks.
    """

    def __init__(
        self, threads: Mapping[str, Callable[[], bool]], notifier: Notifier, check_s: float = 1.0
    ) -> None:
        if check_s <= 0:
            raise ValueError(f"check_s must be positive, got {check_s}")
        self.threads = dict(threads)
        self.notifier = notifier
        self.interval_s = check_s if notifier.watchdog_s is None else min(check_s, notifier.watchdog_s / 3)

    def dead(self) -> list[str]:
        """The names of the threads that are not alive, in the order given."""
        return [name for name, alive in self.threads.items() if not alive()]

    def watch(self, stop: threading.Event) -> list[str]:
        """Check and ping until ``stop`` is set ([]) or a thread died (its names, each logged)."""
        while True:
            dead = self.dead()
            if dead:
                for name in dead:
                    logger.error("the server's %s thread died: stopping, to be restarted", name)
                return dead
            self.notifier.watchdog()
            if stop.wait(self.interval_s):
                return []
