"""``make venv`` installs the pinned torch from PyPI, or the CPU-only build with ``CPU=1``.

This machine cannot reach the PyTorch index, so the recipe is checked with ``make -n`` (print, run
nothing) against a venv path that does not exist yet.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _torch_line(tmp_path: Path, *args: str) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed (apt-get install make)")
    out = subprocess.run(
        ["make", "-n", "-C", str(REPO), "venv", f"VENV={tmp_path / 'venv'}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [x for x in out.splitlines() if "torch==" in x]
    return line


def test_default_is_pypi_with_the_pins(tmp_path: Path) -> None:
    line = _torch_line(tmp_path)
    assert "--index-url" not in line and "torch==2.14.1 torchvision==0.29.1" in line


@pytest.mark.parametrize("flag", ["CPU=1", "CPU=yes", f"TORCH_INDEX={CPU_INDEX}"])
def test_cpu_build_from_the_pytorch_index(tmp_path: Path, flag: str) -> None:
    line = _torch_line(tmp_path, flag)
    assert f"--index-url {CPU_INDEX} torch==2.14.1 torchvision==0.29.1" in line


def test_cpu_zero_keeps_pypi(tmp_path: Path) -> None:
    assert "--index-url" not in _torch_line(tmp_path, "CPU=0")
