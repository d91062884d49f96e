"""``send_device_command``: the row is committed before the command is published, for every sender.

A device answers a command with an event that ingest applies as an UPDATE of the command's row; an
answer that arrived before the row existed would be lost. The fake here is the broker's side only:
at publish time it reads the database, as the device's answer would.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from mqtt_helpers import command_answer, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import Command
from binsight.server.config import ServerConfig
from binsight.server.db.models import Device, DeviceCommand
from binsight.server.device_commands import send_device_command
from binsight.server.rollout.coverage import request_coverage
from binsight.server.runtime import ServerRuntime


class RowCheckingBroker:
    """Takes commands like the broker connection; notes the command's row as it stood at publish."""

    def __init__(self, sessions: sessionmaker[Session], refuse: str | None = None) -> None:
        self.sessions = sessions
        self.refuse = refuse
        self.published: list[tuple[str, str, str | None]] = []  # bin, command id, row status then

    def publish_command(self, bin_id: str, command: Command) -> None:
        with self.sessions() as s:
            row = s.get(DeviceCommand, command.id)
            self.published.append((bin_id, command.id, row.status if row is not None else None))
        if self.refuse is not None:
            raise ConnectionError(self.refuse)


def test_the_row_exists_before_the_command_is_published(sessions: sessionmaker[Session]) -> None:
    """The command's row is committed, status "sent", when the broker gets the command."""
    broker = RowCheckingBroker(sessions)
    cmd = Command(id="c-1", action="set_interval", interval_s=60)
    send_device_command(sessions, broker, "bin-1", cmd, created_by="op")
    assert broker.published == [("bin-1", "c-1", "sent")]
    with sessions() as s:
        row = s.get(DeviceCommand, "c-1")
        assert row is not None
        assert (row.bin_id, row.action, row.interval_s, row.created_by) == ("bin-1", "set_interval", 60, "op")


def test_a_command_not_published_is_marked_failed(sessions: sessionmaker[Session]) -> None:
    """No broker connection: ConnectionError for the caller, and the row says failed and why."""
    broker = RowCheckingBroker(sessions, refuse="not connected to the MQTT broker")
    with pytest.raises(ConnectionError, match="not connected"):
        send_device_command(sessions, broker, "bin-1", Command(id="c-2", action="capture"), created_by="op")
    with sessions() as s:
        row = s.get(DeviceCommand, "c-2")
        assert row is not None and row.status == "failed" and row.detail == "not connected to the MQTT broker"


def test_coverage_requests_record_before_they_publish(sessions: sessionmaker[Session]) -> None:
    """Coverage sampling sends through the same function: each row exists when its command goes out."""
    broker = RowCheckingBroker(sessions)
    plan = [{"bin_id": f"bin-{i}", "score": 1.0, "reasons": ["0 labels (< 20)"]} for i in range(3)]
    sent = request_coverage(sessions, broker, plan, limit=2)
    assert [p[0] for p in broker.published] == ["bin-0", "bin-1"]
    assert all(status == "sent" for _b, _c, status in broker.published)
    with sessions() as s:
        rows = [s.get(DeviceCommand, item["command"]) for item in sent]
        assert all(r is not None and r.created_by == "coverage" for r in rows)
        assert rows[0] is not None and rows[0].detail == "0 labels (< 20)"


@pytest.mark.broker
def test_an_instant_answer_to_a_coverage_request_is_recorded(
    mosquitto: object, make_config: Callable[..., ServerConfig]
) -> None:
    """A device that answers the moment its command arrives: the command's row ends "ok"."""
    port = mosquitto.port  # type: ignore[attr-defined]
    rt = ServerRuntime(make_config(mqtt={"port": port, "client_id": "srv-cov"}), http=False)
    rt.start()
    dev = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="bin-q", protocol=mqtt.MQTTv5
    )

    def answer(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        client.publish("binsight/bin-q/event", command_answer("bin-q", json.loads(msg.payload)["id"]), qos=1)

    try:
        assert rt.broker is not None and rt.broker.connected.wait(10)
        dev.on_message = answer
        dev.connect("127.0.0.1", port)
        dev.subscribe("binsight/bin-q/cmd", qos=1)
        dev.loop_start()
        dev.publish("binsight/bin-q/available", "online", qos=1, retain=True).wait_for_publish(5)

        def online() -> bool:
            with rt.sessions() as s:
                d = s.get(Device, "bin-q")
                return d is not None and d.available == "online"

        wait_for(online, 10, "the device online")
        sent = rt.monitor.coverage()
        assert [p["bin_id"] for p in sent] == ["bin-q"]

        def answered() -> bool:
            with rt.sessions() as s:
                row = s.get(DeviceCommand, sent[0]["command"])
                return row is not None and row.status == "ok"

        wait_for(answered, 10, "the answer applied to the command's row")
    finally:
        dev.loop_stop()
        dev.disconnect()
        rt.stop()
