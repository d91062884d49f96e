"""The five distributions build into wheels that hold what they should, and a camera installs two.

docs/layout.md: `binsight` (core/) is a namespace package with one portion per folder; a camera takes
`pip install ./core ./device` and gets the device's commands and nothing of the server or training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("core", "device", "server", "training", "demo")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    build = tmp_path_factory.mktemp("build")
    for folder in FOLDERS:
        # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
        src = build / folder
        subprocess.run(["cp", "-r", str(REPO / folder), str(src)], check=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
             "-w", str(out), str(src)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    found = {w.name.split("-")[0]: w for w in out.glob("*.whl")}
    return {f: found["binsight" if f == "core" else f"binsight_{f}"] for f in FOLDERS}


def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return [n for n in z.namelist() if ".dist-info/" not in n]


def test_each_wheel_holds_its_own_portion_only(wheels: dict[str, Path]) -> None:
    core = _names(wheels["core"])
    assert "binsight/protocol.py" in core and "binsight/cli.py" in core
    assert "binsight/__init__.py" in core, "the core owns the package; the parts add sub-packages"
    assert all(n.count("/") == 1 for n in core), "the core wheel holds no part"
    for part in ("device", "server", "training", "demo"):
        names = _names(wheels[part])
        assert f"binsight/{part}/__init__.py" in names
        assert all(n.startswith(f"binsight/{part}/") for n in names), (part, names[:5])


def test_the_server_wheel_carries_its_web_page_and_migrations(wheels: dict[str, Path]) -> None:
    names = set(_names(wheels["server"]))
    static = REPO / "server" / "binsight" / "server" / "web" / "static"
    for path in static.rglob("*"):
        if path.is_file():
            assert f"binsight/server/web/static/{path.relative_to(static)}" in names
    migrations = REPO / "server" / "binsight" / "server" / "db" / "migrations"
    for path in migrations.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert f"binsight/server/db/migrations/{path.relative_to(migrations)}" in names


def test_part_commands_are_entry_points(wheels: dict[str, Path]) -> None:
    expected = {
        "device": {"device"},
        "server": {"server", "route", "twin"},
        "training": {"train"},
        "demo": {"demo"},
    }
    for part, commands in expected.items():
        with zipfile.ZipFile(wheels[part]) as z:
            ep = next(n for n in z.namelist() if n.endswith("entry_points.txt"))
            text = z.read(ep).decode()
        section = text.split("[binsight.commands]", 1)[1].split("\n[", 1)[0]
        names = {line.split("=")[0].strip() for line in section.splitlines() if "=" in line}
        assert names == commands, (part, names)


@pytest.mark.slow
def test_a_camera_installs_the_core_and_the_device_only(wheels: dict[str, Path], tmp_path: Path) -> None:
    """A fresh venv with the two wheels (their dependencies from the package index or pip's cache)."""
    venv = tmp_path / "camera"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheels["core"]), str(wheels["device"])],
        check=True, capture_output=True, timeout=600, env=env,
    )  # fmt: skip
    listed = subprocess.run(
        [str(py), "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True, env=env
    ).stdout.lower()
    for absent in ("torch", "scikit-learn", "fastapi", "sqlalchemy", "ortools", "binsight-server"):
        assert f"{absent}==" not in listed, absent
    helptext = subprocess.run(
        [str(venv / "bin" / "binsight"), "--help"], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert "device" in helptext and "model" in helptext
    assert "server" not in helptext.split("positional arguments:")[1].split("options:")[0]
    cfg = tmp_path / "d.toml"
    cfg.write_text('bin_id = "b-1"\n')
    check = subprocess.run(
        [str(venv / "bin" / "binsight"), "device", "run", "--config", str(cfg), "--check"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
