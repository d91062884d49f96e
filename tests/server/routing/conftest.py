"""Fixtures for the routing tests: tiny instance files, small problems on a line of known distances, and
a fake OSRM (``/table`` and ``/route``) over a real socket."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

DATA = Path(__file__).parent / "data"
KM_LON = 1 / 111.195  # degrees of longitude per km on the equator (haversine radius 6371.0088 km)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def at_km(x_km: float, y_km: float = 0.0) -> dict[str, float]:
    """A point ``x_km`` east and ``y_km`` north of (0, 0)."""
    return {"lat": y_km * KM_LON, "lon": x_km * KM_LON}


def problem(
    bins: list[dict[str, Any]],
    trucks: list[dict[str, Any]] | None = None,
    disposal: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A problem with the depot at (0, 0), straight-line distances and 60 km/h (1 km = 1 min)."""
    return {
        "name": "test",
        "distance": {"method": "haversine", "detour": 1.0, "speed_kmh": 60},
        "depots": [{"id": "depot", **at_km(0)}],
        "disposal_sites": disposal or [],
        "trucks": trucks
        or [{"id": "t1", "depot": "depot", "capacity_l": 10000, "shift": ["06:00", "14:00"]}],
        "bins": bins,
    }


def bin_at(bin_id: str, x_km: float, y_km: float = 0.0, **kw: Any) -> dict[str, Any]:
    return {"id": bin_id, **at_km(x_km, y_km), "volume_l": kw.pop("volume_l", 100), **kw}


def hhmm(s: str) -> int:
    h, m = s.split(":")
    return int(h) * 60 + int(m)


@dataclass
class FakeOsrm:
    """The fake OSRM's base URL and the paths it was asked for, in order."""

    url: str
    requests: list[str] = field(default_factory=list)


class _OsrmHandler(BaseHTTPRequestHandler):
    """``/table``: distance = 1000 x |lon difference| in degrees, duration a tenth of it.
    ``/route``: each leg goes from its start, via a bend 0.001 degrees north of the midpoint, to its
    end (two steps)."""

    server: _OsrmServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)  # not urlparse: it would cut the path at ";"
        self.server.fake.requests.append(url.path)
        coords = [tuple(map(float, c.split(","))) for c in url.path.split("/")[-1].split(";")]
        body = self._table(coords, url.query) if "/table/" in url.path else self._route(coords)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @staticmethod
    def _table(coords: list[tuple[float, ...]], query: str) -> dict[str, Any]:
        q = parse_qs(query)
        src = [int(i) for i in q["sources"][0].split(";")]
        dst = [int(i) for i in q["destinations"][0].split(";")]
        dist = [[1000 * abs(coords[i][0] - coords[j][0]) for j in dst] for i in src]
        return {"code": "Ok", "distances": dist, "durations": [[x / 10 for x in row] for row in dist]}

    @staticmethod
    def _route(coords: list[tuple[float, ...]]) -> dict[str, Any]:
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
        return {"code": "Ok", "routes": [{"legs": legs}]}

    def log_message(self, *args: Any) -> None:
        pass


class _OsrmServer(HTTPServer):
    fake: FakeOsrm


@pytest.fixture
def osrm() -> Iterator[FakeOsrm]:
    """A fake OSRM on a free port of 127.0.0.1, stopped after the test."""
    server = _OsrmServer(("127.0.0.1", 0), _OsrmHandler)
    server.fake = FakeOsrm(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
