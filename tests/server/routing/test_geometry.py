"""Road geometry for planned routes from OSRM /route (a fake OSRM over a real socket)."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest

from binsight.server.routing import geometry
from binsight.server.routing.geometry import attach_paths


class FakeRoute(BaseHTTPRequestHandler):
    """OSRM's /route answer: each leg goes from its start, via a bend 0.001 degrees north of the
    midpoint, to its end (two steps)."""

    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        FakeRoute.requests.append(url.path)
        coords = [tuple(map(float, c.split(","))) for c in url.path.split("/")[-1].split(";")]
        legs = []
        for (x0, y0), (x1, y1) in itertools.pairwise(coords):
            bend = [(x0 + x1) / 2, (y0 + y1) / 2 + 0.001]
            legs.append(
                {
                    "steps": [
                        {"geometry": {"coordinates": [[x0, y0], bend]}},
                        {"geometry": {"coordinates": [bend, [x1, y1]]}},
                    ]
                }
            )
        data = json.dumps({"code": "Ok", "routes": [{"legs": legs}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def osrm() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeRoute)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeRoute.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _result(n: int) -> dict[str, Any]:
    stops = [{"kind": "depot", "id": "d", "lat": 52.0, "lon": 4.0}]
    stops += [
        {"kind": "bin", "id": f"b{i}", "lat": 52.0 + 0.01 * i, "lon": 4.0 + 0.01 * i} for i in range(1, n)
    ]
    stops.append({"kind": "break", "id": "break"})  # no position: not routed
    stops.append({"kind": "depot", "id": "d", "lat": 52.0, "lon": 4.0})
    return {"routes": [{"truck": "t1", "stops": stops}]}


def test_each_stop_gets_the_road_from_the_stop_before(osrm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Legs come back in order, split over chunked requests that share their end stops."""
    monkeypatch.setattr(geometry, "CHUNK", 4)
    result = _result(7)
    assert attach_paths({"method": "osrm", "url": osrm}, result) == 1
    stops = [s for s in result["routes"][0]["stops"] if "lat" in s]
    assert "path" not in stops[0]
    for before, stop in itertools.pairwise(stops):
        path = stop["path"]
        assert path[0] == [before["lat"], before["lon"]] and path[-1] == [stop["lat"], stop["lon"]]
        assert any(abs(p[0] - (before["lat"] + stop["lat"]) / 2 - 0.001) < 1e-9 for p in path)
    # 8 positioned stops, 7 legs, 3 legs per request of 4 coordinates: 3 requests.
    assert len(FakeRoute.requests) == 3


def test_no_osrm_no_paths_and_a_failure_keeps_the_plan() -> None:
    """Haversine plans get no paths; an unreachable OSRM leaves straight lines, not an error."""
    result = _result(3)
    assert attach_paths({"method": "haversine"}, result) == 0
    assert attach_paths({"method": "osrm", "url": "http://127.0.0.1:9", "timeout_s": 2}, result) == 0
    assert all("path" not in s for s in result["routes"][0]["stops"])
