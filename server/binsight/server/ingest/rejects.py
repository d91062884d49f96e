"""Reject counters: per reason, per process, logged once per reason with an example."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from binsight.server.ingest.messages import Reject

__all__ = ["RejectLog"]

logger = logging.getLogger(__name__)


class RejectLog:
    """Counts rejects by reason; the first of each reason is logged as a warning, the rest at debug.

    These are this process's counts (``binsight_messages_rejected_total``); the writer records a
    reject here after the transaction that added it to the ``ingest_rejects`` table committed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self._seen: set[str] = set()

    def record(self, reject: Reject) -> None:
        with self._lock:
            self.totals[reject.reason] += 1
            first = reject.reason not in self._seen
            self._seen.add(reject.reason)
        if first:
            logger.warning(
                "rejected message on %s: %s (%s); further %s rejects are counted, not logged",
                reject.topic,
                reject.reason,
                reject.detail,
                reject.reason,
            )
        else:
            logger.debug("rejected message on %s: %s (%s)", reject.topic, reject.reason, reject.detail)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.totals)
