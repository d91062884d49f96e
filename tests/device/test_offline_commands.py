"""Commands sent while a device is offline wait in its persistent session and run exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from device_support import Collector, load_config, write_config
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from binsight.device.agent import Agent
from binsight.device.config import DeviceConfig

pytestmark = pytest.mark.broker

TOPIC = "binsight/bin-o/cmd"


class Publisher:
    """An MQTT 5 client that publishes commands, optionally with a message expiry."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pub-test", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, cmd: dict[str, Any], expiry_s: int | None = None) -> None:
        props = None
        if expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = expiry_s
        self.client.publish(TOPIC, json.dumps(cmd), qos=1, properties=props).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Any) -> Iterator[Publisher]:
    p = Publisher(mosquitto.port)
    yield p
    p.close()


def _cfg(tmp_path: Path, port: int, model: Path, source: Path, protocol: str) -> DeviceConfig:
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-o", source=source, model=model, port=port, interval_s=600)
    )
    return cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"protocol": protocol})})


def _run_until(agent: Agent, col: Collector, pred: Any) -> None:
    agent.start()
    try:
        col.wait_for(pred)
    finally:
        agent.stop()


def _events(col: Collector, ref: str) -> list[dict[str, Any]]:
    """The command's events, each once: an event whose PUBACK was still on its way when the agent
    stopped is sent again by the outbox at the next start (same event, same ``ts``)."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in col.payloads("event"):
        if e["kind"] == "command" and e["ref"] == ref:
            seen.setdefault((e["ts"], e["state"], e.get("detail")), e)
    return list(seen.values())


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_command_sent_while_offline_runs_once_after_restart(
    tmp_path: Path, mosquitto: Any, scenes: Path, model_v1: Path, collector_factory: Any,
    publisher: Publisher, protocol: str,
) -> None:  # fmt: skip
    """Agent stopped, command published, agent restarted: it runs, once; another restart: not again."""
    col = collector_factory(mosquitto.port)
    cfg = _cfg(tmp_path, mosquitto.port, model_v1, scenes, protocol)
    # First run: the session (and its cmd subscription) exists at the broker from now on.
    _run_until(Agent(cfg), col, lambda: len(col.payloads("reading")) >= 1)
    publisher.send({"id": "while-off", "action": "capture"})
    publisher.send({"id": "interval-off", "action": "set_interval", "interval_s": 1234})
    readings_before = len(col.payloads("reading"))
    agent = Agent(cfg)
    _run_until(
        agent, col, lambda: len(_events(col, "while-off")) >= 1 and len(_events(col, "interval-off")) >= 1
    )
    assert agent.interval_s == 1234
    time.sleep(1.0)  # a duplicate would come right behind
    assert [e["state"] for e in _events(col, "while-off")] == ["ok"]
    assert "seq" in (_events(col, "while-off")[0]["detail"] or "")
    assert len(col.payloads("reading")) >= readings_before + 2  # the start-up capture and the command's
    # Restarted again: the broker had its PUBACK, nothing comes back, nothing runs twice.
    agent = Agent(cfg)
    n_readings = len(col.payloads("reading"))
    _run_until(agent, col, lambda: len(col.payloads("reading")) > n_readings)
    time.sleep(1.0)
    assert len(_events(col, "while-off")) == 1
    assert len(_events(col, "interval-off")) == 1


def test_expired_command_does_not_run(
    tmp_path: Path, mosquitto: Any, scenes: Path, model_v1: Path, collector_factory: Any, publisher: Publisher
) -> None:
    """A command whose MQTT 5 message expiry passed while the device was offline never runs."""
    col = collector_factory(mosquitto.port)
    cfg = _cfg(tmp_path, mosquitto.port, model_v1, scenes, "5")
    _run_until(Agent(cfg), col, lambda: len(col.payloads("reading")) >= 1)
    publisher.send({"id": "stale", "action": "capture"}, expiry_s=1)
    publisher.send({"id": "fresh", "action": "send_stats"}, expiry_s=600)
    time.sleep(2.5)
    _run_until(Agent(cfg), col, lambda: len(_events(col, "fresh")) >= 1)
    time.sleep(0.5)
    assert _events(col, "stale") == []


def test_a_command_delivered_twice_runs_once(
    tmp_path: Path, mosquitto: Any, scenes: Path, model_v1: Path, collector_factory: Any, publisher: Publisher
) -> None:
    """A redelivery (its PUBACK lost with a session) carries the same id: run once, acknowledged twice."""
    col = collector_factory(mosquitto.port)
    cfg = _cfg(tmp_path, mosquitto.port, model_v1, scenes, "5")
    agent = Agent(cfg)
    agent.start()
    try:
        col.wait_for(lambda: len(col.payloads("reading")) >= 1)
        publisher.send({"id": "twice", "action": "capture"})
        publisher.send({"id": "twice", "action": "capture"})
        publisher.send({"id": "after", "action": "send_stats"})
        col.wait_for(lambda: len(_events(col, "after")) >= 1)
        assert len(_events(col, "twice")) == 1
    finally:
        agent.stop()
