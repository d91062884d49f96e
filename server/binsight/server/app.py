"""``create_app(state)``: the FastAPI application (API, metrics, web page, model downloads)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from binsight.server.api import (
    bins,
    devices,
    labels,
    manifests,
    meta,
    models,
    plans,
    reports,
    rollout,
    tokens,
)
from binsight.server.api_docs import mount_docs
from binsight.server.http_limits import BodyLimitMiddleware
from binsight.server.latency import RequestTimer
from binsight.server.state import AppState
from binsight.version import __version__

__all__ = ["WEB_DIR", "create_app", "installed_web_dir"]

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web") / "static"


def installed_web_dir() -> Path | None:
    """The web page's folder, or None when it is not installed (then ``/`` says so)."""
    return WEB_DIR if (WEB_DIR / "index.html").is_file() else None


def create_app(state: AppState) -> FastAPI:
    """The routes and the web page over ``state``; builds and starts nothing.

    :class:`~binsight.server.runtime.ServerRuntime` builds the parts (database, broker connection,
    ingest, plan runner, rollout service) and runs them; this only wires them to HTTP. Request bodies
    pass :class:`~binsight.server.http_limits.BodyLimitMiddleware` first: a size limit per route, and
    the caller authenticated before a body is read.
    """
    app = FastAPI(
        title="binsight",
        version=__version__,
        description="Fill levels of waste containers, forecasts and truck routes. "
        "Everything under /api needs `Authorization: Bearer <token>` (`binsight server token create`).",
        # Swagger UI and ReDoc load from a CDN: /docs is rendered offline instead (api_docs.py).
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)
    app.state.binsight = state
    app.add_middleware(BodyLimitMiddleware, sessions=state.sessions)
    app.add_middleware(RequestTimer)  # outermost: refused bodies are timed too
    for module in (meta, bins, devices, plans, manifests, tokens, labels, models, rollout, reports):
        app.include_router(module.router)
    if state.web_dir is not None:
        index = state.web_dir / "index.html"
        app.mount("/static", StaticFiles(directory=state.web_dir), name="static")

        @app.get("/", include_in_schema=False)
        def web_page() -> FileResponse:
            return FileResponse(index, media_type="text/html")

        # The service worker that keeps the page usable offline must be served from "/" to control it.
        worker = state.web_dir / "sw.js"

        @app.get("/sw.js", include_in_schema=False)
        def service_worker() -> FileResponse:
            return FileResponse(worker, media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    else:

        @app.get("/", include_in_schema=False)
        def no_web_page() -> HTMLResponse:
            return HTMLResponse(
                "<!doctype html><title>binsight</title><p>binsight server: the web page is not installed; "
                'the API is described at <a href="/docs">/docs</a>.</p>'
            )

    return app
