"""Store and forward end to end: real agents, a real server, a private Mosquitto with persistence.

Each test breaks one link of the chain agent -> broker -> server -> database while an agent
publishes, and then counts: ``sent`` is every reading the agents made (their seq ranges, read from
their outboxes), ``stored`` the rows in the database. Nothing may be missing, nothing doubled.

The agents read a folder of images once (``camera.loop = false``) at a short interval: each capture
is one reading, and an agent exits by itself once its outbox is empty, so "sent" is known exactly.
Agents and the server run as their own processes (``binsight device run``, ``binsight server run``),
so they can be killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).parents[1] / "device"), str(Path(__file__).parents[1] / "server")]

from device_support import build_model, scene, write_config, write_images  # noqa: E402
from mqtt_helpers import count_readings, start_server, wait_for, write_server_toml  # noqa: E402

pytestmark = pytest.mark.broker

IMAGES = 40
INTERVAL_S = 0.1


@dataclass
class Chain:
    """The broker, a server (process) and agents (processes), and where each keeps its files."""

    tmp: Path
    broker: object
    source: Path
    model: Path
    db: str = ""
    server: subprocess.Popen[bytes] | None = None
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.broker.port)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ the server
    def start_server(self) -> None:
        conf = write_server_toml(
            self.tmp / "server.toml", database=self.db, mqtt_port=self.port, http_port=0, client_id="srv-f"
        )
        log = self.tmp / "server.log"
        seen = log.read_text().count("subscribed to") if log.exists() else 0
        self.server = start_server(conf, log)
        wait_for(lambda: log.read_text().count("subscribed to") > seen, 30, "the server subscribed")

    def stop_server(self, sig: int = signal.SIGTERM) -> None:
        assert self.server is not None
        self.server.send_signal(sig)
        self.server.wait(20)

    # ------------------------------------------------------------------ agents
    def start_agent(self, bin_id: str) -> None:
        cfg = write_config(
            self.tmp, bin_id=bin_id, source=self.source, model=self.model, port=self.port,
            interval_s=INTERVAL_S, loop=False,
        )  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.agents[bin_id] = subprocess.Popen(
            [sys.executable, "-m", "binsight", "-v", "device", "run", "--config", str(cfg)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{bin_id}.log", "ab"),  # noqa: SIM115 - owned by the process
            env=env,
        )

    def made(self, bin_id: str) -> int:
        """Readings the agent has numbered so far (its outbox's next seq): its seqs are 0 .. made-1."""
        path = self.tmp / f"{bin_id}.db"
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
                row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        except sqlite3.OperationalError:
            return 0  # the agent is still creating it
        return int(row[0]) if row else 0

    def waiting(self, bin_id: str) -> int:
        with sqlite3.connect(f"file:{self.tmp / bin_id}.db?mode=ro", uri=True, timeout=10) as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'reading'").fetchone()[0])

    def wait_made(self, bin_id: str, n: int) -> None:
        wait_for(lambda: self.made(bin_id) >= n, 30, f"{bin_id}: {n} readings made", step=0.05)

    def agents_finish(self) -> None:
        """Each agent read its folder, drained its outbox and exited 0."""
        for bin_id, proc in self.agents.items():
            rc = proc.wait(60)
            assert rc == 0, (self.tmp / f"{bin_id}.log").read_text()[-3000:]
            assert self.waiting(bin_id) == 0, f"{bin_id} exited with readings in its outbox"

    def stop(self) -> None:
        for proc in [*self.agents.values(), self.server]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("faults-material")
    images = write_images(folder / "images", [scene(60 + 3 * i, seed=i) for i in range(IMAGES)])
    return images, build_model(folder / "v1.onnx", "v1")


#: Where a fault involves the server's commits, it runs on both backends (``chain``'s param).
BOTH_DATABASES = pytest.mark.parametrize(
    "chain", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def chain(
    request: pytest.FixtureRequest, tmp_path: Path, mosquitto: object, material: tuple[Path, Path]
) -> Iterator[Chain]:
    """The chain around a private broker; the server's database is SQLite unless the param says postgres."""
    backend = getattr(request, "param", "sqlite")
    db = request.getfixturevalue("pg_url") if backend == "postgres" else f"sqlite:///{tmp_path / 'server.db'}"
    c = Chain(tmp_path, mosquitto, *material, db=db)
    try:
        yield c
    finally:
        c.stop()


def _count(chain: Chain, fault_counts) -> None:
    """Every reading made is stored exactly once (the server deduplicates on (bin_id, seq))."""
    sent = sum(chain.made(b) for b in chain.agents)
    fault_counts.sent = sent
    with contextlib.suppress(AssertionError):  # the counts below say what is missing
        wait_for(lambda: count_readings(chain.db)[0] >= sent, 30, f"{sent} readings stored")
    time.sleep(0.5)  # a late redelivery must not add a row
    rows, distinct = count_readings(chain.db)
    fault_counts.stored = distinct
    assert rows == distinct, f"{rows - distinct} readings stored twice"
    assert distinct == sent, f"stored {distinct} of {sent} readings (seq gaps)"


def _restart_broker(chain: Chain) -> None:
    chain.broker.stop()  # type: ignore[attr-defined]  # SIGTERM: Mosquitto saves its database
    chain.broker.start()  # type: ignore[attr-defined]


@BOTH_DATABASES
def test_broker_restart_while_the_server_is_away(chain: Chain, fault_counts) -> None:
    """The measured loss: the broker restarts while the server is away and comes back without the
    server's shared subscription; the agent's readings get "No matching subscribers" until the server
    is back. They stay in its outbox and arrive once the server has subscribed again."""
    chain.start_server()  # its persistent session (and shared subscription) now exist in the broker
    chain.stop_server()
    chain.start_agent("f-a")
    chain.wait_made("f-a", 5)
    _restart_broker(chain)
    chain.wait_made("f-a", 15)  # published into a broker no server is subscribed to
    chain.start_server()
    chain.agents_finish()
    _count(chain, fault_counts)


def test_broker_restart_with_the_server_running(chain: Chain, fault_counts) -> None:
    """Broker down ~1 s and back: agent and server reconnect (the agent usually first); the server
    subscribes again on its resumed session, and the agent holds what it sent in between."""
    chain.start_server()
    chain.start_agent("f-b")
    chain.wait_made("f-b", 8)
    chain.broker.stop()  # type: ignore[attr-defined]
    time.sleep(1.0)
    chain.broker.start()  # type: ignore[attr-defined]
    chain.agents_finish()
    _count(chain, fault_counts)
    log = (chain.tmp / "server.log").read_text()
    assert "session present: True" in log and log.count("subscribed to") >= 2, log[-3000:]


@BOTH_DATABASES
def test_server_sigkill_while_agents_publish(chain: Chain, fault_counts) -> None:
    """SIGKILL the server (nothing flushed, no clean disconnect) while two agents publish, restart it:
    the broker kept the server's queue, and what the dead server had not committed comes again."""
    chain.start_server()
    for bin_id in ("f-c1", "f-c2"):
        chain.start_agent(bin_id)
    wait_for(lambda: count_readings(chain.db)[0] >= 6, 30, "readings stored before the kill", step=0.05)
    chain.stop_server(signal.SIGKILL)
    chain.wait_made("f-c1", chain.made("f-c1") + 8)  # published while no server runs
    chain.start_server()
    chain.agents_finish()
    _count(chain, fault_counts)


def test_agent_sigkill_mid_stream(chain: Chain, fault_counts) -> None:
    """SIGKILL the agent mid-stream and start it again: its outbox on disk still has what was not
    acknowledged, its seq continues, and the server stores every reading once."""
    chain.start_server()
    chain.start_agent("f-d")
    wait_for(lambda: count_readings(chain.db)[0] >= 8, 30, "readings stored before the kill", step=0.05)
    chain.agents["f-d"].send_signal(signal.SIGKILL)
    chain.agents["f-d"].wait(10)
    first = chain.made("f-d")
    chain.start_agent("f-d")  # reads the folder again: IMAGES more readings, seqs from `first` on
    chain.agents_finish()
    assert chain.made("f-d") == first + IMAGES
    _count(chain, fault_counts)
