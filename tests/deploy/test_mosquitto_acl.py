"""deploy/mosquitto: per-device accounts and the %u ACL, enforced by a real Mosquitto."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import time
from typing import Any

import pytest
from deploy_broker import TIMEOUT, DeployBroker, Session

pytestmark = pytest.mark.broker


def login(broker: DeployBroker, sessions: list[Session], name: str, **kw: Any) -> Session:
    """A connected session for account ``name`` (its real password)."""
    s = Session(broker.port, name, broker.passwords[name], **kw)
    sessions.append(s)
    assert s.connect(), f"{name} was refused: {s.reason}"
    return s


def reading(bin_id: str, seq: int) -> str:
    return json.dumps({"bin_id": bin_id, "seq": seq, "ts": 1, "fill": 0.5, "quality": "ok", "model": "m"})


def assert_next_is_marker(sub: Session, marker_topic: str) -> None:
    """The next message ``sub`` gets is the marker: nothing published before it got through.

    The broker had handled the forbidden message (and answered it) before the marker was sent,
    and it forwards to one subscriber in the order it handled messages: had the forbidden one been
    forwarded it would arrive first.
    """
    msg = sub.received()
    assert msg.topic == marker_topic, f"forbidden message was delivered: {msg.topic} {msg.payload!r}"


def test_device_reading_reaches_server(broker: DeployBroker, sessions: list[Session]) -> None:
    """A device publishes its own reading; the server account receives it."""
    server = login(broker, sessions, "binsight-server")
    server.subscribe("binsight/+/reading")
    device = login(broker, sessions, "bin-1")
    assert not device.publish("binsight/bin-1/reading", reading("bin-1", 7)).is_failure
    msg = server.received()
    assert msg.topic == "binsight/bin-1/reading"
    assert json.loads(msg.payload)["seq"] == 7


@pytest.mark.parametrize(
    "topic",
    [
        "binsight/bin-2/reading",  # posing as another bin
        "binsight/bin-2/available",
        "binsight/bin-2/stats",
        "binsight/bin-2/image",
        "binsight/bin-2/event",
        "binsight/bin-1/cmd",  # commanding itself
        "binsight/bin-1/model",  # announcing its own model
        "binsight/bin-1/reading/extra",
    ],
)
def test_device_cannot_publish_outside_its_topics(
    broker: DeployBroker, sessions: list[Session], topic: str
) -> None:
    """The server never receives what a device publishes outside its own bin's device topics."""
    server = login(broker, sessions, "binsight-server")
    server.subscribe("binsight/#")
    device = login(broker, sessions, "bin-1")
    ack = device.publish(topic, reading("bin-2", 1))
    assert ack.is_failure, "MQTT 5 PUBACK should say the publish was not authorised"
    # Mosquitto 2.0 also drops the connection after a denied publish, so the marker comes from a
    # new session; the broker had fully handled the denied message before it sent that PUBACK.
    device.disconnected.wait(TIMEOUT)
    marker = login(broker, sessions, "bin-1")
    marker.publish("binsight/bin-1/stats", "marker")
    assert_next_is_marker(server, "binsight/bin-1/stats")


@pytest.mark.parametrize("kind", ["cmd", "model"])
def test_device_reads_only_its_own_commands(broker: DeployBroker, sessions: list[Session], kind: str) -> None:
    """bin-1 subscribed to bin-2's (and every bin's) cmd/model gets only its own."""
    spy = login(broker, sessions, "bin-1")
    spy.subscribe(f"binsight/bin-2/{kind}")
    spy.subscribe(f"binsight/+/{kind}")
    victim = login(broker, sessions, "bin-2")
    victim.subscribe(f"binsight/bin-2/{kind}")
    server = login(broker, sessions, "binsight-server")
    assert not server.publish(f"binsight/bin-2/{kind}", "secret-for-bin-2").is_failure
    assert victim.received().payload == b"secret-for-bin-2"
    server.publish(f"binsight/bin-1/{kind}", "for-bin-1")
    msg = spy.received()
    assert (msg.topic, msg.payload) == (f"binsight/bin-1/{kind}", b"for-bin-1")
    with pytest.raises(queue.Empty):
        spy.received(timeout=0.3)
    if kind == "model":  # do not leave retained state for other tests
        server.publish("binsight/bin-2/model", "", retain=True)


