"""What the API handlers share: config, database, forecasts, plan runner and (in a runtime) ingest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import ServerConfig
from binsight.server.forecast.cache import ForecastCache

if TYPE_CHECKING:
    from binsight.server.ingest.service import Ingest
    from binsight.server.planning.runner import PlanRunner

__all__ = ["AppState", "get_state"]


@dataclass
class AppState:
    config: ServerConfig
    engine: Engine
    sessions: sessionmaker[Session]
    forecasts: ForecastCache
    plans: PlanRunner
    ingest: Ingest | None = None
    web_dir: Path | None = None


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.binsight
    return state
