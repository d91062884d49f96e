"""Sending the outbox over one MQTT session: rows in id order, a window in flight, deleted on PUBACK.

Readings that were already waiting when they are sent (at the start of a session, or when sending
resumes after a hold) go out with ``historical: true``. What a PUBACK's reason code (MQTT 5) does
to the row:

* ``0x00`` Success: the broker has it for a subscriber (the server, or its persistent session),
  and the row is deleted.
* ``0x10`` No matching subscribers: the broker took the message and threw it away, because no
  server is subscribed right now (the server is away and the broker lost its shared subscription
  in a restart). That is not delivery: the row stays, and the drain *holds*: it sends nothing new,
  waits a capped exponential back-off, then sends the oldest row alone as a probe; the first
  Success resumes the full window from there. Only this session's sending waits: capture,
  commands and stats go on.
* A failure code (``>= 0x80``, e.g. not authorised): the broker will never take the row, so it is
  dropped, counted and reported; keeping it would block the queue behind it.

With MQTT 3.1.1 a PUBACK carries no reason code, so a broker without subscribers is not seen
(docs/device.md, "Store and forward").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from binsight.device.outbox import Outbox, Row
from binsight.device.schedule import Backoff
from binsight.protocol import Reading, Topics

__all__ = ["NO_MATCHING_SUBSCRIBERS", "LinkCounters", "OutboxDrain"]

logger = logging.getLogger(__name__)

#: MQTT 5 PUBACK reason code: accepted, but nobody subscribed; the broker discarded the message.
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass
class LinkCounters:
    sessions: int = 0
    refused: int = 0
    acked: int = 0
    rejected: int = 0  # PUBACK with a failure reason code (MQTT 5): broker refused the message
    unrouted: int = 0  # PUBACK 0x10 No matching subscribers: row kept, sent again after a back-off
    holds: int = 0  # times sending stopped for want of a subscriber
    sent: int = 0


@dataclass
class _Hold:
    """Sending stopped because no server was subscribed; resume with a probe at ``until``."""

    until: float | None = None  # set once the rows in flight have all been answered


class OutboxDrain:
    """Drains one bin's outbox into whichever session the link holds.

    Parameters
    ----------
    window
        At most this many rows unacknowledged (``mqtt.inflight``).
    counters
        The link's counters, updated here.
    problem
        Called with a message for the link's ``last_error`` (a refused row, a hold).
    retry
        The back-off between probes while no server is subscribed (reset by a delivered row).
    """

    def __init__(
        self,
        outbox: Outbox,
        topics: Topics,
        bin_id: str,
        *,
        window: int,
        counters: LinkCounters,
        problem: Callable[[str], None],
        retry: Backoff,
    ) -> None:
        self.outbox = outbox
        self.topics = topics
        self.bin_id = bin_id
        self.window = window
        self.counters = counters
        self.retry = retry
        self._problem = problem
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
        hold: _Hold | None = None
        while not done():
            wake.clear()
            delivered, unrouted = self._settle(inflight)
            if unrouted and hold is None:
                hold = _Hold()
            elif delivered and hold is None:
                window = self.window  # a probe got through (or sending went well): a server is subscribed
                self.retry.reset()
            if hold is not None:
                hold, resume = self._holding(hold, inflight)
                if resume:
                    cursor, window, replay_upto = 0, 1, self.outbox.max_id()  # probe with the oldest row
            if hold is None and len(inflight) < window:
                for row in self.outbox.after(cursor, window - len(inflight)):
                    info = client.publish(self._topic(row), self._payload(row, replay_upto), qos=1)
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        logger.warning("%s: publish failed (%s); ending session", self.bin_id, info.rc)
                        return
                    inflight[info.mid] = row.id
                    cursor = row.id
                    self.counters.sent += 1
            # Acks may have arrived while publishing; settle them before sleeping.
            if self._acks.empty():
                wake.wait(self._nap(hold))
        self._settle(inflight)

    @staticmethod
    def _payload(row: Row, replay_upto: int) -> bytes:
        if row.kind != "reading" or row.id > replay_upto:
            return row.payload
        reading = Reading.model_validate_json(row.payload)
        return reading.model_copy(update={"historical": True}).model_dump_json().encode()

    def _holding(self, hold: _Hold, inflight: dict[int, int]) -> tuple[_Hold | None, bool]:
        """Advance a hold: start its back-off once nothing is in flight; ``(hold, resume now)``."""
        if inflight:
            return hold, False  # their answers come first: each may be another 0x10 (kept) or a delivery
        now = time.monotonic()
        if hold.until is None:
            delay = self.retry.next()
            hold.until = now + delay
            self.counters.holds += 1
            message = (
                f"no server subscribed (PUBACK {NO_MATCHING_SUBSCRIBERS:#04x} No matching subscribers): "
                f"{self.outbox.depth()} readings kept, trying again in {delay:.1f} s"
            )
            self._problem(message)
            logger.warning("%s: %s", self.bin_id, message)
            return hold, False
        if now < hold.until:
            return hold, False
        return None, True

    @staticmethod
    def _nap(hold: _Hold | None) -> float:
        if hold is None or hold.until is None:
            return 0.5
        return min(0.5, max(0.0, hold.until - time.monotonic()))

    def _settle(self, inflight: dict[int, int]) -> tuple[int, int]:
        """Apply the PUBACKs received so far; returns ``(delivered, unrouted)`` row counts."""
        done: list[int] = []
        delivered = unrouted = 0
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
                self._problem(message)
                logger.error("%s: %s (outbox row %d dropped)", self.bin_id, message, row_id)
                done.append(row_id)
            elif rc.value == NO_MATCHING_SUBSCRIBERS:
                self.counters.unrouted += 1  # discarded by the broker: the row stays for a later send
                unrouted += 1
            else:
                self.counters.acked += 1
                delivered += 1
                done.append(row_id)
        if done:
            self.outbox.delete(done)
        return delivered, unrouted
