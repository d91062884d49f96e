"""``create_app(config)``: the FastAPI application (API, metrics, web page, model downloads)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from binsight.server.api import bins, devices, labels, meta, models, plans, rollout
from binsight.server.config import ServerConfig
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.forecast.cache import ForecastCache
from binsight.server.planning.runner import Planner, PlanRunner
from binsight.server.state import AppState
from binsight.version import __version__

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from binsight.server.ingest.service import Ingest

__all__ = ["WEB_DIR", "create_app"]

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web") / "static"


def create_app(
    config: ServerConfig,
    *,
    engine: Engine | None = None,
    ingest: Ingest | None = None,
    planner: Planner | None = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. Migrates the database unless ``migrate=False`` (the runtime already did).

    Parameters
    ----------
    config
        The server config.
    engine
        Share the runtime's engine; by default one is made from ``config.database``.
    ingest
        The running ingest, for metrics and device commands; None for an API-only process.
    planner
        ``plan(problem, time_limit_s) -> result``; by default ``binsight.server.routing.plan``.
    """
    engine = engine or make_engine(config.database)
    if migrate:
        upgrade(engine)
    sessions = make_sessionmaker(engine)
    runner = PlanRunner(sessions, planner)
    runner.fail_interrupted()
    state = AppState(
        config=config,
        engine=engine,
        sessions=sessions,
        forecasts=ForecastCache(config.forecast),
        plans=runner,
        ingest=ingest,
        web_dir=WEB_DIR if (WEB_DIR / "index.html").is_file() else None,
    )
    app = FastAPI(
        title="binsight",
        version=__version__,
        description="Fill levels of waste containers, forecasts and truck routes. "
        "Everything under /api needs `Authorization: Bearer <token>` (`binsight server token create`).",
    )
    app.state.binsight = state
    for module in (meta, bins, devices, plans, labels, models, rollout):
        app.include_router(module.router)
    if state.web_dir is not None:
        index = state.web_dir / "index.html"
        app.mount("/static", StaticFiles(directory=state.web_dir), name="static")

        @app.get("/", include_in_schema=False)
        def web_page() -> FileResponse:
            return FileResponse(index, media_type="text/html")

    else:

        @app.get("/", include_in_schema=False)
        def no_web_page() -> HTMLResponse:
            return HTMLResponse(
                "<!doctype html><title>binsight</title><p>binsight server: the web page is not installed; "
                'the API is described at <a href="/docs">/docs</a>.</p>'
            )

    app.router.on_shutdown.append(runner.shutdown)
    return app
