"""Fixtures for deploy/: the shipped Mosquitto config running on a free port, and client sessions."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_broker import DeployBroker, Session


@pytest.fixture(scope="module")
def deploy_root() -> Iterator[Path]:
    # Not tmp_path: its parents are mode 0700, and Mosquitto started as root reads as "mosquitto".
    root = Path(tempfile.mkdtemp(prefix="binsight-deploy-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(deploy_root: Path) -> Iterator[DeployBroker]:
    """The deploy config running, with devices bin-1 and bin-2 and the server account."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.fail("mosquitto / mosquitto_passwd are not installed (apt-get install mosquitto)")
    b = DeployBroker(deploy_root / "plain")
    b.root.mkdir()
    b.render()
    for bin_id in ("bin-1", "bin-2"):
        b.add_device(bin_id)
    b.add_server()
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    """Collects the sessions a test opens and closes them at teardown."""
    opened: list[Session] = []
    yield opened
    for s in opened:
        s.close()
