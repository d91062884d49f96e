"""The rollout's background thread: checks the live rollout and asks for coverage images periodically."""

from __future__ import annotations

import logging
import threading
import time

from binsight.server.db.engine import now_ms
from binsight.server.device_commands import CommandPublisher
from binsight.server.rollout.coverage import coverage_plan, request_coverage
from binsight.server.rollout.drift import drift_report
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.service import RolloutService

__all__ = ["RolloutMonitor"]

logger = logging.getLogger(__name__)


class RolloutMonitor:
    """Runs :meth:`RolloutService.tick` every ``check_interval_s`` (and coverage requests, when enabled).

    Parameters
    ----------
    service
        The rollout state machine.
    commands
        Where coverage requests go (the broker connection); None in an API-only process.
    """

    def __init__(self, service: RolloutService, commands: CommandPublisher | None) -> None:
        self.service = service
        self.commands = commands
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_coverage = time.monotonic() + service.cfg.coverage_interval_s

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="binsight-rollout", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the monitor thread runs (for the server's watchdog)."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        cfg = self.service.cfg
        while not self._stop.wait(cfg.check_interval_s):
            try:
                self.service.tick()
            except RolloutError as exc:
                logger.warning("rollout check: %s", exc)
            except Exception:  # the loop must survive a database hiccup; the next tick retries
                logger.exception("rollout check failed")
            if cfg.coverage_interval_s > 0 and time.monotonic() >= self._next_coverage:
                self._next_coverage = time.monotonic() + cfg.coverage_interval_s
                self.coverage()

    def coverage(self) -> list[dict[str, object]]:
        """One round of coverage requests (drifted bins first); [] without MQTT."""
        if self.commands is None:
            return []
        svc = self.service
        now = now_ms()
        drifted = {d["bin_id"] for d in drift_report(svc.sessions, svc.cfg, now) if d["flagged"]}
        plan = coverage_plan(svc.sessions, svc.config, now, drifted)
        return request_coverage(svc.sessions, self.commands, plan, svc.cfg.coverage_per_round)
