"""Alerts and Home Assistant discovery through a real Mosquitto, a running server and a fake camera."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from test_alerts import Receiver, wait_for

from binsight.server.config import ServerConfig
from binsight.server.runtime import ServerRuntime


class Listener:
    """A subscriber that keeps every message (topic -> list of (payload, retained))."""

    def __init__(self, port: int, topics: list[str], client_id: str) -> None:
        self.got: dict[str, list[tuple[bytes, bool]]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        for t in topics:
            self.client.subscribe(t, qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.setdefault(m.topic, []).append((bytes(m.payload), bool(m.retain)))

    def last(self, topic: str) -> Any:
        with self.lock:
            msgs = self.got.get(topic)
        return (
            json.loads(msgs[-1][0])
            if msgs and msgs[-1][0][:1] in (b"{", b"[")
            else (msgs[-1][0].decode() if msgs else None)
        )

    def all(self, topic: str) -> list[Any]:
        with self.lock:
            return [json.loads(p) for p, _r in self.got.get(topic, [])]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_alerts_and_discovery_follow_readings(
    mosquitto: object, make_config: Callable[..., ServerConfig]
) -> None:
    """Discovery configs appear (retained) for a bin once it is seen; its state follows its readings;
    passing the threshold and going offline each give one MQTT alert and one webhook POST; the
    availability topic is online while the server runs and offline after it stops."""
    port = mosquitto.port  # type: ignore[attr-defined]
    receiver = Receiver()
    cfg = make_config(
        mqtt={"port": port, "client_id": "srv-alerts"},
        forecast={"threshold": 0.8},
        alerts={"enabled": True, "webhook_url": receiver.url, "check_interval_s": 1},
        homeassistant={"enabled": True},
    )
    rt = ServerRuntime(cfg)
    ha = Listener(port, ["homeassistant/#", "binsight/_ha/#", "binsight/+/alert"], "ha-test")
    dev = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="dev-ha", protocol=mqtt.MQTTv5
    )
    dev.connect("127.0.0.1", port)
    dev.loop_start()
    rt.start()
    try:

        def send(seq: int, fill: float) -> None:
            body = {
                "bin_id": "dev-ha",
                "seq": seq,
                # A second apart: two readings in the same millisecond are one moment to the filter.
                "ts": int(time.time() * 1000) - (10 - seq) * 1000,
                "fill": fill,
                "quality": "ok",
                "model": "m1",
            }
            dev.publish("binsight/dev-ha/reading", json.dumps(body), qos=1).wait_for_publish(5)

        dev.publish("binsight/dev-ha/available", "online", qos=1, retain=True).wait_for_publish(5)
        send(1, 0.3)
        fill_cfg, cam_cfg = (
            "homeassistant/sensor/binsight/dev-ha_fill/config",
            "homeassistant/binary_sensor/binsight/dev-ha_camera/config",
        )
        state = "binsight/_ha/dev-ha/state"
        wait_for(lambda: ha.last(state) == {"fill": 30.0, "camera": "online"}, 20)
        config = ha.last(fill_cfg)
        assert config["state_topic"] == state and config["availability_topic"] == "binsight/_ha/status"
        assert config["unit_of_measurement"] == "%" and config["unique_id"] == "binsight_dev-ha_fill"
        assert ha.last(cam_cfg)["device_class"] == "connectivity"
        assert ha.last("binsight/_ha/status") == "online"

        late = Listener(port, ["homeassistant/#"], "ha-late")  # configs are retained: a late HA sees them
        wait_for(lambda: {fill_cfg, cam_cfg} <= set(late.got), 10)
        assert all(retained for msgs in late.got.values() for _p, retained in msgs)
        late.close()

        send(2, 0.9)
        send(3, 0.92)  # still full: no second alert
        # The smoothed fill: the two readings agree on a jump to their median.
        wait_for(lambda: ha.last(state) == {"fill": 91.0, "camera": "online"}, 20)
        wait_for(lambda: receiver.events() == [("dev-ha", "threshold")], 10)
        dev.publish("binsight/dev-ha/available", "offline", qos=1, retain=True).wait_for_publish(5)
        wait_for(lambda: ha.last(state) == {"fill": 91.0, "camera": "offline"}, 20)
        wait_for(lambda: len(receiver.events()) == 2, 10)
        time.sleep(1.5)  # another round or more: nothing new
        assert receiver.events() == [("dev-ha", "threshold"), ("dev-ha", "offline")]
        assert [a["event"] for a in ha.all("binsight/dev-ha/alert")] == ["threshold", "offline"]
    finally:
        rt.stop()
        dev.loop_stop()
        dev.disconnect()
        receiver.close()
    wait_for(lambda: ha.last("binsight/_ha/status") == "offline", 10)
    ha.close()
