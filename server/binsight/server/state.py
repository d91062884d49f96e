"""What the API handlers share, built by :class:`~binsight.server.runtime.ServerRuntime`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import ServerConfig
from binsight.server.forecast.cache import ForecastCache

if TYPE_CHECKING:
    from binsight.server.broker import BrokerConnection
    from binsight.server.ingest.service import Ingest
    from binsight.server.planning.runner import PlanRunner
    from binsight.server.rollout.monitor import RolloutMonitor
    from binsight.server.rollout.service import RolloutService

__all__ = ["AppState", "get_state"]


@dataclass
class AppState:
    """The server's parts, as the routes see them (``app.state.binsight``).

    ``broker`` and ``ingest`` are None in a process without MQTT (API only): routes that need the
    broker answer 503 there.
    """

    config: ServerConfig
    sessions: sessionmaker[Session]
    forecasts: ForecastCache
    plans: PlanRunner
    rollout: RolloutService
    monitor: RolloutMonitor
    broker: BrokerConnection | None = None
    ingest: Ingest | None = None
    web_dir: Path | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.binsight
    return state
