"""Ingest through a real Mosquitto: end to end, killed mid-stream, and two servers sharing the load."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_helpers import (
    count_readings,
    publish_readings,
    publisher,
    start_server,
    wait_for,
    wait_published,
    write_server_toml,
)
from netutil import free_port
from server_helpers import JPEG, image
from sqlalchemy import select

from binsight.server.broker import BrokerConnection
from binsight.server.config import ServerConfig
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import Device, Image, IngestReject
from binsight.server.ingest.service import Ingest

pytestmark = pytest.mark.broker


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_ingest_end_to_end(mosquitto: object, make_config: Callable[..., ServerConfig], db_url: str) -> None:
    """Readings, a bad payload and availability go from the broker into the database (both DBs)."""
    cfg = make_config(database=db_url, mqtt={"port": mosquitto.port, "client_id": "srv-e2e"})  # type: ignore[attr-defined]
    engine = make_engine(cfg.database)
    upgrade(engine)
    ingest = Ingest(cfg, make_sessionmaker(engine), BrokerConnection(cfg.mqtt, cfg.ingest))
    ingest.start()
    try:
        assert ingest.broker.connected.wait(10)
        time.sleep(0.3)  # subscriptions granted
        pub = publisher(mosquitto.port)  # type: ignore[attr-defined]
        infos = publish_readings(pub, [f"bin-{i}" for i in range(5)], 200)
        infos.append(pub.publish("binsight/bin-0/reading", b"{broken", qos=1))
        infos.append(pub.publish("binsight/bin-0/available", b"online", qos=1, retain=True))
        # A 400 KB image spans several socket reads: the buffered reader must reassemble it.
        big = image("bin-1", 3, jpeg=JPEG + bytes(400_000))
        infos.append(pub.publish("binsight/bin-1/image", json.dumps(big), qos=1))
        wait_published(infos)
        wait_for(lambda: count_readings(cfg.database)[0] == 1000, 30, "1000 readings")
        wait_for(lambda: ingest.rejects.snapshot().get("invalid_json") == 1, 10, "the reject")
        sessions = make_sessionmaker(engine)

        def image_stored() -> bool:
            with sessions() as s:
                return s.execute(select(Image.id)).first() is not None

        wait_for(image_stored, 10, "the image")
        pub.disconnect()
    finally:
        ingest.stop()
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        devs = {d.bin_id: d for d in s.execute(select(Device)).scalars()}
        assert set(devs) == {f"bin-{i}" for i in range(5)}
        assert all(d.seq_count == 200 and d.seq_max == 199 for d in devs.values())
        assert devs["bin-0"].available == "online"
        assert s.get(IngestReject, "invalid_json").count == 1  # type: ignore[union-attr]
        stored_image = s.execute(select(Image)).scalar_one()
        assert stored_image.size == len(JPEG) + 400_000 and stored_image.jpeg[:4] == JPEG[:4]
    assert ingest.writer.stats.readings_ingested == 1000
    engine.dispose()


def test_mqtt_311_broker(mosquitto: object, make_config: Callable[..., ServerConfig]) -> None:
    """With protocol 3.1.1 (brokers without MQTT 5, like the demo's amqtt) ingest works, unshared."""
    cfg = make_config(mqtt={"port": mosquitto.port, "client_id": "srv-311", "protocol": "3.1.1"})  # type: ignore[attr-defined]
    engine = make_engine(cfg.database)
    upgrade(engine)
    ingest = Ingest(cfg, make_sessionmaker(engine), BrokerConnection(cfg.mqtt, cfg.ingest))
    assert not any(t.startswith("$share") for t in ingest.broker.subscriptions())
    ingest.start()
    try:
        assert ingest.broker.connected.wait(10)
        time.sleep(0.3)
        pub = publisher(mosquitto.port)  # type: ignore[attr-defined]
        wait_published(publish_readings(pub, ["v311"], 50))
        wait_for(lambda: count_readings(cfg.database)[0] == 50, 20, "50 readings")
        pub.disconnect()
    finally:
        ingest.stop()
        engine.dispose()


def test_resumed_session_subscribes_again(
    mosquitto: object, make_config: Callable[..., ServerConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """After a broker restart the server's session is back (persistence) but its shared subscription
    is not: the server subscribes on that CONNACK too, so a reading finds a subscriber (PUBACK 0x00,
    not 0x10 No matching subscribers) and is stored; both connects and subscribes are counted."""
    cfg = make_config(mqtt={"port": mosquitto.port, "client_id": "srv-resume"})  # type: ignore[attr-defined]
    engine = make_engine(cfg.database)
    upgrade(engine)
    broker = BrokerConnection(cfg.mqtt, cfg.ingest)
    ingest = Ingest(cfg, make_sessionmaker(engine), broker)
    caplog.set_level("INFO", logger="binsight.server.broker")
    ingest.start()
    try:
        wait_for(lambda: broker.subscribes == 1, 10, "the first SUBACK")
        mosquitto.stop()  # type: ignore[attr-defined]
        mosquitto.start()  # type: ignore[attr-defined]
        wait_for(lambda: broker.connects == 2 and broker.subscribes == 2, 20, "a resubscription")
        assert "session present: True" in caplog.text
        pub = publisher(mosquitto.port)  # type: ignore[attr-defined]
        acks: list[int] = []
        pub.on_publish = lambda _c, _u, _mid, rc, _p: acks.append(rc.value)
        wait_published(publish_readings(pub, ["resumed"], 5))
        assert acks == [0] * 5, f"PUBACK reason codes {acks}: no server subscribed"
        wait_for(lambda: count_readings(cfg.database)[0] == 5, 20, "5 readings")
        pub.disconnect()
    finally:
        ingest.stop()
        engine.dispose()


def test_killed_mid_stream_loses_and_doubles_nothing(mosquitto: object, tmp_path: Path) -> None:
    """SIGKILL the server while 10,000 readings stream in, restart it: every reading stored exactly once."""
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    conf = write_server_toml(
        tmp_path / "server.toml",
        database=db,
        mqtt_port=mosquitto.port,  # type: ignore[attr-defined]
        http_port=0,
        client_id="srv-kill",
    )
    log = tmp_path / "server.log"
    proc = start_server(conf, log)
    try:
        wait_for(lambda: "connected to MQTT" in log.read_text(), 30, "server connected")
        time.sleep(0.3)
        pub = publisher(mosquitto.port)  # type: ignore[attr-defined]
        bins = [f"k-{i}" for i in range(20)]
        infos = publish_readings(pub, bins, 250)
        wait_for(lambda: count_readings(db)[0] >= 1000, 60, "some readings stored before the kill", step=0.05)
        proc.kill()  # SIGKILL: no flush, no clean disconnect
        proc.wait()
        stored_at_kill = count_readings(db)[0]
        infos += publish_readings(pub, bins, 250, start_seq=250)  # keeps streaming while the server is down
        wait_published(infos)
        assert stored_at_kill < 10_000, "the kill came too late to test anything"
        proc = start_server(conf, log)
        wait_for(lambda: count_readings(db)[0] >= 10_000, 120, "all 10,000 readings after restart")
        time.sleep(1.0)  # redeliveries still in flight must not add rows
        rows, distinct = count_readings(db)
        assert (rows, distinct) == (10_000, 10_000)
        pub.disconnect()
    finally:
        _stop(proc)
    engine = make_engine(db)
    with make_sessionmaker(engine)() as s:
        assert all(
            d.seq_max - d.seq_min + 1 == d.seq_count == 500 for d in s.execute(select(Device)).scalars()
        )
    engine.dispose()


def _metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} (\S+)$", body, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


@pytest.mark.postgres
def test_two_servers_share_the_load(mosquitto: object, pg_url: str, tmp_path: Path) -> None:
    """Two server processes in one shared-subscription group: each reading reaches one, stored once."""
    ports = [free_port(), free_port()]
    procs = []
    try:
        for i, port in enumerate(ports):
            conf = write_server_toml(
                tmp_path / f"s{i}.toml",
                database=pg_url,
                mqtt_port=mosquitto.port,  # type: ignore[attr-defined]
                http_port=port,
                client_id=f"srv-share-{i}",
                shared_group="g1",
            )
            procs.append(start_server(conf, tmp_path / f"s{i}.log"))
        for i in range(2):
            wait_for(
                lambda i=i: "connected to MQTT" in (tmp_path / f"s{i}.log").read_text(), 30, f"server {i}"
            )
        time.sleep(0.5)
        pub = publisher(mosquitto.port)  # type: ignore[attr-defined]
        wait_published(publish_readings(pub, [f"s-{i}" for i in range(10)], 500))
        wait_for(lambda: count_readings(pg_url)[0] >= 5000, 60, "5000 readings")
        time.sleep(0.5)
        assert count_readings(pg_url) == (5000, 5000)
        ingested = [_metric(p, "binsight_readings_ingested_total") for p in ports]
        dups = [_metric(p, "binsight_readings_duplicate_total") for p in ports]
        assert sum(ingested) == 5000 and sum(dups) == 0
        assert min(ingested) > 500, f"load not shared: {ingested}"
        pub.disconnect()
    finally:
        for p in procs:
            _stop(p)
