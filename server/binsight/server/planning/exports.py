"""A stored plan's routes as CSV (a row per stop), GeoJSON (lines and points) and GPX (a route per truck)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

__all__ = ["to_csv", "to_geojson", "to_gpx"]

_FIELDS = [
    "truck",
    "order",
    "id",
    "kind",
    "lat",
    "lon",
    "arrive",
    "depart",
    "load_after_l",
    "volume_l",
    "fill",
]


def _stops(result: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (str(route.get("truck")), i, stop)
        for route in result.get("routes", [])
        for i, stop in enumerate(route.get("stops", []))
    ]


def to_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_FIELDS)
    for truck, i, s in _stops(result):
        w.writerow([truck, i, *(s.get(k, "") if s.get(k) is not None else "" for k in _FIELDS[2:])])
    return buf.getvalue()


def to_geojson(result: dict[str, Any]) -> str:
    features: list[dict[str, Any]] = []
    for route in result.get("routes", []):
        stops = [s for s in route.get("stops", []) if s.get("lat") is not None and s.get("lon") is not None]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[s["lon"], s["lat"]] for s in stops]},
                "properties": {
                    "truck": route.get("truck"),
                    "distance_km": route.get("distance_km"),
                    "duration_min": route.get("duration_min"),
                    "collected_l": route.get("collected_l"),
                },
            }
        )
        for i, s in enumerate(stops):
            props = {k: v for k, v in s.items() if k not in ("lat", "lon")}
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                    "properties": {"truck": route.get("truck"), "order": i, **props},
                }
            )
    return json.dumps({"type": "FeatureCollection", "features": features})


def to_gpx(result: dict[str, Any], name: str = "binsight plan") -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="binsight" xmlns="http://www.topografix.com/GPX/1/1">',
        f"<metadata><name>{escape(name)}</name></metadata>",
    ]
    for route in result.get("routes", []):
        out.append(f"<rte><name>{escape(str(route.get('truck')))}</name>")
        for s in route.get("stops", []):
            if s.get("lat") is None or s.get("lon") is None:
                continue
            desc = f"{s.get('kind', '')} arrive {s.get('arrive', '')}"
            out.append(
                f"<rtept lat={quoteattr(str(s['lat']))} lon={quoteattr(str(s['lon']))}>"
                f"<name>{escape(str(s.get('id', '')))}</name><desc>{escape(desc)}</desc></rtept>"
            )
        out.append("</rte>")
    out.append("</gpx>")
    return "\n".join(out) + "\n"
