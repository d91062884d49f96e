"""Image retention: delete old and surplus *unlabelled* images in short batches; labelled ones never.

Kept, always: every image with a human label (a fill, a class or ``unusable``: a non-skip row in
``labels``). Those are the training set (``binsight train fit --from-server``), the held-out set
``rollout/verify.py`` scores candidate models on, and what coverage sampling counts; nothing else
references images (the model registry and rollouts refer to model files, not images).

Deleted: unlabelled images (never labelled, or only skipped) received more than ``unlabelled_days``
ago, then, per bin, the unlabelled images beyond the newest ``max_unlabelled_per_bin`` (newest by
capture time). Age counts from ``received_at`` (the server's clock), so a camera with a wrong clock
cannot get its images deleted on arrival.

Each batch is its own short transaction, and each DELETE re-checks "no label" in the same statement,
so a label given while the prune runs keeps its image. On PostgreSQL the batch's rows are locked
first (``FOR UPDATE SKIP LOCKED``): an image whose label is being inserted right now (the insert
holds a key-share lock on it) is skipped, and a label insert that starts after the lock waits and
then finds the image gone (404), instead of the label being deleted with it.

Several servers sharing one PostgreSQL database (a shared-subscription group) take turns: a prune
first takes a session-level advisory lock, and a server that finds it held skips that round (the
lock goes with its connection, so a server that dies mid-prune frees it). The batches would be safe
run twice at once, but both servers would scan the same candidates for nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, exists, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import RetentionConfig
from binsight.server.db import dialect
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Image, Label

__all__ = [
    "PG_PRUNE_LOCK_KEY",
    "STATS",
    "PruneResult",
    "PruneStats",
    "RetentionThread",
    "prune_images",
    "prune_turn",
    "sqlite_space",
    "vacuum_sqlite",
]

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000


@dataclass
class PruneResult:
    """What one prune deleted (or, with ``dry_run``, would delete)."""

    aged: int = 0
    capped: int = 0
    bytes: int = 0
    batches: int = 0
    seconds: float = 0.0
    max_batch_s: float = 0.0  # the longest delete transaction: how long ingest could have waited
    dry_run: bool = False
    per_bin: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None  # why nothing was tried (another server was pruning)

    @property
    def deleted(self) -> int:
        return self.aged + self.capped

    def summary(self, cfg: RetentionConfig) -> str:
        if self.skipped:
            return f"skipped: {self.skipped}"
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.deleted} unlabelled images ({self.aged} received over "
            f"{cfg.unlabelled_days:g} days ago, {self.capped} over {cfg.max_unlabelled_per_bin} per bin) "
            f"from {len(self.per_bin)} bins, "
            f"{self.bytes / 1e6:.1f} MB of JPEG, in {self.batches} batches, {self.seconds:.2f} s "
            f"(longest batch {self.max_batch_s * 1000:.0f} ms)"
        )


@dataclass
class PruneStats:
    """This process's prune counters, for ``/metrics``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: int = 0
    skipped: int = 0
    errors: int = 0
    aged: int = 0
    capped: int = 0
    bytes: int = 0
    last_success_s: float | None = None
    last_duration_s: float | None = None

    def record(self, result: PruneResult) -> None:
        with self.lock:
            if result.skipped:
                self.skipped += 1
                return
            self.runs += 1
            self.aged += result.aged
            self.capped += result.capped
            self.bytes += result.bytes
            self.last_success_s = time.time()
            self.last_duration_s = result.seconds


#: Counters of every prune in this process (the periodic one and any run through the app).
STATS = PruneStats()


def _labelled() -> ColumnElement[bool]:
    """True for an image with a human label: any non-skip row (fill, class or unusable)."""
    return exists().where(Label.image_id == Image.id, Label.skipped.is_(False))


def _cutoff(cfg: RetentionConfig, now: int) -> int:
    return now - int(cfg.unlabelled_days * DAY_MS)


def _aged_ids(s: Session, cutoff: int, after_id: int, limit: int) -> list[int]:
    q = (
        select(Image.id)
        .where(Image.received_at < cutoff, Image.id > after_id, ~_labelled())
        .order_by(Image.id)
        .limit(limit)
    )
    return list(s.execute(q).scalars())


def _over_cap(cutoff: int, cap: int) -> Any:
    """Unlabelled images not old enough for age pruning, ranked newest first within their bin."""
    rank = (
        func.row_number()
        .over(partition_by=Image.bin_id, order_by=(Image.ts.desc(), Image.id.desc()))
        .label("rank")
    )
    sub = (
        select(Image.id, Image.bin_id, Image.size, rank)
        .where(Image.received_at >= cutoff, ~_labelled())
        .subquery()
    )
    return select(sub.c.id, sub.c.bin_id, sub.c.size).where(sub.c.rank > cap).order_by(sub.c.id)


def _delete_batch(s: Session, ids: Sequence[int]) -> list[tuple[int, str, int]]:
    """Delete those of ``ids`` still unlabelled (on PostgreSQL: and not locked by a label insert)."""
    if not dialect.is_sqlite(s):
        ids = list(
            s.execute(select(Image.id).where(Image.id.in_(ids)).with_for_update(skip_locked=True)).scalars()
        )
        if not ids:
            return []
    stmt = (
        delete(Image)
        .where(Image.id.in_(ids), ~_labelled())
        .returning(Image.id, Image.bin_id, Image.size)
        .execution_options(synchronize_session=False)
    )
    return [(int(r[0]), str(r[1]), int(r[2])) for r in s.execute(stmt)]


