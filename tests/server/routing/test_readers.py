"""VRPLIB CVRP and Solomon readers, and the cost conventions of their best-known solutions."""

from __future__ import annotations

from pathlib import Path

import pytest

from binsight.errors import DataError
from binsight.server.routing.planner import solve_instance
from binsight.server.routing.readers import read_cvrp, read_instance_file, read_solomon


def test_cvrp_cost_is_sum_of_rounded_edges(data_dir: Path) -> None:
    """tiny.vrp's optimum is 10 with per-edge rounding (11 if the unrounded sum were rounded)."""
    inst = read_cvrp(data_dir / "tiny.vrp")
    assert inst.dist[0, 1] == 1 and inst.dist[0, 2] == 3  # sqrt(2) -> 1, sqrt(8) -> 3
    out = solve_instance(inst, 1.0)
    assert out.feasible
    assert out.cost == 10
    assert sorted(sorted(inst.clients[i].id for i in r.clients) for r in out.solution.routes) == [
        ["1", "2"],
        ["3", "4"],
    ]


def test_solomon_distances_truncate_to_one_decimal(data_dir: Path) -> None:
    """tiny.txt: customer 2 closes at 2.0, so the one route is 2 then 1, cost 1.4 + 2.0 + 1.4."""
    inst = read_solomon(data_dir / "tiny.txt")
    assert inst.dist[0, 1] == 14  # tenths: sqrt(2) = 1.414 -> 1.4
    out = solve_instance(inst, 1.0)
    assert out.feasible
    assert out.cost == pytest.approx(4.8)
    assert [[inst.clients[i].id for i in r.clients] for r in out.solution.routes] == [["2", "1"]]


def test_non_euclidean_vrplib_is_refused(data_dir: Path) -> None:
    """Only EUC_2D is supported, and the error says so."""
    with pytest.raises(DataError, match="GEO not supported"):
        read_cvrp(data_dir / "geo.vrp")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("x.vrp", "NAME : x\nTYPE : CVRP\nDIMENSION : 2\nEDGE_WEIGHT_TYPE : EUC_2D\n", "missing"),
        ("x.txt", "garbage\n", "not a readable"),
        ("x.json", "[1, 2]", "JSON object"),
        ("x.csv", "a,b\n", "unknown instance format"),
    ],
)
def test_malformed_files_name_the_file(tmp_path: Path, name: str, content: str, match: str) -> None:
    """A bad instance file is a DataError naming the file."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=match) as exc:
        read_instance_file(path)
    assert str(path) in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a DataError, not a traceback."""
    with pytest.raises(DataError, match="no such"):
        read_instance_file(tmp_path / "nope.vrp")
