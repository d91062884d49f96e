"""The real device link and the real server ingest, through the deploy/ broker config and accounts.

This is the seam where the three parts must agree: the agent's user name and topics, the server's
account and (shared) subscriptions, and the ACL. Two server processes' worth of ingest (two
accounts, one shared group) store every reading exactly once.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deploy_broker import DeployBroker

pytestmark = pytest.mark.broker

link_mod = pytest.importorskip("binsight.device.link")
runtime_mod = pytest.importorskip("binsight.server.runtime")

from sqlalchemy import select  # noqa: E402

from binsight.device.config import MqttConfig  # noqa: E402
from binsight.device.outbox import Outbox  # noqa: E402
from binsight.protocol import Command, Reading  # noqa: E402
from binsight.server.config import config_from_dict  # noqa: E402
from binsight.server.db.models import Device  # noqa: E402
from binsight.server.db.models import Reading as ReadingRow  # noqa: E402


def credential(broker: DeployBroker, name: str) -> Path:
    return broker.root / "credentials" / name / "mqtt_password"


@pytest.fixture
def no_env_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # binsight.secrets prefers the environment: make sure each side reads its own file.
    for var in ("BINSIGHT_MQTT_PASSWORD", "BINSIGHT_MQTT_PASSWORD_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


def server(broker: DeployBroker, tmp_path: Path, account: str) -> runtime_mod.ServerRuntime:
    cfg = config_from_dict(
        {
            "database": f"sqlite:///{tmp_path / 'server.db'}",
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "username": account,
                "password_file": str(credential(broker, account)),
                "client_id": f"{account}-test",
            },
            "ingest": {"linger_ms": 1.0},
        }
    )
    return runtime_mod.ServerRuntime(cfg, http=False)


@pytest.fixture
def servers(broker: DeployBroker, tmp_path: Path, no_env_password: None) -> Iterator[list[object]]:
    """Two ingest processes' worth (separate accounts, one shared group, one database)."""
    if "binsight-server-2" not in broker.passwords:
        broker.add_server("binsight-server-2")
        broker.reload()
    started = []
    try:
        for account in ("binsight-server", "binsight-server-2"):
            rt = server(broker, tmp_path, account)
            rt.start()
            started.append(rt)
        for rt in started:
            assert rt.broker.connected.wait(10), "server account could not log in"
        yield started
    finally:
        for rt in started:
            rt.stop()


def test_agent_readings_stored_once_and_commands_delivered(
    broker: DeployBroker, servers: list[runtime_mod.ServerRuntime], tmp_path: Path
) -> None:
    """40 readings from the agent's outbox land in the database once each; a command reaches it."""
    box = Outbox(tmp_path / "outbox.db")
    n = 40
    for _ in range(n):
        box.add_reading(lambda seq: Reading(bin_id="bin-1", seq=seq, ts=1, fill=0.5, quality="ok", model="m"))
    commands: queue.Queue[bytes] = queue.Queue()
    cfg = MqttConfig(
        host="127.0.0.1", port=broker.port, username="bin-1", password_file=credential(broker, "bin-1")
    )

    def on_command(payload: bytes, ack: Callable[[], None]) -> None:
        commands.put(payload)
        ack()

    link = link_mod.Link(cfg, "bin-1", box, on_command=on_command)
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        engine = servers[0].engine
        deadline = time.monotonic() + 15
        seqs: list[int] = []
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                seqs = sorted(
                    conn.execute(select(ReadingRow.seq).where(ReadingRow.bin_id == "bin-1")).scalars()
                )
            if len(seqs) >= n and box.depth() == 0:
                break
            time.sleep(0.1)
        assert seqs == list(range(n)), "every reading stored exactly once"
        assert box.depth() == 0 and link.counters.rejected == 0
        # Each writer counts after its commit: give the counters a moment to catch up with the rows.
        while (
            sum(rt.ingest.writer.stats.readings_ingested for rt in servers) < n
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert sum(rt.ingest.writer.stats.readings_ingested for rt in servers) == n, (
            "no reading written twice"
        )

        with engine.connect() as conn:
            available = conn.execute(select(Device.available).where(Device.bin_id == "bin-1")).scalar_one()
        assert available == "online"

        servers[0].broker.publish_command("bin-1", Command(id="c-1", action="send_stats"))
        assert Command.model_validate_json(commands.get(timeout=10)).id == "c-1"
    finally:
        link.stop()


def test_commands_for_an_offline_device_survive_a_broker_restart(
    broker: DeployBroker, servers: list[runtime_mod.ServerRuntime], tmp_path: Path
) -> None:
    """With the shipped Mosquitto config, commands the server sends while a device is offline are
    kept in the device's persistent session, across a broker restart, and delivered when it returns."""
    cfg = MqttConfig(
        host="127.0.0.1", port=broker.port, username="bin-1", password_file=credential(broker, "bin-1")
    )
    received: queue.Queue[bytes] = queue.Queue()

    def on_command(payload: bytes, ack: Callable[[], None]) -> None:
        received.put(payload)
        ack()

    box = Outbox(tmp_path / "outbox.db")
    link = link_mod.Link(cfg, "bin-1", box, on_command=on_command)
    link.start()
    assert link.wait_connected(10), link.last_error
    time.sleep(0.3)  # the cmd subscription is granted: the session holds it from now on
    link.stop()
    servers[0].broker.publish_command("bin-1", Command(id="off-1", action="capture"))
    servers[0].broker.publish_command("bin-1", Command(id="off-2", action="set_interval", interval_s=60))
    time.sleep(0.3)
    broker.stop()  # a clean shutdown writes the persistence file
    broker.start()
    link = link_mod.Link(cfg, "bin-1", box, on_command=on_command)
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        ids = [Command.model_validate_json(received.get(timeout=10)).id for _ in range(2)]
        assert ids == ["off-1", "off-2"]
    finally:
        link.stop()
        box.close()
