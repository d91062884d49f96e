"""Synthetic binsight route problems (for the scale benchmark and tests): a city of random bins."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["city_problem"]


def city_problem(
    n_bins: int,
    n_trucks: int,
    *,
    seed: int = 0,
    n_depots: int = 1,
    n_disposal: int = 2,
    radius_km: float = 8.0,
    windows: bool = True,
    breaks: bool = True,
    optional_share: float = 0.3,
) -> dict[str, Any]:
    """A route problem around Amsterdam sized so the fleet can collect every mandatory bin.

    Bins lie uniformly in a disc of ``radius_km``; about a quarter have a morning or afternoon
    access window; ``optional_share`` of them are optional with random fill.
    """
    rng = np.random.default_rng(seed)
    lat0, lon0 = 52.37, 4.89
    km_lat = 1 / 111.2
    km_lon = 1 / (111.2 * math.cos(math.radians(lat0)))

    def point(r_km: float) -> tuple[float, float]:
        r = r_km * math.sqrt(rng.random())
        a = rng.random() * 2 * math.pi
        return lat0 + r * math.sin(a) * km_lat, lon0 + r * math.cos(a) * km_lon

    depots = []
    for d in range(n_depots):
        lat, lon = point(radius_km * 0.6) if n_depots > 1 else (lat0, lon0)
        depots.append({"id": f"depot-{d + 1}", "lat": round(lat, 6), "lon": round(lon, 6)})
    sites = []
    for s in range(n_disposal):
        lat, lon = point(radius_km)
        sites.append({"id": f"tip-{s + 1}", "lat": round(lat, 6), "lon": round(lon, 6), "service_min": 15})
    bins = []
    for b in range(n_bins):
        lat, lon = point(radius_km)
        optional = rng.random() < optional_share
        fill = float(rng.uniform(0.1, 0.8) if optional else rng.uniform(0.8, 1.0))
        spec: dict[str, Any] = {
            "id": f"bin-{b + 1:05d}",
            "lat": round(lat, 6),
            "lon": round(lon, 6),
            "volume_l": round(float(rng.choice([240, 660, 1100, 2500])) * fill, 1),
            "service_min": 1.5,
            "fill": round(fill, 3),
            "mandatory": not optional,
        }
        if windows and rng.random() < 0.25:
            spec["window"] = ["07:00", "11:00"] if rng.random() < 0.5 else ["10:00", "14:00"]
        bins.append(spec)
    trucks = []
    for t in range(n_trucks):
        truck: dict[str, Any] = {
            "id": f"truck-{t + 1:02d}",
            "depot": depots[t % n_depots]["id"],
            "capacity_l": [16000, 20000, 24000][t % 3],
            "shift": ["06:00", "15:00"],
            "max_duration_min": 540,
        }
        if breaks:
            truck["break"] = {"after_min": 270, "duration_min": 30}
        trucks.append(truck)
    return {
        "name": f"city-{n_bins}-{n_trucks}-s{seed}",
        "distance": {"method": "haversine", "detour": 1.3, "speed_kmh": 25},
        "depots": depots,
        "disposal_sites": sites,
        "trucks": trucks,
        "bins": bins,
    }
