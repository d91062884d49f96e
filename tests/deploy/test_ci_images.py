""".ci/run runs the README's `make test`, then .ci/images: the images where an engine exists.

No container engine on this machine: .ci/images is run against a stub ``docker``/``podman`` on PATH
that records its arguments, and without any, where it must skip saying so and exit 0.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
exit 0
"""


def run_images(tmp_path: Path, engines: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for name in engines:
        stub = bin_dir / name
        stub.write_text(STUB.format(log=log))
        stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "BINSIGHT_CI_ENGINE"}
    # Only the stubs and the basic tools: a real docker of the machine must not be found.
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    for real in ("docker", "podman"):
        if real not in engines and any((Path(d) / real).exists() for d in ("/usr/bin", "/bin")):
            pytest.skip(f"a real {real} is installed in /usr/bin: the stub PATH cannot hide it")
    out = subprocess.run(["bash", str(REPO / ".ci" / "images")], env=env, capture_output=True, text=True)
    return out, log.read_text().splitlines() if log.exists() else []


def test_run_calls_make_test_first() -> None:
    lines = [x.strip() for x in (REPO / ".ci" / "run").read_text().splitlines() if not x.startswith("#")]
    assert lines.index("make test") < lines.index("exec bash .ci/images")


def test_skips_clearly_without_an_engine(tmp_path: Path) -> None:
    out, calls = run_images(tmp_path, [])
    assert out.returncode == 0 and calls == []
    assert "SKIPPED: no container engine (docker or podman)" in out.stderr


def test_builds_both_images_with_docker(tmp_path: Path) -> None:
    out, calls = run_images(tmp_path, ["docker"])
    assert out.returncode == 0, out.stderr
    builds = [c for c in calls if c.startswith("docker build")]
    assert builds == [
        "docker build -f deploy/Containerfile -t binsight-server:ci .",
        "docker build -f deploy/Containerfile.device -t binsight-agent:ci .",
    ]
    assert "docker run --rm binsight-server:ci --version" in calls


def test_podman_gets_the_ignore_files(tmp_path: Path) -> None:
    out, calls = run_images(tmp_path, ["podman"])
    assert out.returncode == 0, out.stderr
    assert (
        "podman build --ignorefile deploy/Containerfile.device.dockerignore -f deploy/Containerfile.device "
        "-t binsight-agent:ci ." in calls
    )
    assert (
        "podman build --ignorefile deploy/Containerfile.dockerignore -f deploy/Containerfile "
        "-t binsight-server:ci ." in calls
    )
