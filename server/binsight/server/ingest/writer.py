"""The batch writer: one thread that drains the queue, commits, and only then acknowledges.

Group commit: the writer takes whatever has arrived (up to ``batch_size``, waiting at most
``linger_ms`` for more), writes it in one transaction and acknowledges each message after the
commit. A server killed at any point has acknowledged only committed messages, so the broker
redelivers the rest and the ``(bin_id, seq)`` key turns the redelivery into a no-op.

Every message ends stored or rejected-and-counted, and none can hold the others: a transaction that
fails because of what it writes (:func:`about_the_data`) is split in halves until the message(s) the
database refuses stand alone; each is then rejected as ``db_refused``, counted and acknowledged, and
the rest is stored. Any other failure (the database away, locked, full; the schema; a bug) is about
the database, not the messages: the same part is retried with back-off, nothing is acknowledged, and
after :data:`DEGRADED_AFTER` failures in a row ``/healthz`` says ``degraded``. No exception ends the
thread: the server's watchdog, which exits the process when it dies, is the last resort.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.forecast.smoothing import SmoothParams
from binsight.server.ingest.messages import Item, Message, ReadingMsg, Reject, bin_of
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.latency import INGEST_BATCH_SECONDS, INGEST_DELAY_SECONDS

__all__ = ["DEGRADED_AFTER", "BatchWriter", "IngestStats", "Queued", "about_the_data"]

logger = logging.getLogger(__name__)

Ack = Callable[[], None]

#: Failed attempts in a row (retried, not split) after which the writer reports itself degraded:
#: with the back-off (0.2 s doubling to 5 s) that is about 6 s of a database that takes no writes.
DEGRADED_AFTER = 5


def about_the_data(exc: BaseException) -> bool:
    """Whether ``exc`` says the database refused what was written, so retrying it unchanged cannot work.

    Yes: ``DataError`` (out of range, too long, NUL in text), ``IntegrityError`` (a constraint), and
    what the driver or SQLAlchemy raise on a value before the database sees it (sqlite3's
    ``OverflowError`` for an int beyond 64 bits, ``UnicodeEncodeError``, ``StatementError``). No:
    lost connections, timeouts, locks, deadlocks, a full disk (``OperationalError`` and kin), a
    ``ProgrammingError`` (the SQL or the schema, e.g. a missing table), and any other exception (a
    bug): those are retried with the messages kept, never split into rejects.
    """
    if isinstance(exc, DBAPIError):
        return isinstance(exc, (DataError, IntegrityError)) and not exc.connection_invalidated
    if isinstance(exc, StatementError):
        return True
    return isinstance(exc, (ArithmeticError, ValueError, TypeError))  # UnicodeError is a ValueError


def _refused(item: Message, exc: BaseException) -> Reject:
    """The reject that stands for a message the database refused (the backstop for validation)."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    detail = f"{type(cause).__name__}: {cause}".splitlines()[0]
    if isinstance(item, ReadingMsg):
        what = f"reading seq {item.reading.seq}"
    else:
        what = type(item).__name__.removesuffix("Msg").lower()
    return Reject("db_refused", f"{what}: {detail}", f"(bin {bin_of(item)})")


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
    #: Transactions the database refused for their data: each was split, or its one message rejected.
    data_errors: int = 0
    #: Seqs far outside their device's range, counted instead of as missing readings.
    seq_jumps: int = 0
    #: Failed attempts in a row at the current batch (0 after every commit) and the last error's type
    #: (the type only: ``/healthz`` answers without a token; the message is in the log).
    failures_in_a_row: int = 0
    last_error_type: str | None = None
    last_lag_s: float | None = None
    last_commit_ms: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class BatchWriter:
    """Consumes :class:`Queued` items from ``inbox`` until :meth:`stop`."""

    #: Back-off between attempts at a batch the database did not take: doubling from the first.
    first_retry_s: float = 0.2
    max_retry_s: float = 5.0

    def __init__(
        self,
        sessions: sessionmaker[Session],
        inbox: queue.Queue[Queued],
        rejects: RejectLog,
        *,
        batch_size: int,
        linger_ms: float,
        registration_required: bool,
        smoothing: SmoothParams | None = None,
    ) -> None:
        self.sessions = sessions
        self.smoothing = smoothing
        self.inbox = inbox
        self.rejects = rejects
        self.batch_size = batch_size
        self.linger_s = linger_ms / 1000.0
        self.registration_required = registration_required
        self.registry = BinRegistry()
        self.stats = IngestStats()
        self._jumped: set[str] = set()
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
            try:
                batch = self._take()
                if not batch:
                    if self._stop.is_set():
                        return
                    continue
                self._commit(batch)
            except Exception:
                # Not reached by anything the writer knows of; kept running all the same, because a
                # dead writer stores nothing for anyone (the watchdog would restart the server).
                logger.exception("ingest writer: unexpected error; carrying on")
                self._stop.wait(1.0)

    @property
    def degraded(self) -> str | None:
        """Why ingest is not storing (for ``/healthz``), or None while it is."""
        if not self.alive and self._thread.ident is not None and not self._stop.is_set():
            return "the ingest writer thread died"
        with self.stats.lock:
            failures, error = self.stats.failures_in_a_row, self.stats.last_error_type
        if failures >= DEGRADED_AFTER:
            return f"ingest writer failed {failures} times in a row ({error}); see the server's log"
        return None

    def _commit(self, batch: Sequence[Queued]) -> None:
        """Store ``batch``: each part commits, is split (refused data) or is retried (anything else).

        Parts are written front to back, so messages are still acknowledged in arrival order, and a
        committed part is never written again.
        """
        parts: list[Sequence[Queued]] = [batch]
        delay = self.first_retry_s
        while parts:
            part = parts[0]
            try:
                self.write(part)
            except Exception as exc:
                # What this transaction cached (bins, devices it created) was rolled back with it.
                self.registry = BinRegistry()
                if about_the_data(exc):
                    parts[0:1] = self._split(part, exc)
                    continue
                if not self._retry_later(part, exc, delay):
                    left = sum(len(p) for p in parts)
                    logger.error("stopping with %d unacknowledged messages; the broker keeps them", left)
                    return
                delay = min(delay * 2, self.max_retry_s)
                continue
            parts.pop(0)
            delay = self.first_retry_s

    def _split(self, part: Sequence[Queued], exc: BaseException) -> list[Sequence[Queued]]:
        """Halves of ``part``; a single message becomes the reject that stands for it."""
        with self.stats.lock:
            self.stats.data_errors += 1
        if len(part) > 1:
            logger.debug("database refused a batch of %d (%s); splitting it", len(part), exc)
            mid = len(part) // 2
            return [part[:mid], part[mid:]]
        (q,) = part
        if isinstance(q.item, Reject):
            # Not even the reject could be written: count it here, acknowledge it, go on.
            logger.error("could not store the reject %s (%s); counted in this process only", q.item, exc)
            self._acknowledge(part)
            self.rejects.record(q.item)
            return []
        return [[Queued(_refused(q.item, exc), q.ack)]]

    def _retry_later(self, part: Sequence[Queued], exc: BaseException, delay: float) -> bool:
        """Count the failure and wait ``delay``; False when stopping (the broker keeps the messages)."""
        with self.stats.lock:
            self.stats.db_errors += 1
            self.stats.failures_in_a_row += 1
            first = self.stats.failures_in_a_row == 1
            self.stats.last_error_type = type(exc).__name__
        logger.error(
            "database write failed (%s); retrying %d messages in %.1f s",
            exc,
            len(part),
            delay,
            exc_info=first and not isinstance(exc, SQLAlchemyError),  # a bug: its traceback, once
        )
        return not (self._stop.wait(delay) and delay >= self.max_retry_s)

    def _acknowledge(self, batch: Sequence[Queued]) -> None:
        for q in batch:
            if q.ack is None:
                continue
            try:
                q.ack()
            except Exception:
                # Committed, so not written again: the broker redelivers it and the copy is a no-op.
                logger.exception("could not acknowledge a stored message")

    def _log_jumps(self, jumped: dict[str, str]) -> None:
        """A device's first seq jump is a warning; its later ones (a broken device's) debug lines."""
        for bin_id, what in jumped.items():
            first = bin_id not in self._jumped
            self._jumped.add(bin_id)
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "device %s: %s: counted as jumps, not as missing readings%s",
                bin_id,
                what,
                "; its further jumps are counted, not logged" if first else "",
            )

    def write(self, batch: Sequence[Queued]) -> None:
        """Write one batch in one transaction, then acknowledge each message in arrival order."""
        t0 = time.perf_counter()
        now = now_ms()
        with self.sessions() as session, session.begin():
            result = write_batch(
                session,
                [q.item for q in batch],
                self.registry,
                self.registration_required,
                now,
                smoothing=self.smoothing,
            )
        self._acknowledge(batch)
        for r in result.rejects:
            self.rejects.record(r)
        self._log_jumps(result.jumped)
        commit_ms = (time.perf_counter() - t0) * 1000
        INGEST_BATCH_SECONDS.observe(commit_ms / 1000)
        committed = now_ms()
        for ts in result.live_ts:
            INGEST_DELAY_SECONDS.observe(max(0.0, (committed - ts) / 1000.0))
        with self.stats.lock:
            self.stats.readings_ingested += result.inserted
            self.stats.duplicates += result.duplicates
            self.stats.seq_jumps += result.seq_jumps
            self.stats.messages += len(batch)
            self.stats.batches += 1
            self.stats.failures_in_a_row = 0
            self.stats.last_commit_ms = commit_ms
            if result.live_ts:
                self.stats.last_lag_s = max(0.0, (now_ms() - max(result.live_ts)) / 1000.0)
        logger.debug(
            "committed %d messages (%d new readings) in %.1f ms", len(batch), result.inserted, commit_ms
        )
