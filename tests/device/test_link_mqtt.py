"""The MQTT link against a real Mosquitto: refused is refused; credentials; MQTT 3.1.1; backoff."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from device_support import Collector, reconfigure_broker
from paho.mqtt.enums import CallbackAPIVersion

from binsight.device.config import MqttConfig
from binsight.device.link import Link
from binsight.device.outbox import Outbox
from binsight.device.schedule import Backoff, jittered
from binsight.errors import ConfigError
from binsight.protocol import Reading


def _with_password(mosquitto, tmp_path: Path) -> None:
    """Accounts ``b-1`` (the device) and ``srv`` (a server reading what it sends), both ``s3cret``."""
    pw = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pw), "b-1", "s3cret"], check=True, capture_output=True
    )
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "srv", "s3cret"], check=True, capture_output=True)
    reconfigure_broker(mosquitto, f"allow_anonymous false\npassword_file {pw}")


def _server(port: int, username: str | None = None) -> mqtt.Client:
    """A subscriber to every reading, standing in for the server: without one, MQTT 5 brokers answer
    "No matching subscribers" and the link keeps its rows."""
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, "s3cret")
    client.on_connect = lambda c, *_: c.subscribe("binsight/+/reading", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10), "the stand-in server could not subscribe"
    return client


def _reading(seq: int) -> Reading:
    return Reading(bin_id="b-1", seq=seq, ts=1, fill=0.5, quality="ok", model="v1")


@pytest.mark.broker
def test_refused_connection_is_not_connected(
    tmp_path: Path, mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password: CONNACK refused, counted, reported, never marked connected, nothing sent."""
    _with_password(mosquitto, tmp_path)
    monkeypatch.setenv("BINSIGHT_MQTT_PASSWORD", "wrong")
    box = Outbox(tmp_path / "o.db")
    box.add_reading(_reading)
    cfg = MqttConfig(port=mosquitto.port, username="b-1", backoff_min_s=0.1, backoff_max_s=0.3)
    link = Link(cfg, "b-1", box)
    link.start()
    try:
        deadline = time.monotonic() + 10
        while link.counters.refused < 2 and time.monotonic() < deadline:
            assert not link.connected
            time.sleep(0.02)
        assert link.counters.refused >= 2
        assert "refused" in (link.last_error or "") and "authori" in (link.last_error or "").lower()
        assert link.counters.sessions == 0 and link.counters.sent == 0 and box.depth() == 1
    finally:
        link.stop()


