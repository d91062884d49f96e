"""Road geometry of planned routes from OSRM ``/route``, so maps draw roads, not straight lines.

Only where ``[fleet.distance] method = "osrm"``: the plan's travel times came from the same server,
so its roads are the ones the solver priced. Each stop after the first gets ``path``: the
``[[lat, lon], ...]`` of the road from the stop before it. Without OSRM (or when it fails) stops
keep no path and the page draws straight lines.
"""

from __future__ import annotations

import logging
from typing import Any

from binsight.errors import DataError
from binsight.server.routing.distances import _get
from binsight.server.routing.spec import DistanceSpec

__all__ = ["attach_paths"]

logger = logging.getLogger(__name__)

#: Coordinates per ``/route`` request (osrm-routed's --max-viaroute-size defaults to 500).
CHUNK = 100


def _leg_paths(spec: DistanceSpec, points: list[tuple[float, float]]) -> list[list[list[float]]]:
    """The road of each leg between consecutive ``points`` (lat, lon), one request per chunk."""
    assert spec.url is not None
    legs: list[list[list[float]]] = []
    for i0 in range(0, len(points) - 1, CHUNK - 1):
        chunk = points[i0 : i0 + CHUNK]
        coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in chunk)
        query = "overview=false&steps=true&geometries=geojson"
        url = f"{spec.url.rstrip('/')}/route/v1/{spec.profile}/{coords}?{query}"
        body = _get(url, spec.timeout_s)
        routes = body.get("routes")
        if body.get("code") != "Ok" or not isinstance(routes, list) or not routes:
            raise DataError(f"OSRM {spec.url}: {body.get('code')}: {body.get('message', '')}")
        for leg in routes[0]["legs"]:
            path = [
                [round(lat, 6), round(lon, 6)]
                for step in leg["steps"]
                for lon, lat in step["geometry"]["coordinates"]
            ]
            legs.append(path)
    if len(legs) != len(points) - 1:
        raise DataError(f"OSRM {spec.url}: {len(legs)} legs for {len(points)} stops")
    return legs


def attach_paths(distance: dict[str, Any], result: dict[str, Any]) -> int:
    """Give each routed stop its road from the stop before (``stop["path"]``) when ``distance`` (the
    problem's) names OSRM. Returns the number of routes drawn on roads; an OSRM failure is logged and
    leaves the plan as it was (straight lines), never fails the plan."""
    if distance.get("method") != "osrm" or not distance.get("url"):
        return 0
    spec = DistanceSpec.model_validate({k: v for k, v in distance.items() if k in DistanceSpec.model_fields})
    drawn = 0
    for route in result.get("routes", []):
        stops = [s for s in route.get("stops", []) if s.get("lat") is not None and s.get("lon") is not None]
        if len(stops) < 2:
            continue
        try:
            legs = _leg_paths(spec, [(float(s["lat"]), float(s["lon"])) for s in stops])
        except (DataError, KeyError, TypeError, ValueError) as exc:
            logger.warning("route geometry for %s: %s (drawn as straight lines)", route.get("truck"), exc)
            continue
        for stop, path in zip(stops[1:], legs, strict=True):
            stop["path"] = path
        drawn += 1
    return drawn
