"""/healthz, /metrics, /openapi.json and the web page need no token."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from server_helpers import Api, item, reading

from binsight.server.db.engine import now_ms
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.ingest.writer import DEGRADED_AFTER, BatchWriter
from binsight.version import __version__


def test_healthz_and_openapi(api: Api) -> None:
    """Health answers without a token; OpenAPI documents the contract's paths and the bearer scheme."""
    r = api.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    spec = api.client.get("/openapi.json").json()
    for path in (
        "/api/bins",
        "/api/bins/{bin_id}/history",
        "/api/devices",
        "/api/devices/{bin_id}/commands",
        "/api/plans",
        "/api/plans/latest",
        "/api/plans/{plan_id}",
        "/api/labels/queue",
        "/api/images/{image_id}/label",
        "/api/labels/export",
        "/api/models",
        "/api/me",
    ):
        assert path in spec["paths"], path
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "fill_ts" in spec["components"]["schemas"]["BinOut"]["properties"]


# A sample line of the text format: name, labels (quoted values may hold braces: route templates), value.
LINE = r'^[a-z_]+(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? \S+$'


def test_metrics_reports_devices_and_gaps(api: Api) -> None:
    """/metrics is Prometheus text with devices and missing readings from the database."""
    with api.sessions() as s, s.begin():
        write_batch(
            s, [item("reading", "m1", reading("m1", s_)) for s_ in (1, 2, 5)], BinRegistry(), False, now_ms()
        )
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert re.search(r"^binsight_devices 1\.0$", r.text, re.M)
    assert re.search(r"^binsight_devices_online 1\.0$", r.text, re.M)
    assert re.search(r"^binsight_seq_gaps 2\.0$", r.text, re.M)
    for line in r.text.splitlines():
        assert line.startswith("#") or re.match(LINE, line), line
    ing = api.get("/api/ingest", "operator").json()
    assert ing == {"rejects": {}, "seq_gaps": 2, "readings": 3}


def test_web_page_served(api: Api) -> None:
    """/ serves the web page (or a pointer to /docs when the static files are not installed)."""
    r = api.client.get("/")
    assert (r.status_code == 200 and "<html" in r.text.lower()) or "<title>binsight" in r.text


@pytest.fixture
def with_ingest(api: Api) -> Iterator[BatchWriter]:
    """The API's state with an ingest part (its writer not started) instead of none."""
    state = api.client.app.state.binsight  # type: ignore[attr-defined]
    rejects = RejectLog()
    writer = BatchWriter(
        api.sessions, queue.Queue(), rejects, batch_size=10, linger_ms=1, registration_required=False
    )
    connected = threading.Event()
    connected.set()
    state.ingest = SimpleNamespace(
        writer=writer, rejects=rejects, broker=SimpleNamespace(connected=connected), queue_depth=lambda: 0
    )
    yield writer
    state.ingest = None


def test_healthz_degraded_while_the_writer_fails(api: Api, with_ingest: BatchWriter) -> None:
    """/healthz answers 503 "degraded", naming the error, once the writer failed DEGRADED_AFTER times
    in a row at one batch; ok (200) again after its next commit. /metrics shows the failures."""
    stats = with_ingest.stats
    assert api.client.get("/healthz").json() == {"status": "ok", "version": __version__, "mqtt": True}
    stats.failures_in_a_row, stats.last_error_type = DEGRADED_AFTER - 1, "OperationalError"
    assert api.client.get("/healthz").status_code == 200
    stats.failures_in_a_row = DEGRADED_AFTER
    r = api.client.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert "5 times in a row (OperationalError)" in r.json()["ingest"]
    body = api.client.get("/metrics").text
    assert re.search(rf"^binsight_ingest_failures_in_a_row {DEGRADED_AFTER}\.0$", body, re.M)
    for name in ("binsight_ingest_data_errors_total", "binsight_seq_jumps_total"):
        assert re.search(rf"^{name} 0\.0$", body, re.M), name
    assert re.search(r'^binsight_messages_rejected_total\{reason="db_refused"\} 0\.0$', body, re.M)
    stats.failures_in_a_row = 0
    assert api.client.get("/healthz").json()["status"] == "ok"


def test_seq_gaps_stay_sane_after_a_wild_seq(api: Api) -> None:
    """A device's seq 2**63 - 1 is rejected; 2**53 - 1 (the largest taken) is a counted jump: the
    seq-gap gauge and /api/ingest read the real gap (2), not 9.2e18 or 9e15."""
    items = [item("reading", "w1", reading("w1", s_)) for s_ in (1, 2, 5)]
    items += [
        item("reading", "w1", reading("w1", 2**63 - 1)),
        item("reading", "w1", reading("w1", 2**53 - 1)),
    ]
    with api.sessions() as s, s.begin():
        write_batch(s, items, BinRegistry(), False, now_ms())
    assert re.search(r"^binsight_seq_gaps 2\.0$", api.client.get("/metrics").text, re.M)
    ing = api.get("/api/ingest", "operator").json()
    assert ing == {"rejects": {"number_out_of_range": 1}, "seq_gaps": 2, "readings": 4}


