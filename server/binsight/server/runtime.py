"""``ServerRuntime``: the server's one composition root. It builds every part, starts and stops them.

Built here and nowhere else: the database engine and sessions, the broker connection (the server's
one MQTT client), ingest, the plan runner, the forecast cache, the rollout service and its monitor
thread, the retention thread, the web app (handed all of these in :class:`AppState`) and uvicorn.
:meth:`ServerRuntime.serve` is ``binsight server run``: start, tell systemd, watch the threads, stop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import uvicorn

from binsight.errors import BinsightError
from binsight.sdnotify import Notifier
from binsight.server.app import create_app, installed_web_dir
from binsight.server.broker import BrokerConnection
from binsight.server.config import ServerConfig
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.fleet_watch import FleetWatcher
from binsight.server.forecast.cache import ForecastCache
from binsight.server.ingest.service import Ingest
from binsight.server.planning.runner import Planner, PlanRunner
from binsight.server.retention import RetentionThread
from binsight.server.rollout.monitor import RolloutMonitor
from binsight.server.rollout.service import RolloutService
from binsight.server.state import AppState
from binsight.server.watchdog import ThreadWatchdog

__all__ = ["ServerRuntime"]

logger = logging.getLogger(__name__)


class ServerRuntime:
    """Migrate, start ingest and the API's parts, serve HTTP; ``stop()`` commits what ingest holds.

    Parameters
    ----------
    config
        The server config.
    http
        False for an ingest-only process (e.g. a second server in a shared-subscription group): no
        API, no plan runner, no rollout monitor (one server per database watches rollouts).
    mqtt
        False for an API-only process (no broker connection, no ingest): commands, coverage requests
        and announcements answer 503.
    planner
        Route planner override (default ``binsight.server.routing.plan``).
    """

    def __init__(
        self, config: ServerConfig, *, http: bool = True, mqtt: bool = True, planner: Planner | None = None
    ) -> None:
        self.config = config
        self.engine = make_engine(config.database)
        self.sessions = make_sessionmaker(self.engine)
        self.broker = BrokerConnection(config.mqtt, config.ingest) if mqtt else None
        self.ingest = Ingest(config, self.sessions, self.broker) if self.broker is not None else None
        self.retention = (
            RetentionThread(self.sessions, config.retention) if config.retention.enabled else None
        )
        # Alerts and Home Assistant discovery ([alerts], [homeassistant]); idle when both are off.
        self.watcher = FleetWatcher(config, self.sessions, self.broker)
        self.http = http
        self.plans = PlanRunner(self.sessions, planner)
        self.rollout = RolloutService(config, self.sessions, self.broker)
        self.monitor = RolloutMonitor(self.rollout, self.broker)
        self.state = AppState(
            config=config,
            sessions=self.sessions,
            forecasts=ForecastCache(config.forecast),
            plans=self.plans,
            rollout=self.rollout,
            monitor=self.monitor,
            broker=self.broker,
            ingest=self.ingest,
            web_dir=installed_web_dir(),
        )
        self.app = create_app(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False

    @property
    def http_url(self) -> str:
        return f"http://{self.config.http.host}:{self.port}"

    @property
    def port(self) -> int:
        """The HTTP port actually bound (useful with ``port = 0``)."""
        if self._server is not None and self._server.servers:
            return int(self._server.servers[0].sockets[0].getsockname()[1])
        return self.config.http.port

    def start(self, timeout: float = 30.0, *, listen: bool = True) -> None:
        """Migrate and start every part; with ``listen=False`` HTTP is left to the caller (a TestClient).

        Raises
        ------
        BinsightError
            The HTTP port could not be bound, or uvicorn did not start within ``timeout``.
        """
        upgrade(self.engine)
        self._started = True
        if self.ingest is not None:
            self.ingest.start()
        if self.retention is not None:
            self.retention.start()
        self.watcher.start()
        if not self.http:
            return
        self.plans.fail_interrupted()
        # Resume watching a rollout that was live when the server stopped.
        self.monitor.start()
        if listen:
            try:
                self._listen(timeout)
            except BinsightError:
                self.stop()
                raise

    def _listen(self, timeout: float) -> None:
        uv = uvicorn.Config(
            self.app,
            host=self.config.http.host,
            port=self.config.http.port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(uv)
        self._thread = threading.Thread(target=self._server.run, name="binsight-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise BinsightError(
                    f"HTTP server could not start on {self.config.http.host}:{self.config.http.port} "
                    "(port in use?)"
                )
            if time.monotonic() > deadline:
                raise BinsightError("HTTP server did not start in time")
            time.sleep(0.05)
        logger.info("serving the API and web page on %s", self.http_url)

    def threads(self) -> dict[str, Callable[[], bool]]:
        """The threads this runtime started, each with a check that it is still alive."""
        checks: dict[str, Callable[[], bool]] = {}
        if not self._started:
            return checks
        if self.ingest is not None:
            writer = self.ingest.writer
            checks["ingest writer"] = lambda: writer.alive
        if self.broker is not None:
            broker = self.broker
            checks["MQTT loop"] = lambda: broker.loop_alive
        if self.retention is not None:
            retention = self.retention
            checks["retention"] = lambda: retention.running
        if self.watcher.wanted:
            checks["alerts and Home Assistant"] = lambda: self.watcher.alive
        if self.http:
            checks["rollout monitor"] = lambda: self.monitor.alive
        if self._thread is not None:
            http = self._thread
            checks["HTTP server"] = http.is_alive
        return checks

    def serve(self, stop: threading.Event, notifier: Notifier | None = None, check_s: float = 1.0) -> int:
        """``binsight server run``: start, :meth:`watch` until ``stop`` is set (0) or a thread dies
        (1), then tell systemd ``STOPPING=1`` and stop."""
        notifier = notifier or Notifier()
        self.start()
        try:
            return self.watch(stop, notifier, check_s)
        finally:
            notifier.stopping()
            self.stop()

    def watch(self, stop: threading.Event, notifier: Notifier | None = None, check_s: float = 1.0) -> int:
        """On a started runtime: ``READY=1``, then check its threads every ``check_s`` (``WATCHDOG=1``
        while all are alive) until ``stop`` is set (0) or one died (1, its name logged)."""
        notifier = notifier or Notifier()
        notifier.ready(f"serving on {self.http_url}" if self.http else "ingest only")
        dead = ThreadWatchdog(self.threads(), notifier, check_s).watch(stop)
        return 1 if dead else 0

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self.monitor.stop()
        if self._started:
            self.watcher.stop()
        self.plans.shutdown()
        if self.retention is not None:
            self.retention.stop()
        if self.ingest is not None and self._started:
            self.ingest.stop()
        self._started = False
        self.engine.dispose()
