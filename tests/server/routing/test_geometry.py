"""Road geometry for planned routes from OSRM /route (a fake OSRM over a real socket)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from binsight.server.routing import geometry
from binsight.server.routing.geometry import attach_paths

from .conftest import FakeOsrm


def _result(n: int) -> dict[str, Any]:
    stops = [{"kind": "depot", "id": "d", "lat": 52.0, "lon": 4.0}]
    stops += [
        {"kind": "bin", "id": f"b{i}", "lat": 52.0 + 0.01 * i, "lon": 4.0 + 0.01 * i} for i in range(1, n)
    ]
    stops.append({"kind": "break", "id": "break"})  # no position: not routed
    stops.append({"kind": "depot", "id": "d", "lat": 52.0, "lon": 4.0})
    return {"routes": [{"truck": "t1", "stops": stops}]}


def test_each_stop_gets_the_road_from_the_stop_before(
    osrm: FakeOsrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Legs come back in order, split over chunked requests that share their end stops."""
    monkeypatch.setattr(geometry, "CHUNK", 4)
    result = _result(7)
    assert attach_paths({"method": "osrm", "url": osrm.url}, result) == 1
    stops = [s for s in result["routes"][0]["stops"] if "lat" in s]
    assert "path" not in stops[0]
    for before, stop in itertools.pairwise(stops):
        path = stop["path"]
        assert path[0] == [before["lat"], before["lon"]] and path[-1] == [stop["lat"], stop["lon"]]
        assert any(abs(p[0] - (before["lat"] + stop["lat"]) / 2 - 0.001) < 1e-9 for p in path)
    # 8 positioned stops, 7 legs, 3 legs per request of 4 coordinates: 3 requests.
    assert len(osrm.requests) == 3


def test_no_osrm_no_paths_and_a_failure_keeps_the_plan() -> None:
    """Haversine plans get no paths; an unreachable OSRM leaves straight lines, not an error."""
    result = _result(3)
    assert attach_paths({"method": "haversine"}, result) == 0
    assert attach_paths({"method": "osrm", "url": "http://127.0.0.1:9", "timeout_s": 2}, result) == 0
    assert all("path" not in s for s in result["routes"][0]["stops"])
