"""The demo publishes each service day's first plan, never over one already published, and its driver
tokens open their truck's manifest (issue #18). The demo's own server config and plan loop, on a real
HTTP server (no broker: plans need no cameras)."""

from __future__ import annotations

import argparse
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port

from binsight.demo import CAPTURE_EVERY_S, _driver_tokens, _PlanLoop, _server_toml
from binsight.demo.world import STREETS, make_city
from binsight.server.auth import create_token
from binsight.server.bins_import import import_bins, read_bins
from binsight.server.config import load_server_config
from binsight.server.runtime import ServerRuntime


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[ServerRuntime, Any]]:
    city = make_city(6)
    conf = tmp_path / "server.toml"
    conf.write_text(
        _server_toml(tmp_path, city, free_port(), 1, protocol="5", capture_every_s=CAPTURE_EVERY_S)
    )
    server = ServerRuntime(load_server_config(conf), mqtt=False)
    server.start()
    with server.sessions.begin() as s:
        import_bins(s, read_bins(city.write_bins_csv(tmp_path / "bins.csv")))
    try:
        yield server, city
    finally:
        server.stop()


def _get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_first_plan_of_the_day_is_published_and_stays(
    demo_server: tuple[ServerRuntime, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The loop's first plan is published; its next plan is not (the dispatcher decides); a driver's
    token opens its own truck's manifest of the published plan."""
    server, city = demo_server
    with server.sessions.begin() as s:
        admin = create_token(s, "admin", name="demo admin")
    drivers = _driver_tokens(server, city)
    assert sorted(drivers) == city.truck_ids
    args = argparse.Namespace(duration=None, first_plan_after=0.0, plan_every=60.0)
    loop = _PlanLoop(server.http_url, admin, args, threading.Event(), threading.Event())
    loop._one_plan()
    first = _get(f"{server.http_url}/api/plans/latest", admin)
    assert first["status"] == "done" and first["published_at"] and first["published_by"] == "demo admin"
    assert f"published plan {first['id']} for {first['service_day']}" in capsys.readouterr().out
    loop.published_days.clear()  # as after a restart of the demo: the server says it is published
    loop._one_plan()
    second = _get(f"{server.http_url}/api/plans/latest", admin)
    assert second["id"] != first["id"] and second["published_at"] is None
    assert "published plan" not in capsys.readouterr().out
    m = _get(f"{server.http_url}/api/manifests/truck-1", drivers["truck-1"])
    assert m["plan_id"] == first["id"] and m["truck"] == "truck-1"
    me = _get(f"{server.http_url}/api/me", drivers[city.truck_ids[-1]])
    assert me == {"name": f"demo driver {city.truck_ids[-1]}", "role": "driver", "truck": city.truck_ids[-1]}


def test_demo_bins_have_street_addresses(demo_server: tuple[ServerRuntime, Any]) -> None:
    """Every demo bin's address is one of the embedded Utrecht streets with a house number."""
    server, city = demo_server
    with server.sessions.begin() as s:
        operator = create_token(s, "operator", name="o")
    bins = _get(f"{server.http_url}/api/bins", operator)
    streets = {name for name, _, _ in STREETS}
    assert len(bins) == len(city.bins)
    for b in bins:
        street, number = b["address"].removesuffix(", Utrecht").rsplit(" ", 1)
        assert street in streets and number.isdigit(), b["address"]