def test_retained_model_release_reaches_only_its_device(
    broker: DeployBroker, sessions: list[Session]
) -> None:
    """A retained model release is delivered to its device on subscribe, not to another device."""
    server = login(broker, sessions, "binsight-server")
    server.publish("binsight/bin-2/model", '{"version": "v2"}', retain=True)
    try:
        victim = login(broker, sessions, "bin-2")
        victim.subscribe("binsight/bin-2/model")
        assert victim.received().retain
        spy = login(broker, sessions, "bin-1")
        spy.subscribe("binsight/+/model")
        with pytest.raises(queue.Empty):
            spy.received(timeout=0.3)
    finally:
        server.publish("binsight/bin-2/model", "", retain=True)


@pytest.mark.parametrize(
    ("username", "password"),
    [(None, None), ("bin-1", "wrong-password"), ("bin-1", ""), ("no-such-bin", "x")],
    ids=["anonymous", "wrong-password", "empty-password", "unknown-user"],
)
def test_bad_logins_refused(
    broker: DeployBroker, sessions: list[Session], username: str | None, password: str | None
) -> None:
    """Anonymous clients, wrong passwords and unknown users get a refused CONNACK."""
    s = Session(broker.port, username, password)
    sessions.append(s)
    assert not s.connect()
    assert s.reason is not None and s.reason.is_failure


def drop(session: Session) -> None:
    """Cut the connection without DISCONNECT, as a power cut would: the broker sends the will."""
    sock = session.client.socket()
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)
    assert session.disconnected.wait(TIMEOUT)


def test_will_for_another_bin_not_published(broker: DeployBroker, sessions: list[Session]) -> None:
    """A device cannot leave a last will that marks another bin offline; its own will works."""
    server = login(broker, sessions, "binsight-server")
    server.subscribe("binsight/+/available")
    forged = login(broker, sessions, "bin-1", will=("binsight/bin-2/available", "offline"))
    drop(forged)
    time.sleep(0.2)
    own = login(broker, sessions, "bin-1", will=("binsight/bin-1/available", "offline"))
    drop(own)
    try:
        msg = server.received()
        assert (msg.topic, msg.payload) == ("binsight/bin-1/available", b"offline")
        with pytest.raises(queue.Empty):
            server.received(timeout=0.3)
    finally:  # the will was retained: clear it for the other tests
        login(broker, sessions, "bin-1").publish("binsight/bin-1/available", "", retain=True)


def test_client_id_of_another_bin_cannot_take_over(broker: DeployBroker, sessions: list[Session]) -> None:
    """bin-1 connecting with bin-2's client id does not disconnect bin-2 (client id = user name)."""
    server = login(broker, sessions, "binsight-server")
    server.subscribe("binsight/+/reading")
    victim = login(broker, sessions, "bin-2", client_id="bin-2")
    login(broker, sessions, "bin-1", client_id="bin-2")
    assert not victim.publish("binsight/bin-2/reading", reading("bin-2", 1)).is_failure
    assert server.received().topic == "binsight/bin-2/reading"
    assert not victim.disconnected.is_set()


def test_two_server_accounts_share_one_subscription(broker: DeployBroker, sessions: list[Session]) -> None:
    """Scale-out: two server accounts in one MQTT 5 shared group split the readings, none lost."""
    broker.add_server("binsight-server-2")
    broker.reload()
    a = login(broker, sessions, "binsight-server")
    b = login(broker, sessions, "binsight-server-2")
    for s in (a, b):
        granted = s.subscribe("$share/binsight/binsight/+/reading")
        assert not granted[0].is_failure
    device = login(broker, sessions, "bin-1")
    n = 200
    for seq in range(n):
        device.client.publish("binsight/bin-1/reading", reading("bin-1", seq), qos=1)
    seen: list[int] = []
    per_server = {"a": 0, "b": 0}
    deadline = time.monotonic() + 10
    while len(seen) < n and time.monotonic() < deadline:
        for key, s in (("a", a), ("b", b)):
            try:
                while True:
                    seen.append(json.loads(s.messages.get_nowait().payload)["seq"])
                    per_server[key] += 1
            except queue.Empty:
                pass
        time.sleep(0.01)
    assert sorted(seen) == list(range(n)), "every reading exactly once across the group"
    assert per_server["a"] > 0 and per_server["b"] > 0, per_server


