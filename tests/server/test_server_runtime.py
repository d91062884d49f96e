"""ServerRuntime: ingest and HTTP in one process; commands reach a device and its answer comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import paho.mqtt.client as mqtt
import pytest
from mqtt_helpers import wait_for
from paho.mqtt.enums import CallbackAPIVersion

from binsight.server.auth import create_token
from binsight.server.config import ServerConfig
from binsight.server.runtime import ServerRuntime

pytestmark = pytest.mark.broker


def test_runtime_commands_and_last_will(mosquitto: object, make_config: Callable[..., ServerConfig]) -> None:
    """A command posted to the API reaches the device over MQTT, its event marks it done; a dropped
    connection's last will shows the device offline with the reason; /healthz reports MQTT connected."""
    port = mosquitto.port  # type: ignore[attr-defined]
    rt = ServerRuntime(make_config(mqtt={"port": port, "client_id": "srv-rt"}))
    rt.start()
    try:
        with rt.sessions() as s, s.begin():
            token = create_token(s, "operator", "op")
        http = httpx.Client(base_url=rt.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        wait_for(lambda: http.get("/healthz").json()["mqtt"] is True, 10, "MQTT connected")

        got: list[dict[str, object]] = []
        dev = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="dev-1", protocol=mqtt.MQTTv5
        )
        dev.will_set("binsight/dev-1/available", "offline", qos=1, retain=True)
        dev.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
        dev.connect("127.0.0.1", port, keepalive=5)
        dev.subscribe("binsight/dev-1/cmd", qos=1)
        dev.loop_start()
        dev.publish("binsight/dev-1/available", "online", qos=1, retain=True).wait_for_publish(5)
        reading = {
            "bin_id": "dev-1",
            "seq": 0,
            "ts": int(time.time() * 1000),
            "fill": 0.3,
            "quality": "ok",
            "model": "m1",
        }
        dev.publish("binsight/dev-1/reading", json.dumps(reading), qos=1).wait_for_publish(5)
        wait_for(
            lambda: any(d["bin_id"] == "dev-1" and d["online"] for d in http.get("/api/devices").json()),
            10,
            "device online",
        )

        r = http.post("/api/devices/dev-1/commands", json={"action": "set_interval", "interval_s": 60})
        assert r.status_code == 202
        cmd_id = r.json()["id"]
        wait_for(lambda: bool(got), 10, "command at the device")
        assert got[0] == {"id": cmd_id, "action": "set_interval", "interval_s": 60.0, "reason": "command"}
        event = {
            "bin_id": "dev-1",
            "ts": int(time.time() * 1000),
            "kind": "command",
            "state": "ok",
            "ref": cmd_id,
        }
        dev.publish("binsight/dev-1/event", json.dumps(event), qos=1).wait_for_publish(5)
        wait_for(
            lambda: any(e["ref"] == cmd_id for e in http.get("/api/devices/dev-1/events").json()), 10, "event"
        )

        # Drop the TCP connection without DISCONNECT: the broker publishes the last will.
        dev.loop_stop()
        dev.socket().close()  # type: ignore[union-attr]
        wait_for(lambda: not http.get("/api/devices").json()[0]["online"], 20, "offline by last will")
        assert "last will" in http.get("/api/devices").json()[0]["reason"]
        assert "binsight_devices_online 0" in http.get("/metrics").text
    finally:
        rt.stop()
