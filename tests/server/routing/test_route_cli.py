"""``binsight route solve`` end to end, and the package staying light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from binsight.cli import main

from .conftest import bin_at, problem


def test_solve_vrplib_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints cost (VRPLIB convention), routes of customer ids, vehicles and feasible."""
    assert main(["route", "solve", str(data_dir / "tiny.vrp"), "--time-limit", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cost"] == 10 and out["feasible"] is True and out["vehicles"] == 2
    assert sorted(sorted(r) for r in out["routes"]) == [["1", "2"], ["3", "4"]]


def test_solve_problem_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A binsight problem file gives the full plan."""
    f = tmp_path / "p.json"
    f.write_text(json.dumps(problem([bin_at("a", 1), bin_at("b", 2)])))
    assert main(["route", "solve", str(f), "--time-limit", "1", "--json", "--engine", "ortools"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] and out["routes"][0]["stops"][0]["id"] == "depot"


def test_infeasible_problem_exits_1_naming_the_bin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI reports the impossible bin in one line, exit status 1."""
    f = tmp_path / "p.json"
    f.write_text(json.dumps(problem([bin_at("giant", 1, volume_l=10**6)])))
    assert main(["route", "solve", str(f), "--time-limit", "1"]) == 1
    assert "bin giant" in capsys.readouterr().err


def test_bad_engine(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --engine is refused."""
    assert main(["route", "solve", str(data_dir / "tiny.vrp"), "--engine", "cplex"]) == 1
    assert "--engine cplex" in capsys.readouterr().err


def test_package_import_is_light() -> None:
    """Importing binsight.server.routing loads neither PyVRP nor OR-Tools."""
    code = (
        "import sys, binsight.server.routing as r; assert callable(r.plan); "
        "print(any(m.startswith(('pyvrp', 'ortools')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
