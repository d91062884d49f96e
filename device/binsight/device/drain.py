"""Sending the outbox over one MQTT session: rows in id order, a window in flight, deleted on PUBACK.

Readings that were already waiting when the session began go out with ``historical: true``. A
PUBACK with a failure reason code (MQTT 5: the broker will never take the message, e.g. not
authorised) drops the row: keeping it would block the queue behind it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from binsight.device.outbox import Outbox, Row
from binsight.protocol import Reading, Topics

__all__ = ["LinkCounters", "OutboxDrain"]

logger = logging.getLogger(__name__)


@dataclass
class LinkCounters:
    sessions: int = 0
    refused: int = 0
    acked: int = 0
    rejected: int = 0  # PUBACK with a failure reason code (MQTT 5): broker refused the message
    sent: int = 0


class OutboxDrain:
    """Drains one bin's outbox into whichever session the link holds.

    Parameters
    ----------
    window
        At most this many rows unacknowledged (``mqtt.inflight``).
    rejected
        Called with the message when the broker refuses a row (the link's ``last_error``).
    """

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        bin_id: str,
        *,
        window: int,
        counters: LinkCounters,
        rejected: Callable[[str], None],
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.bin_id = bin_id
        self.window = window
        self.counters = counters
        self._rejected = rejected
        self._acks: queue.SimpleQueue[tuple[int, ReasonCode]] = queue.SimpleQueue()

    def acked(self, mid: int, rc: ReasonCode) -> None:
        """A PUBACK of the current session (from paho's thread)."""
        self._acks.put((mid, rc))

    def _topic(self, row: Row) -> str:
        if row.kind == "reading":
            return self.topics.reading(self.bin_id)
        if row.kind == "image":
            return self.topics.image(self.bin_id)
        return self.topics.event(self.bin_id)

    def run(self, client: mqtt.Client, *, done: Callable[[], bool], wake: threading.Event) -> None:
        """Send rows over ``client`` until ``done()``; ``wake`` is set on new rows and acks."""
        while not self._acks.empty():  # left over from the previous client
            self._acks.get_nowait()
        replay_upto = self.outbox.max_id()
        cursor = 0
        inflight: dict[int, int] = {}  # paho mid -> outbox row id
        window = self.window
        while not done():
            wake.clear()
            self._settle(inflight)
            if len(inflight) < window:
                for row in self.outbox.after(cursor, window - len(inflight)):
                    payload = row.payload
                    if row.kind == "reading" and row.id <= replay_upto:
                        reading = Reading.model_validate_json(payload)
                        payload = reading.model_copy(update={"historical": True}).model_dump_json().encode()
                    info = client.publish(self._topic(row), payload, qos=1)
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        logger.warning("%s: publish failed (%s); ending session", self.bin_id, info.rc)
                        return
                    inflight[info.mid] = row.id
                    cursor = row.id
                    self.counters.sent += 1
            # Acks may have arrived while publishing; settle them before sleeping.
            if self._acks.empty():
                wake.wait(0.5)
        self._settle(inflight)

    def _settle(self, inflight: dict[int, int]) -> None:
        done: list[int] = []
        while True:
            try:
                mid, rc = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = inflight.pop(mid, None)
            if row_id is None:
                continue  # stats, "online", or a subscription: not an outbox row
            if rc.is_failure:
                # The broker will never take it (e.g. not authorised): keeping it would block the queue.
                self.counters.rejected += 1
                message = f"broker rejected a message: {rc}"
                self._rejected(message)
                logger.error("%s: %s (outbox row %d dropped)", self.bin_id, message, row_id)
            else:
                self.counters.acked += 1
            done.append(row_id)
        if done:
            self.outbox.delete(done)
