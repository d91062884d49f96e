"""``binsight server bins import FILE``: bins from CSV or GeoJSON, all or nothing.

CSV needs ``bin_id,lat,lon,capacity_l`` and may have ``name,address,site,service_min,window_start,window_end``
(``address``: the street address drivers read on their manifest).
GeoJSON needs Point features with ``bin_id`` and ``capacity_l`` properties (the others optional).
Every bad row is reported (file, row, column, problem) and nothing is written unless all rows are good.
Existing bins are updated (the import is the source of truth for position and capacity).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from binsight.errors import DataError
from binsight.protocol import BIN_ID_PATTERN
from binsight.server.db import dialect
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Bin

__all__ = ["BinRow", "import_bins", "read_bins"]

REQUIRED = ("bin_id", "lat", "lon", "capacity_l")
OPTIONAL = ("name", "address", "site", "service_min", "window_start", "window_end")
_MAX_ERRORS = 50


@dataclass(frozen=True)
class BinRow:
    bin_id: str
    lat: float
    lon: float
    capacity_l: float
    name: str | None = None
    address: str | None = None
    site: str | None = None
    service_min: float | None = None
    window_start: str | None = None
    window_end: str | None = None


def _float(value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not math.isfinite(x) or x < lo or x > hi or (lo_open and x == lo):
        raise ValueError(f"{x:g} is outside {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return x


def _hhmm(value: str) -> str:
    import re

    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"not a HH:MM time: {value!r}")
    return value


def _row(values: dict[str, Any], where: str, errors: list[str]) -> BinRow | None:
    import re

    parsed: dict[str, Any] = {}
    ok = True

    def bad(col: str, msg: str) -> None:
        nonlocal ok
        ok = False
        errors.append(f"{where}, column {col}: {msg}")

    for col in REQUIRED:
        if values.get(col) in (None, ""):
            bad(col, "missing")
    bin_id = str(values.get("bin_id") or "")
    if bin_id and not re.match(BIN_ID_PATTERN, bin_id):
        bad("bin_id", f"{bin_id!r} is not a valid bin id (letters, digits, . _ -; at most 64)")
    parsed["bin_id"] = bin_id
    checks: dict[str, tuple[float, float, bool]] = {
        "lat": (-90, 90, False),
        "lon": (-180, 180, False),
        "capacity_l": (0, 1e6, True),
        "service_min": (0, 600, False),
    }
    for col, (lo, hi, lo_open) in checks.items():
        v = values.get(col)
        if v in (None, ""):
            continue
        try:
            parsed[col] = _float(v, lo, hi, lo_open=lo_open)
        except ValueError as exc:
            bad(col, str(exc))
    for col in ("window_start", "window_end"):
        v = values.get(col)
        if v not in (None, ""):
            try:
                parsed[col] = _hhmm(str(v))
            except ValueError as exc:
                bad(col, str(exc))
    if bool(parsed.get("window_start")) != bool(parsed.get("window_end")) and ok:
        bad(
            "window_end" if parsed.get("window_start") else "window_start",
            "give both window_start and window_end",
        )
    if ok and parsed.get("window_start") and parsed["window_end"] <= parsed["window_start"]:
        bad("window_end", "window_end must be after window_start")
    for col, most in (("name", 200), ("site", 100), ("address", 300)):
        v = values.get(col)
        if v not in (None, ""):
            text = " ".join(str(v).split())  # one line: a manifest card shows it as such
            if len(text) > most:
                bad(col, f"longer than {most} characters")
            else:
                parsed[col] = text
    if not ok:
        return None
    return BinRow(**parsed)


def _read_csv(path: Path, errors: list[str]) -> list[BinRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(f"{path}: row 1 (header): missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise DataError(f"{path}: row 1 (header): unknown column(s) {', '.join(unknown)}")
    rows = []
    for i, rec in enumerate(reader, start=2):
        if None in rec:
            errors.append(f"{path}: row {i}: more values than columns")
            continue
        r = _row(rec, f"{path}: row {i}", errors)
        if r is not None:
            rows.append(r)
    return rows


def _read_geojson(path: Path, errors: list[str]) -> list[BinRow]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "FeatureCollection"
        or not isinstance(doc.get("features"), list)
    ):
        raise DataError(f"{path}: not a GeoJSON FeatureCollection")
    rows = []
    for i, feat in enumerate(doc["features"]):
        where = f"{path}: feature {i}"
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        props = feat.get("properties") if isinstance(feat, dict) else None
        if not isinstance(geom, dict) or geom.get("type") != "Point":
            errors.append(f"{where}, column geometry: not a Point")
            continue
        coords = geom.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            errors.append(f"{where}, column geometry: coordinates must be [lon, lat]")
            continue
        values = dict(props) if isinstance(props, dict) else {}
        values.setdefault("lon", coords[0])
        values.setdefault("lat", coords[1])
        values = {k: v for k, v in values.items() if k in REQUIRED + OPTIONAL}
        r = _row(values, where, errors)
        if r is not None:
            rows.append(r)
    return rows


def read_bins(path: str | Path) -> list[BinRow]:
    """Parse and validate the whole file; raises :class:`DataError` listing every bad row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    errors: list[str] = []
    is_geojson = path.suffix.lower() in (".geojson", ".json")
    rows = _read_geojson(path, errors) if is_geojson else _read_csv(path, errors)
    seen: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r.bin_id in seen:
            errors.append(f"{path}: bin_id {r.bin_id!r} appears more than once")
        seen[r.bin_id] = i
    if errors:
        more = f"\n... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise DataError(
            f"{len(errors)} problem(s), nothing imported:\n" + "\n".join(errors[:_MAX_ERRORS]) + more
        )
    if not rows:
        raise DataError(f"{path}: no bins in the file")
    return rows


def import_bins(session: Session, rows: list[BinRow]) -> tuple[int, int]:
    """Insert or update ``rows`` in the caller's transaction; returns ``(created, updated)``.

    Each bin is first inserted with ``ON CONFLICT DO NOTHING``, then updated: the ingest may create the
    same bin (bare, from a device's message) at any moment, even between a lookup and an insert here,
    so a plain insert could fail the whole import on the unique id (issue #17).
    """
    now = now_ms()
    created = updated = 0
    stmt = dialect.insert(session, Bin).on_conflict_do_nothing(index_elements=["id"]).returning(Bin.id)
    for r in rows:
        values = {"id": r.bin_id, "registered": False, "created_at": now, "updated_at": now}
        if session.execute(stmt, values).first() is not None:
            created += 1
        else:
            updated += 1
        b = session.get(Bin, r.bin_id, populate_existing=True)
        assert b is not None  # just inserted, or there already
        b.name, b.lat, b.lon, b.capacity_l, b.site = r.name, r.lat, r.lon, r.capacity_l, r.site
        b.address = r.address
        b.service_min, b.window_start, b.window_end = r.service_min, r.window_start, r.window_end
        b.registered = True
        b.updated_at = now
    return created, updated