def test_docs_offline(api: Api) -> None:
    """/docs is one page rendered from the schema: no script, nothing loaded from elsewhere; /redoc
    (a CDN page in FastAPI) is not served."""
    r = api.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for path in ("/api/bins", "/api/plans/{plan_id}", "/api/devices/{bin_id}/commands"):
        assert f"<code>{path}</code>" in r.text, path
    assert "<script" not in r.text.lower() and "src=" not in r.text and "://" not in r.text
    assert api.client.get("/redoc").status_code == 404


# Every metric /metrics exposed before it was rendered by prometheus_client (the names are the
# contract dashboards and alert rules are written against).
METRICS_BEFORE = [
    "binsight_devices",
    "binsight_devices_online",
    "binsight_seq_gaps",
    "binsight_readings_stored",
    "binsight_images_stored",
    "binsight_image_bytes_stored",
    "binsight_images_pruned_total",
    "binsight_image_bytes_pruned_total",
    "binsight_image_prune_runs_total",
    "binsight_image_prune_skipped_total",
    "binsight_image_prune_errors_total",
    "binsight_image_prune_last_success_timestamp_seconds",
    "binsight_http_rejected_total",
    "binsight_readings_ingested_total",
    "binsight_readings_duplicate_total",
    "binsight_messages_rejected_total",
    "binsight_seq_jumps_total",
    "binsight_ingest_batches_total",
    "binsight_ingest_db_errors_total",
    "binsight_ingest_data_errors_total",
    "binsight_ingest_failures_in_a_row",
    "binsight_ingest_queue_depth",
    "binsight_ingest_lag_seconds",
    "binsight_mqtt_connected",
]


def _sample(body: str, name: str, labels: str = "") -> float | None:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", body, re.M)
    return float(found.group(1)) if found else None


def test_metrics_keep_every_name_and_add_latency_and_process(api: Api, with_ingest: BatchWriter) -> None:
    """All the old names, typed as before; latency histograms and the process collector; the HTTP
    histogram labels requests by route template, never by raw path."""
    api.get("/api/me", "operator")
    assert api.client.get("/no/such/page-12345").status_code == 404
    body = api.client.get("/metrics").text
    for name in METRICS_BEFORE:
        kind = "counter" if name.endswith("_total") else "gauge"
        assert f"# TYPE {name} {kind}\n" in body, name
    for name in (
        "binsight_ingest_batch_seconds",
        "binsight_ingest_delay_seconds",
        "binsight_plan_solve_seconds",
    ):
        assert f"# TYPE {name} histogram\n" in body, name
    assert "process_cpu_seconds_total" in body and "python_info{" in body
    route = '{method="GET",route="/api/me",status="2xx"}'
    assert (_sample(body, "binsight_http_request_duration_seconds_count", route) or 0) >= 1
    assert (
        _sample(
            body,
            "binsight_http_request_duration_seconds_count",
            route.replace("/api/me", "unmatched").replace("2xx", "4xx"),
        )
        is not None
    )
    assert "page-12345" not in body


def test_ingest_and_plan_latency_observed(with_ingest: BatchWriter) -> None:
    """A committed batch is one observation of the transaction time and one per live reading of the
    capture-to-commit delay; a plan is one of solving time, by outcome."""
    from binsight.server.ingest.writer import Queued
    from binsight.server.latency import REGISTRY
    from binsight.server.planning.runner import PlanRunner

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    batches, delays = (
        value("binsight_ingest_batch_seconds_count"),
        value("binsight_ingest_delay_seconds_count"),
    )
    with_ingest.write([Queued(item("reading", "lat-1", reading("lat-1", s)), None) for s in (1, 2)])
    assert value("binsight_ingest_batch_seconds_count") == batches + 1
    assert value("binsight_ingest_delay_seconds_count") == delays + 2

    def broken(problem: dict[str, object], limit: float) -> dict[str, object]:
        raise RuntimeError("no solver today")

    failed = value("binsight_plan_solve_seconds_count", {"outcome": "failed"})
    runner = PlanRunner(with_ingest.sessions, planner=broken)
    _plan_id, future = runner.submit({}, {}, [], 1.0, None)
    future.result(timeout=30)
    runner.shutdown()
    assert value("binsight_plan_solve_seconds_count", {"outcome": "failed"}) == failed + 1