@pytest.mark.broker
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_password_from_secret_and_both_protocols(
    tmp_path: Path, mosquitto, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """The password from BINSIGHT_MQTT_PASSWORD_FILE logs in; rows are sent and deleted on PUBACK."""
    _with_password(mosquitto, tmp_path)
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("BINSIGHT_MQTT_PASSWORD_FILE", str(secret))
    monkeypatch.delenv("BINSIGHT_MQTT_PASSWORD", raising=False)
    box = Outbox(tmp_path / "o.db")
    for _ in range(20):
        box.add_reading(_reading)
    cfg = MqttConfig(port=mosquitto.port, username="b-1", protocol=protocol)  # type: ignore[arg-type]
    server = _server(mosquitto.port, "srv")
    link = Link(cfg, "b-1", box)
    link.start()
    try:
        assert link.wait_connected(10)
        deadline = time.monotonic() + 10
        while box.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert box.depth() == 0 and link.counters.acked == 20
    finally:
        link.stop()
        server.disconnect()
        server.loop_stop()


@pytest.mark.broker
def test_will_says_offline_when_the_agent_vanishes(tmp_path: Path, mosquitto, collector_factory) -> None:
    """available: online after CONNACK; the broker publishes the retained will on a lost connection."""
    col: Collector = collector_factory(mosquitto.port)
    link = Link(MqttConfig(port=mosquitto.port, keepalive_s=5), "b-w", Outbox(tmp_path / "o.db"))
    link.start()
    assert link.wait_connected(10)
    col.wait_for(lambda: col.raw("available") == [b"online"])
    session = link._session
    assert session is not None
    session.client.socket().close()  # vanish without DISCONNECT, as a power cut does
    col.wait_for(lambda: col.raw("available")[-1] == b"offline", timeout=15)
    link.stop()


@pytest.mark.broker
def test_no_matching_subscribers_is_not_delivery(tmp_path: Path, mosquitto) -> None:
    """PUBACK 0x10 (no server subscribed): rows stay, sending holds with a back-off (no hot loop, no
    new rows sent meanwhile), and once a subscriber is there every row arrives and only then leaves."""
    box = Outbox(tmp_path / "o.db")
    for _ in range(10):
        box.add_reading(_reading)
    cfg = MqttConfig(port=mosquitto.port, backoff_min_s=0.4, backoff_max_s=0.8, inflight=5)
    link = Link(cfg, "b-1", box)
    link.start()
    try:
        assert link.wait_connected(10)
        deadline = time.monotonic() + 10
        while link.counters.holds < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.counters.holds >= 3 and box.depth() == 10 and link.counters.acked == 0
        # One window, then one probe per hold: a back-off, not a loop resending every row.
        assert link.counters.sent <= 5 + link.counters.holds
        assert "No matching subscribers" in (link.last_error or "")
        for _ in range(5):
            box.add_reading(_reading)  # captured while held: kept like the rest
        col = Collector(mosquitto.port, topic="$share/g/binsight/+/reading")  # a server, back
        try:
            col.wait_for(lambda: box.depth() == 0, timeout=10)
            readings = col.payloads("reading")
            assert sorted({r["seq"] for r in readings}) == list(range(15))
            assert all(r["historical"] for r in readings), "a reading held back is sent as historical"
        finally:
            col.close()
        assert link.counters.acked == 15
    finally:
        link.stop()


def test_backoff_grows_capped_with_jitter() -> None:
    """Delays double up to the cap, each between half and all of its ceiling; reset starts over."""
    import random

    b = Backoff(1.0, 8.0, random.Random(1))
    delays = [b.next() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)
    b.give_up_fast()
    assert 4.0 <= b.next() <= 8.0
    b.reset()
    assert b.next() <= 1.0
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_jittered_interval_bounds() -> None:
    """jittered stays within interval * (1 +- jitter) and is not constant."""
    import random

    rng = random.Random(3)
    values = [jittered(600, 0.1, rng) for _ in range(200)]
    assert min(values) >= 540 and max(values) <= 660 and max(values) - min(values) > 60
    assert jittered(10, 0.0) == 10


def _tls_files(tmp: Path) -> dict[str, Path]:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate (cryptography)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key, issuer_key, issuer: str, ca: bool, san=None):  # type: ignore[no-untyped-def]
        b = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san is not None:
            b = b.add_extension(san, critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    files = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("test-ca", ca_key, ca_key, "test-ca", True)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    srv = cert("127.0.0.1", srv_key, ca_key, "test-ca", False, san)
    cli_key = ec.generate_private_key(ec.SECP256R1())
    cli = cert("b-1", cli_key, ca_key, "test-ca", False)
    pem = serialization.Encoding.PEM
    for label, obj in (("ca", ca), ("server", srv), ("client", cli)):
        files[label] = tmp / f"{label}.crt"
        files[label].write_bytes(obj.public_bytes(pem))
    for label, key in (("server_key", srv_key), ("client_key", cli_key)):
        files[label] = tmp / f"{label}.pem"
        files[label].write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return files


@pytest.mark.broker
def test_tls_with_client_certificate(tmp_path: Path, mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS to a broker that requires a client certificate; the client key comes as a secret (env)."""
    import socket

    f = _tls_files(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tls_port = int(s.getsockname()[1])
    reconfigure_broker(
        mosquitto,
        f"listener {tls_port} 127.0.0.1\ncafile {f['ca']}\ncertfile {f['server']}\n"
        f"keyfile {f['server_key']}\nrequire_certificate true\nallow_anonymous true",
    )
    monkeypatch.setenv("BINSIGHT_MQTT_TLS_KEY", f["client_key"].read_text())
    box = Outbox(tmp_path / "o.db")
    box.add_reading(_reading)
    cfg = MqttConfig(port=tls_port, tls=True, ca_file=f["ca"], cert_file=f["client"])
    server = _server(mosquitto.port)  # on the plain listener
    link = Link(cfg, "b-1", box)
    link.start()
    try:
        assert link.wait_connected(10), link.last_error
        deadline = time.monotonic() + 10
        while box.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert box.depth() == 0
    finally:
        link.stop()
        server.disconnect()
        server.loop_stop()
    # Without the client certificate the broker refuses the handshake: reported, not connected.
    monkeypatch.delenv("BINSIGHT_MQTT_TLS_KEY")
    link = Link(
        MqttConfig(port=tls_port, tls=True, ca_file=f["ca"], backoff_min_s=0.1, backoff_max_s=0.2), "b-1", box
    )
    link.start()
    try:
        time.sleep(1.0)
        assert not link.connected and link.last_error
    finally:
        link.stop()
    # A certificate without its key is a config error at start, not a dead thread later.
    with pytest.raises(ConfigError, match="TLS files unusable"):
        Link(MqttConfig(port=tls_port, tls=True, ca_file=f["ca"], cert_file=f["client"]), "b-1", box)
