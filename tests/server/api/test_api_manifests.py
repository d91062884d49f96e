"""Publishing a plan, the drivers' manifests of the published plan, their stop reports, and tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_helpers import Api
from test_api_plans import _seed, _wait

from binsight.server.db.models import Bin, Plan
from binsight.server.planning.publish import idle_trucks


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Publishing is plain rows and JSON: SQLite is enough (the storage tests cover both backends)."""
    return f"sqlite:///{tmp_path / 'manifests.db'}"


def _plan(api: Api, **body: object) -> dict:
    r = api.post("/api/plans", "operator", json={"time_limit_s": 1, "threshold": 0.8, **body})
    assert r.status_code == 202, r.text
    plan = _wait(api, r.json()["id"])
    assert plan["status"] == "done", plan["error"]
    return plan


def _bin_stops(route: dict) -> list[str]:
    return [s["id"] for s in route["stops"] if s["kind"] == "bin"]


def test_driver_sees_only_the_published_plan(api: Api) -> None:
    """Nothing is published: 404 saying so. Once published, a newer plan does not move the manifest."""
    _seed(api)
    first = _plan(api, trucks=["truck-1"])
    assert first["service_day"] == first["result"]["name"] and first["published_at"] is None
    r = api.get("/api/manifests/truck-1", "driver")
    assert r.status_code == 404 and "no plan is published" in r.json()["detail"]

    pub = api.post(f"/api/plans/{first['id']}/publish", "operator").json()
    assert pub["published_at"] and pub["published_by"] == "operator-test"
    m = api.get("/api/manifests/truck-1", "driver").json()
    assert m["plan_id"] == first["id"] and m["service_day"] == first["service_day"]
    stops = _bin_stops(m["route"])
    assert stops == _bin_stops(first["result"]["routes"][0])
    bin_stop = next(s for s in m["route"]["stops"] if s["kind"] == "bin")
    assert bin_stop["navigate"].startswith(f"geo:{bin_stop['lat']:.6f},{bin_stop['lon']:.6f}")

    second = _plan(api, trucks=["truck-1", "truck-2"])
    assert api.get("/api/plans/latest").json()["id"] == second["id"]
    assert api.get("/api/manifests/truck-1", "driver").json()["plan_id"] == first["id"]


def test_manifest_stops_carry_the_address(api: Api) -> None:
    """Each bin stop has its name and street address, and its navigate link pins both (geo: URI)."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1"])
    api.post(f"/api/plans/{plan['id']}/publish", "operator")
    first = _bin_stops(plan["result"]["routes"][0])[0]
    with api.sessions() as s, s.begin():
        b = s.get(Bin, first)
        assert b is not None
        b.name, b.address = "Dom north", "Domplein 29, Utrecht"
    m = api.get("/api/manifests/truck-1", "driver").json()
    stop = next(s for s in m["route"]["stops"] if s.get("id") == first)
    assert (stop["name"], stop["address"]) == ("Dom north", "Domplein 29, Utrecht")
    assert stop["navigate"] == (
        f"geo:{stop['lat']:.6f},{stop['lon']:.6f}?q={stop['lat']:.6f},{stop['lon']:.6f}"
        "(Domplein%2029%2C%20Utrecht%20%28Dom%20north%29)"
    )
    other = next(s for s in m["route"]["stops"] if s["kind"] == "bin" and s["id"] != first)
    assert other["address"] is None and other["navigate"].endswith(f"({other['id']})")
    assert api.get("/api/bins", "operator").json()[0].keys() >= {"address"}


def test_truck_without_route_says_so(api: Api) -> None:
    """A truck outside the published plan gets no route and a message, never another truck's stops."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1"])
    api.post(f"/api/plans/{plan['id']}/publish", "operator")
    m = api.get("/api/manifests/truck-2", "operator").json()
    assert m["route"] is None and "truck-2 is not in the published plan" in m["message"]
    assert m["trucks"] == ["truck-1"]


def test_idle_trucks_named() -> None:
    """A truck of the plan's fleet with no bin stop (only depot legs, or no route) is idle."""
    plan = Plan(
        id="x",
        status="done",
        created_at=0,
        request={},
        problem={"name": "2026-12-04", "trucks": [{"id": "t1"}, {"id": "t2"}, {"id": "t3"}]},
        result={
            "routes": [
                {"truck": "t1", "stops": [{"kind": "depot"}, {"kind": "bin"}, {"kind": "depot"}]},
                {"truck": "t2", "stops": [{"kind": "depot"}, {"kind": "depot"}]},
            ]
        },
    )
    assert idle_trucks(plan) == ["t2", "t3"]


