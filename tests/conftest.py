"""Fixtures shared by every side's tests: private brokers on free ports and throwaway databases.

Only the boundary is real-but-private: each test that must stop or kill a broker gets its own
Mosquitto process on a free port, configured the way deploy/ configures production (no silent
queue limit). Tests that only need *a* broker may use the machine's one at 127.0.0.1:1883.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from netutil import free_port, wait_port

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Mosquitto:
    """A private Mosquitto on its own port; ``stop()``/``start()`` simulate an outage."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_conf: str = ""
    proc: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_conf(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            # Measured on this machine: the default limit of 1000 silently drops QoS 1 messages.
            "max_queued_messages 0\n"
            "max_inflight_messages 1000\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            # Run as root, Mosquitto drops to the `mosquitto` user, which cannot enter pytest's private
            # temp folders: it would then neither save its database nor read password files.
            f"{'user root' if os.geteuid() == 0 else ''}\n"
            f"{self.extra_conf}\n"
        )

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.write_conf()
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A private Mosquitto broker, started; stopped at teardown."""
    if shutil.which("mosquitto") is None:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto)")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def local_broker() -> tuple[str, int]:
    """The machine's Mosquitto at 127.0.0.1:1883 (started by .ci/services)."""
    try:
        wait_port(1883, timeout=5)
    except TimeoutError:
        pytest.fail("no MQTT broker at 127.0.0.1:1883: run `make services`")
    return "127.0.0.1", 1883


PG_ADMIN_URL = os.environ.get("BINSIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped at teardown. Yields a SQLAlchemy URL."""
    psycopg = pytest.importorskip("psycopg")
    name = f"binsight_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database URL per backend (server and fault tests): SQLite in tmp_path, or a fresh PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'binsight.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
