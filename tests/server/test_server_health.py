"""Device health: offline by last will or by silence beyond 3 intervals, with the reason."""

from __future__ import annotations

from binsight.server.config import HealthConfig
from binsight.server.db.models import Device
from binsight.server.health import device_health, missing_readings

CFG = HealthConfig(default_interval_s=600, silent_factor=3)
NOW = 10_000_000


def _dev(**kw: object) -> Device:
    return Device(bin_id="b", seq_count=kw.pop("seq_count", 0), **kw)


def test_health_cases() -> None:
    """Never seen, last will, silent (own and default interval), and online."""
    assert device_health(None, NOW, CFG).reason == "never seen"
    assert "last will" in (device_health(_dev(last_seen=NOW, available="offline"), NOW, CFG).reason or "")
    own = device_health(_dev(last_seen=NOW - 181_000, interval_s=60, available="online"), NOW, CFG)
    assert not own.online and own.reason == "silent for 181 s (more than 3 x interval 60 s)"
    assert device_health(_dev(last_seen=NOW - 179_000, interval_s=60), NOW, CFG).online
    assert device_health(_dev(last_seen=NOW - 1_700_000), NOW, CFG).online  # default 600 s x 3
    assert not device_health(_dev(last_seen=NOW - 1_900_000), NOW, CFG).online


def test_missing_readings() -> None:
    """Gaps are the numbers between min and max seq that were never stored."""
    assert missing_readings(_dev()) == 0
    assert missing_readings(_dev(seq_min=5, seq_max=14, seq_count=7)) == 3