def test_driver_role_is_confined(api: Api) -> None:
    """A driver reads its own truck's manifest only, and none of the dispatcher's routes."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1"])
    api.post(f"/api/plans/{plan['id']}/publish", "operator")
    assert api.get("/api/me", "driver").json() == {
        "name": "driver-test",
        "role": "driver",
        "truck": "truck-1",
    }
    r = api.get("/api/manifests/truck-2", "driver")
    assert r.status_code == 403 and "truck-1" in r.json()["detail"]
    for path in ("/api/plans/latest", f"/api/plans/{plan['id']}", "/api/bins", "/api/stop-reports"):
        assert api.get(path, "driver").status_code == 403, path
    assert api.post(f"/api/plans/{plan['id']}/publish", "driver").status_code == 403


def test_stop_reports(api: Api) -> None:
    """done / blocked / overflowing are stored with time and who; a stop not on the route is refused."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1"])
    api.post(f"/api/plans/{plan['id']}/publish", "operator")
    stops = _bin_stops(api.get("/api/manifests/truck-1", "driver").json()["route"])
    r = api.post(f"/api/manifests/truck-1/stops/{stops[0]}", "driver", json={"status": "done"})
    assert r.status_code == 201 and r.json()["by"] == "driver-test" and r.json()["ts"] > 0
    r = api.post(
        f"/api/manifests/truck-1/stops/{stops[1]}", "driver", json={"status": "blocked", "note": "car parked"}
    )
    assert r.status_code == 201
    assert (
        api.post(f"/api/manifests/truck-1/stops/{stops[0]}", "driver", json={"status": "gone"}).status_code
        == 422
    )
    # A report that waited on the phone keeps the time it was made (within a day), else arrival time.
    from binsight.server.db.engine import now_ms

    made = now_ms() - 3_600_000
    third = f"/api/manifests/truck-1/stops/{stops[2]}"
    r = api.post(third, "driver", json={"status": "done", "made_at": made})
    assert r.status_code == 201 and r.json()["ts"] == made
    r = api.post(third, "driver", json={"status": "done", "made_at": 5})
    assert r.status_code == 201 and r.json()["ts"] > made
    r = api.post("/api/manifests/truck-1/stops/p5", "driver", json={"status": "done"})
    assert r.status_code == 409 and "not a stop of truck-1" in r.json()["detail"]

    m = api.get("/api/manifests/truck-1", "driver").json()
    reports = {s["id"]: s["report"] for s in m["route"]["stops"] if s["kind"] == "bin"}
    assert reports[stops[0]]["status"] == "done" and reports[stops[1]]["note"] == "car parked"
    history = api.get("/api/stop-reports", "operator", params={"plan_id": plan["id"]}).json()
    assert [(h["bin_id"], h["status"], h["by"]) for h in history] == [
        (stops[2], "done", "driver-test"),  # made an hour ago, sent now
        (stops[0], "done", "driver-test"),
        (stops[1], "blocked", "driver-test"),
        (stops[2], "done", "driver-test"),
    ]
    assert (
        api.get("/api/stop-reports", "operator", params={"bin_id": stops[1]}).json()[0]["truck"] == "truck-1"
    )
    # The bin's history carries what the driver found there, beside the camera's readings.
    hist = api.get(f"/api/bins/{stops[1]}/history", "operator").json()
    assert [(r["status"], r["note"], r["by"], r["truck"]) for r in hist["stop_reports"]] == [
        ("blocked", "car parked", "driver-test", "truck-1")
    ]


def test_publish_rules(api: Api) -> None:
    """Only a finished plan is published; publishing another plan of the day replaces it; unpublish."""
    _seed(api)
    assert api.post("/api/plans/nope/publish").status_code == 404
    a = _plan(api, trucks=["truck-1"])
    b = _plan(api, trucks=["truck-1", "truck-2"])
    assert a["service_day"] == b["service_day"]
    api.post(f"/api/plans/{a['id']}/publish", "operator")
    api.post(f"/api/plans/{b['id']}/publish", "operator")
    assert api.get(f"/api/plans/{a['id']}").json()["published_at"] is None
    assert api.get("/api/manifests/truck-2", "operator").json()["plan_id"] == b["id"]
    api.post(f"/api/plans/{b['id']}/unpublish", "operator")
    assert api.get("/api/manifests/truck-1", "driver").status_code == 404
    with api.sessions() as s, s.begin():
        s.get(Plan, a["id"]).status = "failed"  # type: ignore[union-attr]
    r = api.post(f"/api/plans/{a['id']}/publish", "operator")
    assert r.status_code == 409 and "only a finished plan" in r.json()["detail"]


