"""Distance sources: haversine x detour, a matrix file, and OSRM's table endpoint with its disk cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from binsight.errors import DataError
from binsight.server.routing.distances import haversine_m, matrices
from binsight.server.routing.spec import DistanceSpec

from .conftest import KM_LON, FakeOsrm


def test_haversine_one_degree_of_latitude() -> None:
    """One degree of latitude is 111.2 km on the mean-radius sphere."""
    d = haversine_m(np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    assert d[0, 1] == pytest.approx(111_195, rel=1e-4)


def test_detour_and_speed_scale_haversine() -> None:
    """Distance is great-circle x detour; time is distance / speed."""
    spec = DistanceSpec(method="haversine", detour=1.5, speed_kmh=36)
    d, t = matrices(spec, ["a", "b"], np.array([0.0, 0.0]), np.array([0.0, 10 * KM_LON]))
    assert d[0, 1] == pytest.approx(15_000, abs=2)
    assert t[0, 1] == pytest.approx(1_500, abs=1)  # 15 km at 10 m/s


def test_matrix_file_is_reordered_by_id(tmp_path: Path) -> None:
    """Rows are matched by id, whatever their order in the file."""
    f = tmp_path / "m.json"
    f.write_text(
        json.dumps({"ids": ["b", "a"], "distance_m": [[0, 7], [9, 0]], "duration_s": [[0, 70], [90, 0]]})
    )
    d, t = matrices(DistanceSpec(method="matrix", file=str(f)), ["a", "b"], np.zeros(2), np.zeros(2))
    assert d.tolist() == [[0, 9], [7, 0]]
    assert t.tolist() == [[0, 90], [70, 0]]


def test_matrix_file_missing_id_is_named(tmp_path: Path) -> None:
    """A point without a row is an error naming it."""
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"ids": ["a"], "distance_m": [[0]], "duration_s": [[0]]}))
    with pytest.raises(DataError, match="no row for bin-7"):
        matrices(DistanceSpec(method="matrix", file=str(f)), ["a", "bin-7"], np.zeros(2), np.zeros(2))


def test_osrm_table_in_blocks_and_cached(osrm: FakeOsrm, tmp_path: Path) -> None:
    """Seven points in blocks of four: the full matrix is assembled, then served from the cache."""
    lon = np.arange(7, dtype=float)
    spec = DistanceSpec(method="osrm", url=osrm.url, block=4, cache_dir=str(tmp_path))
    d, t = matrices(spec, [str(i) for i in range(7)], np.zeros(7), lon)
    assert d.tolist() == (1000 * np.abs(lon[:, None] - lon[None, :])).astype(int).tolist()
    assert t[0, 6] == 600
    n_requests = len(osrm.requests)
    assert n_requests == 16  # (7 sources in blocks of 2) x (7 destinations in blocks of 2)
    d2, _ = matrices(spec, [str(i) for i in range(7)], np.zeros(7), lon)
    assert len(osrm.requests) == n_requests
    assert (d2 == d).all()


def test_osrm_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    """No server at the URL: a DataError, not a hang or a traceback."""
    spec = DistanceSpec(method="osrm", url="http://127.0.0.1:9", cache_dir=str(tmp_path), timeout_s=2)
    with pytest.raises(DataError, match="OSRM table request failed"):
        matrices(spec, ["a", "b"], np.zeros(2), np.arange(2.0))
