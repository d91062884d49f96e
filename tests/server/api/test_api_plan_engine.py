"""The route engine of a plan: ``[fleet] engine`` by default, the request's ``engine`` over it; the
plan says which engine made it (for a portfolio, which won and how each fared)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import Api, item, reading

from binsight.server.auth import create_token
from binsight.server.bins_import import BinRow, import_bins
from binsight.server.config import ServerConfig
from binsight.server.db.engine import now_ms
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.runtime import ServerRuntime


@pytest.fixture
def ortools_api(make_config: Callable[..., ServerConfig]) -> Iterator[Api]:
    """An API-only server on SQLite whose ``[fleet] engine`` is ortools, with three full bins."""
    runtime = ServerRuntime(make_config(fleet={"engine": "ortools"}), mqtt=False)
    runtime.start(listen=False)
    now = now_ms()
    rows = [BinRow(f"b{i}", 52.37 + 0.002 * i, 4.89 + 0.003 * i, 1000) for i in range(3)]
    items = [item("reading", f"b{i}", reading(f"b{i}", 0, 0.95, ts=now - 60_000)) for i in range(3)]
    with runtime.sessions() as s, s.begin():
        import_bins(s, rows)
        write_batch(s, items, BinRegistry(), False, now)
        token = create_token(s, "operator", "operator-test")
    try:
        with TestClient(runtime.app) as client:
            yield Api(client, {"operator": token})
    finally:
        runtime.stop()


def _plan(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/plans", "operator", json={"time_limit_s": 2, **body})
    assert r.status_code == 202, r.text
    for _ in range(300):
        p = api.get(f"/api/plans/{r.json()['id']}", "operator").json()
        if p["status"] != "running":
            assert p["status"] == "done", p["error"]
            return p
        time.sleep(0.1)
    raise AssertionError("plan did not finish")


def test_config_engine_is_the_default(ortools_api: Api) -> None:
    """No engine in the request: [fleet] engine plans it, and the plan says so."""
    result = _plan(ortools_api, {})["result"]
    assert result["engine_requested"] == "ortools" and result["engine"] == "ortools"
    assert result["feasible"] and "portfolio" not in result


def test_request_engine_overrides_and_portfolio_names_the_winner(ortools_api: Api) -> None:
    """engine=portfolio in the request: stored with the request; the result names the winner."""
    plan = _plan(ortools_api, {"engine": "portfolio"})
    assert plan["request"]["engine"] == "portfolio"
    result = plan["result"]
    assert result["engine_requested"] == "portfolio" and result["feasible"]
    runs = result["portfolio"]
    assert {r["engine"] for r in runs} == {"pyvrp", "ortools"}
    assert [r["engine"] for r in runs if r["won"]] == [result["engine"]]


def test_unknown_engine_is_refused(ortools_api: Api) -> None:
    """A bad engine is a 422 that names the field and the choices."""
    r = ortools_api.post("/api/plans", "operator", json={"engine": "fastest"})
    assert r.status_code == 422
    assert "engine" in r.text and "portfolio" in r.text
