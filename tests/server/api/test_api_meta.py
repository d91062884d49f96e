"""/healthz, /metrics, /openapi.json and the web page need no token."""

from __future__ import annotations

import re

from server_helpers import Api, item, reading

from binsight.server.db.engine import now_ms
from binsight.server.ingest.store import BinRegistry, write_batch


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


def test_metrics_reports_devices_and_gaps(api: Api) -> None:
    """/metrics is Prometheus text with devices and missing readings from the database."""
    with api.sessions() as s, s.begin():
        write_batch(
            s, [item("reading", "m1", reading("m1", s_)) for s_ in (1, 2, 5)], BinRegistry(), False, now_ms()
        )
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert re.search(r"^binsight_devices 1$", r.text, re.M)
    assert re.search(r"^binsight_devices_online 1$", r.text, re.M)
    assert re.search(r"^binsight_seq_gaps 2$", r.text, re.M)
    for line in r.text.splitlines():
        assert line.startswith("#") or re.match(r"^[a-z_]+(\{[^}]*\})? \S+$", line), line
    ing = api.get("/api/ingest", "operator").json()
    assert ing == {"rejects": {}, "seq_gaps": 2, "readings": 3}


def test_web_page_served(api: Api) -> None:
    """/ serves the web page (or a pointer to /docs when the static files are not installed)."""
    r = api.client.get("/")
    assert (r.status_code == 200 and "<html" in r.text.lower()) or "<title>binsight" in r.text
