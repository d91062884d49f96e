"""The batch writer: one thread that drains the queue, commits, and only then acknowledges.

Group commit: the writer takes whatever has arrived (up to ``batch_size``, waiting at most
``linger_ms`` for more), writes it in one transaction and acknowledges each message after the
commit. A server killed at any point has acknowledged only committed messages, so the broker
redelivers the rest and the ``(bin_id, seq)`` key turns the redelivery into a no-op.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.ingest.messages import Item
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.store import BinRegistry, write_batch

__all__ = ["BatchWriter", "IngestStats", "Queued"]

logger = logging.getLogger(__name__)

Ack = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Queued:
    item: Item
    ack: Ack | None


@dataclass
class IngestStats:
    """Counters of this process, exported on ``/metrics``."""

    readings_ingested: int = 0
    duplicates: int = 0
    messages: int = 0
    batches: int = 0
    db_errors: int = 0
    last_lag_s: float | None = None
    last_commit_ms: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class BatchWriter:
    """Consumes :class:`Queued` items from ``inbox`` until :meth:`stop`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        inbox: queue.Queue[Queued],
        rejects: RejectLog,
        *,
        batch_size: int,
        linger_ms: float,
        registration_required: bool,
    ) -> None:
        self.sessions = sessions
        self.inbox = inbox
        self.rejects = rejects
        self.batch_size = batch_size
        self.linger_s = linger_ms / 1000.0
        self.registration_required = registration_required
        self.registry = BinRegistry()
        self.stats = IngestStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="binsight-ingest-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs (for the server's watchdog)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _take(self) -> list[Queued]:
        try:
            first = self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.linger_s
        while len(batch) < self.batch_size:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self.inbox.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self._commit_with_retry(batch)

    def _commit_with_retry(self, batch: Sequence[Queued]) -> None:
        delay = 0.2
        while True:
            try:
                self.write(batch)
                return
            except SQLAlchemyError as exc:
                # Nothing is acknowledged, so nothing is lost: keep the batch and try again.
                with self.stats.lock:
                    self.stats.db_errors += 1
                logger.error(
                    "database write failed (%s); retrying %d messages in %.1f s", exc, len(batch), delay
                )
                if self._stop.wait(delay) and delay >= 5.0:
                    logger.error(
                        "stopping with %d unacknowledged messages; the broker keeps them", len(batch)
                    )
                    return
                delay = min(delay * 2, 5.0)

    def write(self, batch: Sequence[Queued]) -> None:
        """Write one batch in one transaction, then acknowledge each message in arrival order."""
        t0 = time.perf_counter()
        now = now_ms()
        with self.sessions() as session, session.begin():
            result = write_batch(
                session, [q.item for q in batch], self.registry, self.registration_required, now
            )
        for q in batch:
            if q.ack is not None:
                q.ack()
        for r in result.rejects:
            self.rejects.record(r)
        commit_ms = (time.perf_counter() - t0) * 1000
        with self.stats.lock:
            self.stats.readings_ingested += result.inserted
            self.stats.duplicates += result.duplicates
            self.stats.messages += len(batch)
            self.stats.batches += 1
            self.stats.last_commit_ms = commit_ms
            if result.live_ts:
                self.stats.last_lag_s = max(0.0, (now_ms() - max(result.live_ts)) / 1000.0)
        logger.debug(
            "committed %d messages (%d new readings) in %.1f ms", len(batch), result.inserted, commit_ms
        )
