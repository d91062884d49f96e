"""``ServerRuntime``: ingest and the HTTP server (uvicorn) in one process, started and stopped together."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from binsight.errors import BinsightError
from binsight.server.app import create_app
from binsight.server.config import ServerConfig
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.ingest.service import Ingest
from binsight.server.planning.runner import Planner
from binsight.server.retention import RetentionThread

__all__ = ["ServerRuntime"]

logger = logging.getLogger(__name__)


class ServerRuntime:
    """Migrate, start ingest, serve HTTP; ``stop()`` commits and acknowledges what ingest holds.

    Parameters
    ----------
    config
        The server config.
    http
        False for an ingest-only process (e.g. a second server in a shared-subscription group).
    planner
        Route planner override (default ``binsight.server.routing.plan``).
    """

    def __init__(self, config: ServerConfig, *, http: bool = True, planner: Planner | None = None) -> None:
        self.config = config
        self.engine = make_engine(config.database)
        self.sessions = make_sessionmaker(self.engine)
        self.ingest = Ingest(config, self.sessions)
        self._http = http
        self._planner = planner
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.retention = (
            RetentionThread(self.sessions, config.retention) if config.retention.enabled else None
        )

    @property
    def http_url(self) -> str:
        return f"http://{self.config.http.host}:{self.port}"

    @property
    def port(self) -> int:
        """The HTTP port actually bound (useful with ``port = 0``)."""
        if self._server is not None and self._server.servers:
            return int(self._server.servers[0].sockets[0].getsockname()[1])
        return self.config.http.port

    def start(self, timeout: float = 30.0) -> None:
        upgrade(self.engine)
        self.ingest.start()
        if self.retention is not None:
            self.retention.start()
        if not self._http:
            return
        app = create_app(
            self.config, engine=self.engine, ingest=self.ingest, planner=self._planner, migrate=False
        )
        uv = uvicorn.Config(
            app, host=self.config.http.host, port=self.config.http.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(uv)
        self._thread = threading.Thread(target=self._server.run, name="binsight-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                if self.retention is not None:
                    self.retention.stop()
                self.ingest.stop()
                raise BinsightError(
                    f"HTTP server could not start on {self.config.http.host}:{self.config.http.port} "
                    "(port in use?)"
                )
            if time.monotonic() > deadline:
                raise BinsightError("HTTP server did not start in time")
            time.sleep(0.05)
        logger.info("serving the API and web page on %s", self.http_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        if self.retention is not None:
            self.retention.stop()
        self.ingest.stop()
        self.engine.dispose()
