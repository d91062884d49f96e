"""This process's latency histograms and process metrics (prometheus_client), and the HTTP timer.

Every server process has its own: ingest transactions, capture-to-commit delay, HTTP requests, plan
solving, and prometheus_client's process and Python collectors (CPU, memory, file descriptors, GC).
``/metrics`` (:mod:`binsight.server.metrics`) exposes them with the metrics read from the stats
objects and the database. Histograms are summed across processes by Prometheus
(``sum without (instance) (rate(..._bucket[5m]))``): each process is its own scrape target.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HTTP_SECONDS",
    "INGEST_BATCH_SECONDS",
    "INGEST_DELAY_SECONDS",
    "PLAN_SECONDS",
    "REGISTRY",
    "RequestTimer",
]

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

INGEST_BATCH_SECONDS = Histogram(
    "binsight_ingest_batch_seconds",
    "One ingest database transaction, from start to acknowledged (committed batches only).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
INGEST_DELAY_SECONDS = Histogram(
    "binsight_ingest_delay_seconds",
    "Capture to commit of each live reading (outbox replays after an outage are not live).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "binsight_http_request_duration_seconds",
    "HTTP requests by method, route template and status class (2xx, 4xx, ...).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
PLAN_SECONDS = Histogram(
    "binsight_plan_solve_seconds",
    "Route plan solving, by outcome (done, failed).",
    ["outcome"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestTimer:
    """ASGI middleware: times each HTTP request into :data:`HTTP_SECONDS`.

    The route label is the matched route's template (``/api/bins/{bin_id}/history``), never the raw
    path, so a scan of random URLs cannot grow the label set: unmatched requests are ``unmatched``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_SECONDS.labels(method, route, f"{status[0] // 100}xx").observe(time.perf_counter() - t0)