def test_new_device_usable_after_reload(broker: DeployBroker, sessions: list[Session]) -> None:
    """add-device.sh then SIGHUP (systemctl reload) admits the new device without a restart."""
    broker.add_device("bin-new")
    probe = Session(broker.port, "bin-new", broker.passwords["bin-new"])
    sessions.append(probe)
    if probe.connect():
        pytest.fail("a device was admitted before the broker reloaded its password file")
    broker.reload()
    login(broker, sessions, "bin-new")


def test_one_account_is_one_session(broker: DeployBroker, sessions: list[Session]) -> None:
    """Two connections on one account displace each other whatever client ids they ask for.

    Why each server process needs its own account (docs/deploy.md, scale-out).
    """
    first = login(broker, sessions, "binsight-server", client_id="binsight-server-1")
    login(broker, sessions, "binsight-server", client_id="binsight-server-2")
    assert first.disconnected.wait(TIMEOUT)


def test_revoked_device(broker: DeployBroker, sessions: list[Session]) -> None:
    """The revocation in docs/deploy.md: clear the retained availability, delete, reload: gone."""
    broker.add_device("bin-gone")
    broker.reload()
    device = login(broker, sessions, "bin-gone")
    device.publish("binsight/bin-gone/available", "online", retain=True)
    device.publish("binsight/bin-gone/available", "", retain=True)  # step 1: clear it
    device.close()
    subprocess.run(
        ["mosquitto_passwd", "-D", str(broker.etc / "passwd"), "bin-gone"], check=True, capture_output=True
    )
    broker.reload()
    again = Session(broker.port, "bin-gone", broker.passwords["bin-gone"])
    sessions.append(again)
    assert not again.connect()
    server = login(broker, sessions, "binsight-server")
    server.subscribe("binsight/bin-gone/available")
    with pytest.raises(queue.Empty):
        server.received(timeout=0.3)


def test_alerts_and_home_assistant_topics(broker: DeployBroker, sessions: list[Session]) -> None:
    """The server publishes alerts, Home Assistant states and discovery; the homeassistant account
    reads them and may announce its birth but command nothing; a device cannot forge an alert."""
    name = "homeassistant"
    if name not in broker.passwords:
        subprocess.run(["mosquitto_passwd", "-b", str(broker.etc / "passwd"), name, "ha-pw"], check=True)
        broker.passwords[name] = "ha-pw"
        broker.reload()
    ha = login(broker, sessions, name)
    for topic in ("homeassistant/#", "binsight/_ha/#", "binsight/+/alert"):
        assert ha.subscribe(topic)[0].value < 128, topic
    server = login(broker, sessions, "binsight-server")
    for topic in (
        "homeassistant/sensor/binsight/bin-1_fill/config",
        "binsight/_ha/bin-1/state",
        "binsight/_ha/status",
        "binsight/bin-1/alert",
    ):
        assert not server.publish(topic, "{}").is_failure
        assert ha.received().topic == topic
    device = login(broker, sessions, "bin-1")
    assert device.publish("binsight/bin-1/alert", '{"event":"forged"}').is_failure
    assert not ha.publish("homeassistant/status", "online").is_failure  # its birth message
    marker = "binsight/_ha/marker"
    server.publish(marker, "{}")
    assert ha.received().topic == "homeassistant/status"  # the forged alert did not come first
    assert_next_is_marker(ha, marker)
    # Last: Mosquitto 2.0 drops a connection after a denied publish.
    assert ha.publish("binsight/bin-1/cmd", '{"action":"reboot"}').is_failure
