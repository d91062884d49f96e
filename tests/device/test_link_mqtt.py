"""The MQTT link against a real Mosquitto: refused is refused; credentials; MQTT 3.1.1; backoff."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from device_support import Collector, reconfigure_broker

from binsight.device.config import MqttConfig
from binsight.device.link import Link
from binsight.device.outbox import Outbox
from binsight.device.schedule import Backoff, jittered
from binsight.protocol import Reading


def _with_password(mosquitto, tmp_path: Path) -> None:
    pw = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pw), "b-1", "s3cret"], check=True, capture_output=True
    )
    reconfigure_broker(mosquitto, f"allow_anonymous false\npassword_file {pw}")


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
