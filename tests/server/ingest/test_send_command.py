"""``BrokerConnection.publish_command``: QoS 1, kept for an offline device, with an expiry per action."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from binsight.protocol import Command
from binsight.server.broker import BrokerConnection
from binsight.server.config import IngestConfig, MqttConfig

pytestmark = pytest.mark.broker


class Device:
    """A device's persistent MQTT 5 session subscribed to its cmd topic (QoS 1)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.got: list[tuple[bytes, int, int | None]] = []  # payload, qos, message expiry left
        self.ready = threading.Event()

    def connect(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bin-x", protocol=mqtt.MQTTv5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.ready.wait(10)
        time.sleep(0.2)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe("binsight/bin-x/cmd", qos=1)
        self.ready.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        expiry = getattr(msg.properties, "MessageExpiryInterval", None) if msg.properties else None
        self.got.append((bytes(msg.payload), msg.qos, expiry))

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.ready.clear()


def test_commands_wait_for_an_offline_device_with_their_expiry(mosquitto: Any) -> None:
    broker = BrokerConnection(MqttConfig(port=mosquitto.port, client_id="srv-cmd"), IngestConfig())
    broker.start()
    device = Device(mosquitto.port)
    try:
        assert broker.connected.wait(10)
        device.connect()
        device.disconnect()  # offline, session kept
        broker.publish_command("bin-x", Command(id="c-cap", action="capture"))
        broker.publish_command("bin-x", Command(id="c-int", action="set_interval", interval_s=60))
        time.sleep(0.5)
        device.connect()
        deadline = time.monotonic() + 10
        while len(device.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = {Command.model_validate_json(p).id: (qos, expiry) for p, qos, expiry in device.got}
        assert set(got) == {"c-cap", "c-int"}
        cap_qos, cap_expiry = got["c-cap"]
        assert cap_qos == 1 and cap_expiry is not None
        assert 0 < cap_expiry <= BrokerConnection.COMMAND_EXPIRY_S["capture"]  # type: ignore[operator]
        assert got["c-int"] == (1, None), "an interval change does not expire"
    finally:
        device.disconnect()
        broker.stop()
