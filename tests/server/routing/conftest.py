"""Fixtures for the routing tests: tiny instance files and small problems on a line of known distances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