def _dry_run(sessions: sessionmaker[Session], cfg: RetentionConfig, cutoff: int, out: PruneResult) -> None:
    with sessions() as s:
        aged = s.execute(
            select(Image.bin_id, func.count(), func.coalesce(func.sum(Image.size), 0))
            .where(Image.received_at < cutoff, ~_labelled())
            .group_by(Image.bin_id)
        ).all()
        for bin_id, n, size in aged:
            out.aged += int(n)
            out.bytes += int(size)
            out.per_bin[bin_id] += int(n)
        for _id, bin_id, size in s.execute(_over_cap(cutoff, cfg.max_unlabelled_per_bin)):
            out.capped += 1
            out.bytes += int(size)
            out.per_bin[bin_id] += 1


#: PostgreSQL advisory lock key of the image prune ("prun"; the migrations use "bins").
PG_PRUNE_LOCK_KEY = 0x7072756E


@contextmanager
def prune_turn(sessions: sessionmaker[Session]) -> Iterator[bool]:
    """Whether this process may prune now; on PostgreSQL, held until the ``with`` block ends.

    A session-level advisory lock on its own connection (committed at once, so the connection is
    not left idle in a transaction while the batches run). SQLite: always True (one process writes).
    """
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine) or not dialect.is_postgresql(bind):
        yield True
        return
    with bind.connect() as conn:
        taken = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_PRUNE_LOCK_KEY})
        mine = bool(taken.scalar_one())
        conn.commit()
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_PRUNE_LOCK_KEY})
                conn.commit()


def prune_images(
    sessions: sessionmaker[Session],
    cfg: RetentionConfig,
    *,
    now: int | None = None,
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> PruneResult:
    """Delete unlabelled images past ``cfg``'s age and per-bin limits, ``cfg.batch_size`` per transaction.

    Parameters
    ----------
    sessions
        The database.
    cfg
        The ``[retention]`` section.
    now
        Epoch ms the age is measured from (default: the clock).
    dry_run
        Count what would be deleted; delete nothing.
    stop
        Checked between batches: a stopping server does not wait for a long prune.

    Returns
    -------
    PruneResult
        Counts by rule and by bin, bytes of JPEG, batches and duration; or, on PostgreSQL when
        another server holds the prune lock, ``skipped`` (nothing tried).
    """
    t0 = time.monotonic()
    cutoff = _cutoff(cfg, now_ms() if now is None else now)
    out = PruneResult(dry_run=dry_run)
    if dry_run:
        _dry_run(sessions, cfg, cutoff, out)
        out.seconds = time.monotonic() - t0
        return out
    with prune_turn(sessions) as mine:
        if not mine:
            out.skipped = "another server is pruning this database"
            return out
        _prune(sessions, cfg, cutoff, out, stop)
    out.seconds = time.monotonic() - t0
    return out


def _prune(
    sessions: sessionmaker[Session],
    cfg: RetentionConfig,
    cutoff: int,
    out: PruneResult,
    stop: threading.Event | None,
) -> None:

    def run_batch(ids: Sequence[int], rule: str) -> None:
        # Candidates are read outside the write transaction: on SQLite, upgrading a read transaction
        # to a write one fails (SQLITE_BUSY_SNAPSHOT) when ingest committed in between.
        t = time.monotonic()
        with sessions() as s, s.begin():
            rows = _delete_batch(s, ids)
        out.max_batch_s = max(out.max_batch_s, time.monotonic() - t)
        out.batches += 1
        for _id, bin_id, size in rows:
            out.bytes += size
            out.per_bin[bin_id] += 1
        if rule == "age":
            out.aged += len(rows)
        else:
            out.capped += len(rows)
        if cfg.batch_pause_s > 0:
            time.sleep(cfg.batch_pause_s)

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    after = 0
    while not stopping():
        with sessions() as s:
            ids = _aged_ids(s, cutoff, after, cfg.batch_size)
        if not ids:
            break
        after = ids[-1]
        run_batch(ids, "age")
    if not stopping():
        with sessions() as s:
            surplus = [int(r[0]) for r in s.execute(_over_cap(cutoff, cfg.max_unlabelled_per_bin))]
        for i in range(0, len(surplus), cfg.batch_size):
            if stopping():
                break
            run_batch(surplus[i : i + cfg.batch_size], "cap")


class RetentionThread:
    """Prunes every ``interval_s`` inside ``binsight server run``; logs one line per prune.

    Parameters
    ----------
    sessions
        The database.
    cfg
        The ``[retention]`` section.
    first_delay_s
        Wait before the first prune (default: a minute, so a restart is not slowed by it).
    """

    def __init__(
        self, sessions: sessionmaker[Session], cfg: RetentionConfig, first_delay_s: float = 60.0
    ) -> None:
        self.sessions = sessions
        self.cfg = cfg
        self.first_delay_s = min(first_delay_s, cfg.interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="binsight-retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> PruneResult | None:
        """One prune, counted in :data:`STATS`; None (logged, counted as an error) when it failed."""
        try:
            result = prune_images(self.sessions, self.cfg, stop=self._stop)
        except Exception:  # the loop must survive a database hiccup; the next interval retries
            with STATS.lock:
                STATS.errors += 1
            logger.exception("image prune failed")
            return None
        STATS.record(result)
        logger.info("image retention: %s", result.summary(self.cfg))
        return result

    def _run(self) -> None:
        delay = self.first_delay_s
        while not self._stop.wait(delay):
            self.run_once()
            delay = self.cfg.interval_s


def sqlite_space(engine: Engine) -> tuple[int, int]:
    """(file bytes, free-page bytes) of a SQLite database: deleted rows leave free pages inside the file."""
    with engine.connect() as conn:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        count = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
    return page * count, page * free


def vacuum_sqlite(engine: Engine) -> int:
    """Rewrite a SQLite file without its free pages; returns the new size. Holds the write lock throughout."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return sqlite_space(engine)[0]
