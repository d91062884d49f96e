"""The page on a live server (ServerRuntime: MQTT ingest + HTTP) with a private Mosquitto: a reading
published by a camera shows on the map, and "Capture now" reaches the camera's command topic."""

from __future__ import annotations

import dataclasses
import json
import queue
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port
from web_support import Seeded, login, shot


@pytest.fixture
def live(site: Seeded, mosquitto: Any, tmp_path: Path) -> Iterator[str]:
    """A ServerRuntime on a copy of the seeded database, connected to a private broker."""
    from binsight.server.config import load_server_config
    from binsight.server.runtime import ServerRuntime

    seeded_db = load_server_config(site.config_path).database.removeprefix("sqlite:///")
    copy = tmp_path / "live.db"
    with sqlite3.connect(seeded_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # consistent even while the session's server has the file open
    cfg = tmp_path / "server.toml"
    cfg.write_text(
        site.config_path.read_text()
        .replace('database = "sqlite:///binsight.db"', f'database = "sqlite:///{copy}"')
        .replace("port = 1\n", f'port = {mosquitto.port}\nclient_id = "web-live-{free_port()}"\n', 1)
        .replace(f"port = {site.base_url.rsplit(':', 1)[1]}", f"port = {free_port()}")
    )
    runtime = ServerRuntime(load_server_config(cfg))
    runtime.start()
    try:
        yield runtime.http_url
    finally:
        runtime.stop()


def _client(port: int) -> Any:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"web-test-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_live_reading_shows_and_a_command_reaches_the_camera(
    page: Any, site: Seeded, mosquitto: Any, live: str
) -> None:
    """Publish a reading as nrd-01's camera: the map shows it; "Capture now" on nrd-02 is published."""
    import httpx

    from binsight.protocol import Reading, Topics

    topics = Topics()
    cmds: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    cam = _client(mosquitto.port)
    cam.on_message = lambda _c, _u, m: cmds.put((m.topic, json.loads(m.payload)))
    cam.subscribe("binsight/+/cmd", qos=1)
    headers = {"Authorization": f"Bearer {site.tokens['operator']}"}
    try:
        # The server subscribes once connected: publish until the reading is stored.
        deadline = time.monotonic() + 30
        seq = 10_000
        while True:
            seq += 1
            r = Reading(
                bin_id="nrd-01", seq=seq, ts=int(time.time() * 1000), fill=0.05, quality="ok", model="m-live"
            )
            cam.publish(topics.reading("nrd-01"), r.model_dump_json(), qos=1).wait_for_publish(5)
            time.sleep(0.5)
            bins = httpx.get(live + "/api/bins", headers=headers, timeout=10).json()
            # The map shows the smoothed fill: a low reading counts once a second one agrees.
            if next(b for b in bins if b["id"] == "nrd-01")["fill_smooth"] == 0.05:
                break
            assert time.monotonic() < deadline, "the live server never stored the reading"

        login(page, dataclasses.replace(site, base_url=live), "operator")
        page.wait_for_selector("circle[data-bin='nrd-01']")
        page.hover("circle[data-bin='nrd-01']")
        assert "5%" in page.inner_text(".map-tooltip")
        shot(page, "live-map")

        page.goto(live + "/#/cameras/nrd-02")
        page.wait_for_selector(".commands button")
        page.click(".commands button:text-is('Capture now')")
        page.wait_for_selector("#flash:not([hidden])")
        assert "Sent" in page.inner_text("#flash")
        topic, cmd = cmds.get(timeout=10)
        assert topic == topics.cmd("nrd-02")
        assert cmd["action"] == "capture"
    finally:
        cam.loop_stop()
        cam.disconnect()
