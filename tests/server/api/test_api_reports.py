"""GET /api/reports/savings: lifts, fill at lift, overflows and km from the server's own history."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

from server_helpers import Api, item, reading

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.models import Plan
from binsight.server.ingest.store import BinRegistry, write_batch

HOUR = 3_600_000
T0 = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday


def _seed(api: Api) -> None:
    """Bin a: 10%/day from 0.2, lifted at 0.9 on day 7, then 0.05 again. Bin b: full to the brim 3 h."""
    items = []
    for h in range(0, 12 * 24, 3):
        f = 0.2 + 0.1 * h / 24 if h < 7 * 24 else 0.05 + 0.1 * (h - 7 * 24) / 24
        items.append(item("reading", "a", reading("a", h, round(f, 3), ts=T0 + h * HOUR)))
    for i, f in enumerate([0.5, 0.9, 0.97, 0.99, 0.5]):
        items.append(item("reading", "b", reading("b", i, f, ts=T0 + int((30 + i * 1.5) * HOUR))))
    with api.sessions() as s, s.begin():
        import_bins(s, [BinRow("a", 52.0, 4.0, 1000), BinRow("b", 52.1, 4.1, 1000)])
        write_batch(s, items, BinRegistry(), False, T0 + 12 * 24 * HOUR)
        routes = [{"distance_km": 12.5}, {"distance_km": 7.5}]
        for i, (day, km) in enumerate(
            [("2026-11-03", routes[:1]), ("2026-11-03", routes), ("2026-12-30", routes)]
        ):
            s.add(Plan(id=f"p{i}", status="done", created_at=T0 + i, request={}, problem={"name": day},
                       result={"routes": km}))  # fmt: skip


def test_savings_report(api: Api) -> None:
    """Figures from readings and plans; the fixed schedule replayed on the measured rate; CSV alike."""
    _seed(api)
    r = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13", "operator")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["start"], rep["end"], rep["bins"]) == ("2026-11-02", "2026-11-13", 2)
    assert rep["lifts"] == 2  # a on day 7, b when it dropped from 0.99 to 0.5
    assert abs(rep["mean_fill_at_lift"] - (0.9 + 0.99) / 2) < 0.01
    assert rep["lifts_under_50"] == 0
    assert rep["overflow_events"] == 1 and rep["overflow_hours"] == 1.5
    assert rep["km_by_day"] == {"2026-11-03": 20.0}  # the last finished plan of the day; December is out
    # a fills 10%/day: lifted every 8 days at 80% by the fixed schedule; observed 11.9 days -> 1.5.
    assert (
        rep["fixed_bins"] == 1
        and rep["fixed_lifts"] == 1
        and abs(rep["fixed_mean_fill_at_lift"] - 0.8) < 0.02
    )
    assert any(
        "would have needed 1 lift(s) over the days each was observed: 1 fewer" in line
        for line in rep["summary"]
    )
    text = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13&format=csv", "operator").text
    rows = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(text))}
    assert rows["lifts"] == "2" and rows["km 2026-11-03"] == "20.0" and rows["fixed_lifts"] == "1"


def test_savings_report_errors(api: Api) -> None:
    """Who may read it, and bad periods named."""
    assert api.get("/api/reports/savings", "labeller").status_code == 403
    assert api.get("/api/reports/savings", "admin").status_code == 200
    r = api.get("/api/reports/savings?from=2026-11-10&to=2026-11-01")
    assert r.status_code == 422 and "after" in r.json()["detail"]
    assert api.get("/api/reports/savings?from=2026-01-01&to=2026-12-31").status_code == 422
    assert api.get("/api/reports/savings?format=xml").status_code == 422
    assert date.fromisoformat(api.get("/api/reports/savings").json()["end"])


def test_savings_count_the_published_plan_and_the_drivers_reports(api: Api) -> None:
    """A day's km are its published plan's (what was driven), not a later proposal's; the drivers'
    reports are counted per status, a stop reported twice by its last report."""
    from binsight.server.db.models import StopUpdate

    _seed(api)
    with api.sessions() as s, s.begin():
        p0 = s.get(Plan, "p0")
        assert p0 is not None
        p0.published_at, p0.service_day = T0 + 10, "2026-11-03"
        s.add(Plan(id="p9", status="done", created_at=T0 + 9, request={}, problem={"name": "2026-11-03"},
                   result={"routes": [{"distance_km": 99.0}]}))  # fmt: skip
        for i, (bin_id, status) in enumerate([("a", "blocked"), ("a", "done"), ("b", "overflowing")]):
            s.add(
                StopUpdate(plan_id="p0", truck="t1", bin_id=bin_id, status=status, ts=T0 + HOUR + i, by="dan")
            )
    rep = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13", "operator").json()
    assert rep["km_by_day"] == {"2026-11-03": 12.5}
    assert rep["driver_reports"] == {"done": 1, "blocked": 0, "overflowing": 1}
    assert "Drivers reported 1 stop(s) done, 0 blocked (not lifted) and 1 overflowing." in rep["summary"]
    text = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13&format=csv", "operator").text
    rows = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(text))}
    assert rows["driver_reports overflowing"] == "1" and rows["km 2026-11-03"] == "12.5"


def test_savings_report_routes_the_fixed_schedule(api: Api) -> None:
    """The fixed schedule replayed on the readings is routed on the fleet: its km per service day."""
    import numpy as np

    from binsight.server.routing.distances import haversine_m

    _seed(api)
    r = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13", "operator")
    assert r.status_code == 200, r.text
    rep = r.json()
    # a: 0.2 at the first reading, 10%/day, so "lifted" 2 days before; due every 8 days: 8 November.
    assert list(rep["fixed_km_by_day"]) == ["2026-11-08"]
    # One bin: depot -> a -> tip -> depot, haversine x the default detour 1.3.
    stops = [(52.37, 4.89), (52.0, 4.0), (52.40, 4.95), (52.37, 4.89)]
    m = haversine_m(np.array([p[0] for p in stops]), np.array([p[1] for p in stops]))
    expected = sum(float(m[i, i + 1]) for i in range(3)) * 1.3 / 1000
    assert abs(rep["fixed_km_by_day"]["2026-11-08"] - expected) < 0.5
    assert abs(rep["fixed_km"] - rep["fixed_km_by_day"]["2026-11-08"]) < 0.1
    assert any("routed on the same trucks, would have needed" in line for line in rep["summary"])
    # Like for like: the seeded plan's day (3 November) is one on which the fixed schedule drives no truck.
    assert list(rep["km_by_day"]) == ["2026-11-03"] and rep["fixed_km_on_planned_days"] == 0.0
    text = api.get("/api/reports/savings?from=2026-11-02&to=2026-11-13&format=csv", "operator").text
    rows = {row["figure"]: row["value"] for row in csv.DictReader(io.StringIO(text))}
    assert float(rows["fixed km 2026-11-08"]) == rep["fixed_km_by_day"]["2026-11-08"]
