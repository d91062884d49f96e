"""What the agent says about itself: ``stats`` (live, QoS 0, skipped while offline) and ``event`` messages.

Events (command results, model updates) go through the outbox like readings, so none is lost to a
broker outage; stats are a snapshot, only worth sending now.
"""

from __future__ import annotations

import time

from binsight.device.capture import Capture
from binsight.device.clock import Clock
from binsight.device.link import Link
from binsight.device.memory import rss_mb
from binsight.device.outbox import Outbox
from binsight.device.problems import Problems
from binsight.protocol import Event, Stats, Topics

__all__ = ["Status"]


class Status:
    """One bin's stats and events, sent over its link."""

    def __init__(self, bin_id: str, *, clock: Clock, outbox: Outbox, link: Link, problems: Problems) -> None:
        self.bin_id = bin_id
        self.clock = clock
        self.outbox = outbox
        self.link = link
        self.problems = problems
        self.topics = Topics(link.cfg.root)
        self.started = time.monotonic()

    def stats(self, *, model: str, interval_s: float, capture: Capture) -> Stats:
        """The ``stats`` message now, for the running ``model`` version and capture ``interval_s``."""
        last_infer_ms = capture.last_infer_ms
        return Stats(
            bin_id=self.bin_id,
            ts=self.clock.now_ms(),
            uptime_s=round(time.monotonic() - self.started, 1),
            outbox_depth=self.outbox.depth(),
            dropped=self.outbox.dropped,
            model=model,
            interval_s=interval_s,
            last_infer_ms=round(last_infer_ms, 2) if last_infer_ms is not None else None,
            last_error=(self.problems.last or self.link.last_error or "")[:500] or None,
            camera_ok=capture.camera_ok,
            rss_mb=rss_mb(),
            captures=capture.captures,
            unusable=capture.unusable,
        )

    def publish(self, stats: Stats) -> bool:
        """Send ``stats`` now (QoS 0); False when not connected."""
        return self.link.publish_now(self.topics.stats(self.bin_id), stats.model_dump_json().encode(), qos=0)

    def event(self, kind: str, state: str, ref: str | None, detail: str | None) -> None:
        """Queue an event in the outbox and wake the link."""
        event = Event.model_validate(
            {
                "bin_id": self.bin_id,
                "ts": self.clock.now_ms(),
                "kind": kind,
                "state": state,
                "ref": ref[:128] if ref else None,
                "detail": detail[:500] if detail else None,
            }
        )
        self.outbox.add("event", event.model_dump_json().encode())
        self.link.wake()
