"""Travel distance (metres) and time (seconds) matrices: haversine x detour, OSRM ``table``, or a file."""

from __future__ import annotations

import hashlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from binsight.errors import DataError
from binsight.server.routing.spec import DistanceSpec

__all__ = ["haversine_m", "matrices"]

logger = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Great-circle distances in metres between all pairs of points."""
    phi, lam = np.radians(lat), np.radians(lon)
    dphi = phi[:, None] - phi[None, :]
    dlam = lam[:, None] - lam[None, :]
    a = np.sin(dphi / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dlam / 2) ** 2
    out: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def matrices(
    spec: DistanceSpec, ids: list[str], lat: np.ndarray, lon: np.ndarray, base_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Integer (distance in metres, duration in seconds) matrices over the given points."""
    if spec.method == "haversine":
        d = haversine_m(lat, lon) * spec.detour
        t = d / (spec.speed_kmh / 3.6)
    elif spec.method == "matrix":
        assert spec.file is not None
        path = Path(spec.file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        d, t = _from_file(path, ids)
    else:
        assert spec.url is not None
        d, t = _osrm(spec, lat, lon)
    return np.rint(d).astype(np.int64), np.rint(t).astype(np.int64)


def _from_file(path: Path, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the distance matrix file: {exc}") from exc
    try:
        order = {str(k): i for i, k in enumerate(obj["ids"])}
        dist = np.asarray(obj["distance_m"], dtype=float)
        dur = np.asarray(obj["duration_s"], dtype=float)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: a matrix file needs 'ids', 'distance_m' and 'duration_s': {exc}") from exc
    n = len(order)
    if dist.shape != (n, n) or dur.shape != (n, n):
        raise DataError(f"{path}: matrices must be {n}x{n} like 'ids', got {dist.shape} and {dur.shape}")
    missing = [i for i in ids if i not in order]
    if missing:
        raise DataError(f"{path}: no row for {', '.join(missing[:5])}")
    if (dist < 0).any() or (dur < 0).any() or not np.isfinite(dist).all() or not np.isfinite(dur).all():
        raise DataError(f"{path}: distances and durations must be finite and non-negative")
    idx = np.asarray([order[i] for i in ids])
    return dist[np.ix_(idx, idx)], dur[np.ix_(idx, idx)]


def _osrm(spec: DistanceSpec, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OSRM ``/table`` in blocks of ``spec.block`` points, cached on disk by request content."""
    assert spec.url is not None
    coords = [f"{x:.6f},{y:.6f}" for x, y in zip(lon, lat, strict=True)]
    key = hashlib.sha256(json.dumps([spec.url, spec.profile, coords]).encode()).hexdigest()[:32]
    cache = Path(spec.cache_dir).expanduser() if spec.cache_dir else Path.home() / ".cache/binsight/osrm"
    cached = cache / f"{key}.npz"
    if cached.exists():
        with np.load(cached) as z:
            logger.info("OSRM matrix from cache %s", cached)
            return z["distance"], z["duration"]
    n = len(coords)
    dist = np.zeros((n, n))
    dur = np.zeros((n, n))
    half = max(1, spec.block // 2)
    for i0 in range(0, n, half):
        src = list(range(i0, min(n, i0 + half)))
        for j0 in range(0, n, half):
            dst = list(range(j0, min(n, j0 + half)))
            pts = src + [j for j in dst if j not in src]
            pos = {p: k for k, p in enumerate(pts)}
            url = (
                f"{spec.url.rstrip('/')}/table/v1/{spec.profile}/{';'.join(coords[p] for p in pts)}"
                f"?sources={';'.join(str(pos[s]) for s in src)}"
                f"&destinations={';'.join(str(pos[d]) for d in dst)}&annotations=distance,duration"
            )
            body = _get(url, spec.timeout_s)
            if body.get("code") != "Ok":
                raise DataError(f"OSRM {spec.url}: {body.get('code')}: {body.get('message', '')}")
            d = np.asarray(body["distances"], dtype=float)
            t = np.asarray(body["durations"], dtype=float)
            if np.isnan(d).any() or np.isnan(t).any():
                raise DataError(f"OSRM {spec.url}: some points cannot be routed between (null in table)")
            dist[np.ix_(src, dst)] = d
            dur[np.ix_(src, dst)] = t
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, distance=dist, duration=dur)
    tmp.replace(cached)
    return dist, dur


def _get(url: str, timeout_s: float) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            body: dict[str, object] = json.loads(resp.read().decode("utf-8"))
            return body
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read().decode("utf-8")).get("message", "")
        except ValueError:
            detail = ""
        raise DataError(f"OSRM table request failed: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise DataError(f"OSRM table request failed: {exc}") from exc