def test_token_admin_routes(api: Api) -> None:
    """Admins list (no token shown), create (shown once) and revoke tokens; a revoked one is 401."""
    listed = api.get("/api/tokens").json()
    assert {t["role"] for t in listed} == {"admin", "operator", "labeller", "driver"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    r = api.post("/api/tokens", json={"role": "driver", "name": "ann"})
    assert r.status_code == 422 and "--truck" in r.json()["detail"]
    r = api.post("/api/tokens", json={"role": "driver", "name": "ann", "truck": "truck-2"})
    assert r.status_code == 201
    new = r.json()
    headers = {"Authorization": f"Bearer {new['token']}"}
    assert api.client.get("/api/me", headers=headers).json()["truck"] == "truck-2"
    assert api.post(f"/api/tokens/{new['id']}/revoke").json()["revoked_at"] > 0
    assert api.client.get("/api/me", headers=headers).status_code == 401
    assert new["id"] not in {t["id"] for t in api.get("/api/tokens").json()}
    assert new["id"] in {t["id"] for t in api.get("/api/tokens", params={"include_revoked": True}).json()}
    assert api.post("/api/tokens/9999/revoke").status_code == 404


def test_move_a_bin_to_another_truck(api: Api) -> None:
    """The bin leaves its route for the other truck's; both are re-timed; the edit is a new plan."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1", "truck-2"])
    by_truck = {r["truck"]: _bin_stops(r) for r in plan["result"]["routes"]}
    source = next(t for t, stops in by_truck.items() if stops)
    target = "truck-2" if source == "truck-1" else "truck-1"
    moving = by_truck[source][0]
    r = api.post(f"/api/plans/{plan['id']}/move", "operator", json={"bin_id": moving, "truck": target})
    assert r.status_code == 201, r.text
    edited = r.json()
    assert edited["id"] != plan["id"] and edited["request"]["edit_of"] == plan["id"]
    routes = {x["truck"]: x for x in edited["result"]["routes"]}
    assert moving in _bin_stops(routes[target]) and moving not in _bin_stops(
        routes.get(source, {"stops": []})
    )
    assert routes[target]["stops"][0]["kind"] == "depot" and routes[target]["stops"][-1]["kind"] == "depot"
    assert edited["result"]["engine"] == "manual" and edited["result"]["violations"] == []
    # The solver's plan is unchanged.
    assert moving in _bin_stops(
        next(
            x for x in api.get(f"/api/plans/{plan['id']}").json()["result"]["routes"] if x["truck"] == source
        )
    )
    # Unknown truck or bin, a bin already there, a published plan: 409 naming the problem.
    r = api.post(f"/api/plans/{edited['id']}/move", json={"bin_id": moving, "truck": "truck-9"})
    assert r.status_code == 409 and "truck-9" in r.json()["detail"]
    r = api.post(f"/api/plans/{edited['id']}/move", json={"bin_id": moving, "truck": target})
    assert r.status_code == 409 and "already on" in r.json()["detail"]
    api.post(f"/api/plans/{edited['id']}/publish")
    r = api.post(f"/api/plans/{edited['id']}/move", json={"bin_id": moving, "truck": source})
    assert r.status_code == 409 and "published (locked)" in r.json()["detail"]


def test_move_that_runs_past_the_shift_says_by_how_much(api: Api) -> None:
    """A move that brings the truck back after its shift: 409 naming the limit and the minutes over,
    nothing saved; saved with its breaches once the dispatcher confirms (``allow_violations``)."""
    _seed(api)
    plan = _plan(api, trucks=["truck-1", "truck-2"])
    by_truck = {r["truck"]: _bin_stops(r) for r in plan["result"]["routes"]}
    source = max(by_truck, key=lambda t: len(by_truck[t]))
    target = "truck-2" if source == "truck-1" else "truck-1"
    with api.sessions() as s, s.begin():
        p = s.get(Plan, plan["id"])
        assert p is not None and p.problem is not None
        problem = dict(p.problem)  # the target truck's shift ends 5 minutes after it starts
        problem["trucks"] = [
            {**t, "shift": ["06:00", "06:05"]} if t["id"] == target else t for t in problem["trucks"]
        ]
        p.problem = problem
    n_plans = len(api.get("/api/plans").json())
    body = {"bin_id": by_truck[source][0], "truck": target}
    r = api.post(f"/api/plans/{plan['id']}/move", json=body)
    assert r.status_code == 409, r.text
    breaches = r.json()["breaches"]
    shift = [b for b in breaches if b["limit"] == "shift_end"]
    assert (
        len(shift) == 1 and shift[0]["truck"] == target and shift[0]["unit"] == "min" and shift[0]["over"] > 0
    )
    over = shift[0]["over"]
    words = f"{over} min" if over < 60 else f"{over // 60} h {over % 60:02d} min"
    assert shift[0]["text"].endswith(f", {words} after its shift ends at 06:05"), shift[0]["text"]
    assert r.json()["detail"] == f"moving {body['bin_id']} to {target} breaks: " + "; ".join(
        b["text"] for b in breaches
    )
    assert len(api.get("/api/plans").json()) == n_plans  # nothing saved
    r = api.post(f"/api/plans/{plan['id']}/move", json={**body, "allow_violations": True})
    assert r.status_code == 201 and r.json()["result"]["breaches"] == breaches
