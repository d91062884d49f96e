"""Device health: online, or offline with the reason an operator needs (settings: ``[health]``).

The cameras are "devices" here and in the API (``/api/devices``); "fleet" means the trucks (``[fleet]``).
"""

from __future__ import annotations

from dataclasses import dataclass

from binsight.server.config import HealthConfig
from binsight.server.db.models import Device

__all__ = ["Health", "device_health", "missing_readings"]


@dataclass(frozen=True, slots=True)
class Health:
    online: bool
    reason: str | None


def device_health(device: Device | None, now_ms: int, cfg: HealthConfig) -> Health:
    """Offline when the device's last will (or shutdown) said so, or when silent for ``silent_factor`` x
    its reporting interval (from its stats; ``default_interval_s`` until it sent any)."""
    if device is None or device.last_seen is None:
        return Health(False, "never seen")
    if device.available == "offline":
        return Health(False, "offline message (last will or shutdown)")
    interval = device.interval_s or cfg.default_interval_s
    limit_s = cfg.silent_factor * interval
    silent_s = (now_ms - device.last_seen) / 1000.0
    if silent_s > limit_s:
        return Health(
            False,
            f"silent for {silent_s:.0f} s (more than {cfg.silent_factor:g} x interval {interval:g} s)",
        )
    return Health(True, None)


def missing_readings(device: Device | None) -> int:
    """Readings the device numbered but the server never stored (gaps in ``seq``)."""
    if device is None or device.seq_min is None or device.seq_max is None:
        return 0
    return max(0, device.seq_max - device.seq_min + 1 - device.seq_count)
