"""Home Assistant MQTT discovery: each bin's fill (a sensor) and camera (a connectivity sensor).

Off by default (``[homeassistant] enabled``). Frigate's convention: one retained config message per
entity on ``<discovery_prefix>/<component>/<node_id>/<object_id>/config``, all entities sharing one
availability topic. Topics here (``<root>`` is ``[mqtt] root``):

- ``<prefix>/sensor/<node_id>/<bin>_fill/config`` and ``<prefix>/binary_sensor/<node_id>/<bin>_camera/config``
  (``.`` in a bin id becomes ``_``: object ids are ``[A-Za-z0-9_-]``), retained;
- ``<root>/_ha/<bin_id>/state``: ``{"fill": 73.5, "camera": "online"}`` (fill in percent, null before
  the first usable reading), retained, published when either changes;
- ``<root>/_ha/status``: ``online`` (retained at each connect) and ``offline`` (the server's last will,
  and at a clean stop), the availability of every entity: HA greys them out when no server runs.

``_ha`` cannot be a bin id (ids start with a letter or digit), and four levels never match the
server's own ``<root>/+/<kind>`` subscriptions. The states come from the same poll of the database as
the alerts (:class:`binsight.server.fleet_watch.FleetWatcher`), so they follow readings within
``[alerts] check_interval_s``; every server process publishes the same retained values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from binsight.server.alerts import BinState
from binsight.server.config import HomeAssistantConfig

__all__ = ["Discovery"]

_OBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Discovery:
    """The topics and payloads of one server's discovery; holds no connection."""

    def __init__(self, cfg: HomeAssistantConfig, root: str) -> None:
        self.cfg = cfg
        self.root = root
        self.status_topic = f"{root}/_ha/status"

    def state_topic(self, bin_id: str) -> str:
        return f"{self.root}/_ha/{bin_id}/state"

    def configs(self, bin_id: str) -> list[tuple[str, bytes]]:
        """The two retained config messages of one bin: (topic, payload)."""
        obj = _OBJECT_UNSAFE.sub("_", bin_id)
        node, prefix = self.cfg.node_id, self.cfg.discovery_prefix
        device = {
            "identifiers": [f"{node}_{obj}"],
            "name": f"Bin {bin_id}",
            "manufacturer": "binsight",
            "model": "lid camera",
        }
        common: dict[str, Any] = {
            "state_topic": self.state_topic(bin_id),
            "availability_topic": self.status_topic,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": device,
        }
        fill = {
            **common,
            "name": "Fill",
            "unique_id": f"{node}_{obj}_fill",
            "object_id": f"{node}_{obj}_fill",
            "value_template": "{{ value_json.fill }}",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "icon": "mdi:delete-variant",
        }
        camera = {
            **common,
            "name": "Camera",
            "unique_id": f"{node}_{obj}_camera",
            "object_id": f"{node}_{obj}_camera",
            "device_class": "connectivity",
            "value_template": "{{ value_json.camera }}",
            "payload_on": "online",
            "payload_off": "offline",
        }
        return [
            (f"{prefix}/sensor/{node}/{obj}_fill/config", _json(fill)),
            (f"{prefix}/binary_sensor/{node}/{obj}_camera/config", _json(camera)),
        ]

    def state(self, st: BinState) -> bytes:
        fill = None if st.fill is None else round(st.fill * 100.0, 1)
        return _json({"fill": fill, "camera": st.camera})

    def changed(self, states: Sequence[BinState], last: dict[str, bytes]) -> list[tuple[str, bytes]]:
        """(topic, payload) of each bin whose state differs from ``last`` (updated in place)."""
        out = []
        for st in states:
            payload = self.state(st)
            if last.get(st.bin_id) != payload:
                last[st.bin_id] = payload
                out.append((self.state_topic(st.bin_id), payload))
        return out


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
