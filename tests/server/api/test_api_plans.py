"""POST /api/plans builds the route problem and solves it with the real planner; exports follow."""

from __future__ import annotations

import csv
import io
import json
import time
import xml.etree.ElementTree as ET

from server_helpers import Api, item, reading

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.engine import now_ms
from binsight.server.ingest.store import BinRegistry, write_batch


def _seed(api: Api) -> None:
    now = now_ms()
    rows = [BinRow(f"p{i}", 52.37 + 0.002 * i, 4.89 + 0.003 * (i % 4), 1000) for i in range(8)]
    rows.append(BinRow("far-away-no-reading", 52.5, 4.9, 1000))
    fills = [0.95, 0.9, 0.85, 0.5, 0.45, 0.1, 0.05, 0.92]
    items = [item("reading", f"p{i}", reading(f"p{i}", 0, f, ts=now - 60_000)) for i, f in enumerate(fills)]
    items.append(item("reading", "unplaced", reading("unplaced", 0, 0.99)))
    with api.sessions() as s, s.begin():
        import_bins(s, rows)
        write_batch(s, items, BinRegistry(), False, now)


def _wait(api: Api, plan_id: str) -> dict:
    for _ in range(300):
        p = api.get(f"/api/plans/{plan_id}", "operator").json()
        if p["status"] != "running":
            return p
        time.sleep(0.1)
    raise AssertionError("plan did not finish")


def test_plan_end_to_end(api: Api) -> None:
    """Full bins are mandatory and routed; empty ones are left out with a reason; exports parse."""
    _seed(api)
    r = api.post("/api/plans", "operator", json={"time_limit_s": 1, "threshold": 0.8})
    assert r.status_code == 202 and r.json()["status"] == "running"
    plan = _wait(api, r.json()["id"])
    assert plan["status"] == "done", plan["error"]
    assert api.get("/api/plans/latest").json()["id"] == plan["id"]
    problem = api.get(f"/api/plans/{plan['id']}/problem").json()
    mandatory = {b["id"] for b in problem["bins"] if b["mandatory"]}
    assert mandatory == {"p0", "p1", "p2", "p7"}
    assert {b["id"] for b in problem["bins"]} == mandatory  # p3, p4: no forecast says they fill soon
    assert all(b["volume_l"] == round(1000 * b["fill"], 1) for b in problem["bins"])
    res = plan["result"]
    visited = {s["id"] for route in res["routes"] for s in route["stops"] if s["kind"] == "bin"}
    assert mandatory <= visited
    skipped = {s["id"]: s["reason"] for s in res["skipped"]}
    assert "no position" in skipped["unplaced"] and "no usable reading" in skipped["far-away-no-reading"]
    assert "below optional_min_fill" in skipped["p5"]
    assert skipped["p3"] == "not due yet (not full soon): a later visit serves it"

    csv_rows = list(csv.DictReader(io.StringIO(api.get(f"/api/plans/{plan['id']}/export.csv").text)))
    assert {row["id"] for row in csv_rows if row["kind"] == "bin"} == visited
    gj = json.loads(api.get(f"/api/plans/{plan['id']}/export.geojson").text)
    assert gj["type"] == "FeatureCollection"
    assert sum(f["geometry"]["type"] == "LineString" for f in gj["features"]) == len(res["routes"])
    gpx = ET.fromstring(api.get(f"/api/plans/{plan['id']}/export.gpx").text)
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert len(gpx.findall("g:rte", ns)) == len(res["routes"])


def test_plan_errors(api: Api) -> None:
    """Unknown fields are 422; unknown trucks 409; unknown plan 404; export of a missing plan 404."""
    assert api.post("/api/plans", json={"colour": "red"}).status_code == 422
    r = api.post("/api/plans", json={"trucks": ["truck-9"]})
    assert r.status_code == 409 and "truck-9" in r.json()["detail"]
    assert api.post("/api/plans", json={"trucks": 5}).status_code == 409
    assert api.get("/api/plans/nope").status_code == 404
    assert api.get("/api/plans/nope/export.gpx").status_code == 404
