"""The store-and-forward outbox: every QoS 1 message is on disk before it is sent.

SQLite in WAL mode with ``synchronous=FULL``: a row is fsynced before :meth:`Outbox.add_reading`
returns, and deleted only once the broker acknowledged it (PUBACK). Rows are replayed in insertion
order. The reading ``seq`` counter lives in the same database and advances in the same transaction
as the row it numbers, so it is monotonic across restarts and crashes.

Each kind of message is bounded separately; when full, the oldest rows of that kind are dropped
and counted (``dropped`` survives restarts). A lost delete (crash right after PUBACK) only means
the message is sent again: the server deduplicates on ``(bin_id, seq)``.

A full state partition (issue 15) stops no one. The WAL is checkpointed every
``_WAL_AUTOCHECKPOINT_PAGES`` pages and cut back to ``_JOURNAL_SIZE_LIMIT`` (SQLite's default, a
4 MB WAL kept at its largest size, filled a small partition before its first checkpoint, and a WAL
that cannot be checkpointed never shrinks again, not even across restarts); it is truncated to zero
at open, when the outbox drains (at most once a minute) and when a write failed. A write that fails
for want of space also gives up the ``RESERVE_BYTES`` file kept beside the database and is tried
again; one that still fails holds the message in memory (bounded per kind by ``HELD_IN_MEMORY``;
beyond it the oldest are dropped and counted, images at once); the next write, delete or
:meth:`Outbox.flush` that works stores them, in order. The seq keeps counting meanwhile. Held
messages live in memory only: a crash while the disk is full loses them with the seqs they took
(the server sees a gap).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from binsight.device.problems import DiskSpace, Problems, free_bytes, out_of_space
from binsight.errors import BinsightError
from binsight.protocol import Reading

__all__ = ["Outbox", "OutboxError", "Row"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

KINDS = ("reading", "image", "event")

#: WAL pages before SQLite copies them back into the database (its default, 1000 pages, is 4 MB).
_WAL_AUTOCHECKPOINT_PAGES = 64
#: A checkpointed WAL is cut back to this many bytes (by default SQLite keeps its largest size).
_JOURNAL_SIZE_LIMIT = 256 * 1024
#: A drained outbox truncates its WAL to zero at most this often: each time costs an fsync of the
#: database, and a replay drains the outbox after every acknowledged batch.
_TRUNCATE_EVERY_S = 60.0

#: Bytes set aside in ``<outbox>.reserve`` while there is room, given up when the disk is full: room
#: for SQLite's shared-memory file (32 KB) at the next start, for a checkpoint and for more writes.
RESERVE_BYTES = 256 * 1024

#: Messages held in memory per kind while the disk is full: ~1000 readings of ~300 bytes cover a
#: week at the default 10 min interval; labelling images (up to 200 KB each) are not held.
HELD_IN_MEMORY = {"reading": 1_000, "image": 0, "event": 100}


class OutboxError(BinsightError):
    """The outbox database cannot be opened or written."""


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    payload: bytes


class Outbox:
    """A bounded, durable FIFO of messages waiting for their PUBACK. Thread-safe.

    Parameters
    ----------
    limits
        The most rows kept per kind (``reading``, ``image``, ``event``).
    problems
        Where a full disk shows as the ``outbox`` problem (the agent's ``last_error``).
    held
        The most messages per kind held in memory while the disk is full (``HELD_IN_MEMORY``).
    """

    def __init__(
        self,
        path: str | Path,
        limits: dict[str, int] | None = None,
        *,
        problems: Problems | None = None,
        held: dict[str, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.limits = {"reading": 50_000, "image": 20, "event": 1_000, **(limits or {})}
        self.held_limits = {**HELD_IN_MEMORY, **(held or {})}
        self.disk = DiskSpace(
            self.path,
            "outbox",
            f"holding messages in memory (up to {self.held_limits['reading']} readings), "
            "then dropping the oldest and counting them",
            problems=problems,
        )
        self.reserve_path = self.path.with_name(self.path.name + ".reserve")
        self._reserved = self.reserve_path.exists()
        try:
            self._db = self._open()
        except OutboxError as exc:
            # SQLite cannot even create its shared-memory file on a full disk: without the
            # reserve's room, the agent would not start again until someone made room.
            cause = exc.__cause__
            if cause is None or not out_of_space(cause) or not self._release_reserve():
                raise
            self.disk.write_failed(cause)
            self._db = self._open()
        self._lock = threading.Lock()
        self._checkpoint()  # a WAL left at its largest by an older agent is given back at once
        self._counts = {k: self._count(k) for k in KINDS}
        self._next_seq = self._meta("next_seq")
        self._held: dict[str, deque[bytes]] = {k: deque() for k in KINDS}
        self._held_dropped: Counter[str] = Counter()  # dropped while the disk was full, not yet saved
        self._undeleted: set[int] = set()  # acknowledged while the disk was full
        self._truncated_at = time.monotonic()
        self._keep_reserve()

    def _open(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
            db.execute(f"PRAGMA journal_size_limit={_JOURNAL_SIZE_LIMIT}")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()
            raise OutboxError(f"outbox {self.path}: {exc}") from exc
        return db

    def _keep_reserve(self) -> None:
        """Set ``RESERVE_BYTES`` aside in a file beside the database, when there is room for it."""
        if self._reserved:
            return
        free = free_bytes(self.path)
        if free is None or free < RESERVE_BYTES + self.disk.room:
            return
        try:
            with open(self.reserve_path, "wb") as fh:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fh.fileno(), 0, RESERVE_BYTES)  # zeros might be compressed away
                else:  # pragma: no cover - not Linux
                    fh.write(bytes(RESERVE_BYTES))
        except OSError as exc:
            self.reserve_path.unlink(missing_ok=True)
            logger.debug("outbox %s: no reserve: %s", self.path, exc)
            return
        self._reserved = True

    def _release_reserve(self) -> bool:
        """Give the reserve's room to the database; True if there was a reserve."""
        try:
            self.reserve_path.unlink()
        except OSError:
            return False
        self._reserved = False
        return True

    def _write(self, op: Callable[[], _T]) -> _T:
        """Run the write ``op``; on a full disk note it, free the WAL's and the reserve's room, retry once."""
        try:
            return op()
        except sqlite3.Error as exc:
            if not out_of_space(exc):
                raise
            self.disk.write_failed(exc)
            self._checkpoint()
            self._release_reserve()
            return op()

    def _count(self, kind: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()[0])

    def _meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: object) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _add_dropped(self, kind: str, count: int) -> None:
        key = "dropped" if kind == "reading" else f"dropped_{kind}"
        self._set_meta(key, self._meta(key) + count)

    def _trim(self, kind: str) -> int:
        excess = self._counts[kind] - self.limits[kind]
        if excess <= 0:
            return 0
        self._db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)",
            (kind, excess),
        )
        self._counts[kind] -= excess
        self._add_dropped(kind, excess)
        return excess

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes: gives its space back."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:  # a full disk may refuse it too: the next one may work
            logger.debug("outbox %s: checkpoint failed: %s", self.path, exc)

    def _write_held(self) -> int:
        """Store every held message, in order, in one transaction; returns readings trimmed."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for kind, held in self._held.items():
                for payload in held:
                    self._db.execute("INSERT INTO outbox (kind, payload) VALUES (?, ?)", (kind, payload))
                self._counts[kind] += len(held)
            trimmed = {kind: self._trim(kind) for kind in KINDS}
            for kind, count in self._held_dropped.items():
                self._add_dropped(kind, count)
            self._set_meta("next_seq", self._next_seq)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back by itself after SQLITE_FULL
                self._db.execute("ROLLBACK")
            self._counts = {k: self._count(k) for k in KINDS}
            raise
        for held in self._held.values():
            held.clear()
        self._held_dropped.clear()
        if self.disk.full:
            self.disk.write_worked(f"held messages stored; {self._meta('dropped')} readings dropped in all")
        self._keep_reserve()
        return trimmed["reading"]

    def _store(self, kind: str, payload: bytes) -> int:
        """Store ``payload`` after the held messages; hold it when the disk is full. Readings trimmed."""
        self._held[kind].append(payload)
        try:
            return self._write(self._write_held)
        except sqlite3.Error as exc:
            if not out_of_space(exc):
                self._held[kind].pop()
                raise OutboxError(f"outbox {self.path}: cannot store {kind}: {exc}") from exc
            self._bound_held(kind)
            return 0

    def _bound_held(self, kind: str) -> None:
        held = self._held[kind]
        while len(held) > self.held_limits[kind]:
            held.popleft()
            self._held_dropped[kind] += 1

    def add_reading(self, make: Callable[[int], Reading]) -> Reading:
        """Number a reading with the next ``seq`` and store it durably, in one transaction.

        ``make(seq)`` builds the reading; the seq is consumed even if the reading is later dropped.
        On a full disk the reading is held in memory (see the module's docstring).
        """
        with self._lock:
            seq = self._next_seq
            reading = make(seq)
            self._next_seq = seq + 1
            try:
                dropped = self._store("reading", reading.model_dump_json().encode())
            except OutboxError:
                self._next_seq = seq  # neither stored nor held: the seq is not used
                raise
        if dropped:
            logger.warning(
                "outbox full (%d readings): dropped the %d oldest", self.limits["reading"], dropped
            )
        return reading

    def add(self, kind: str, payload: bytes) -> None:
        """Store an image or event message durably (held in memory while the disk is full)."""
        if kind not in KINDS or kind == "reading":
            raise ValueError(f"use add_reading for readings; unknown kind {kind!r}")
        if self.limits[kind] == 0:
            return
        with self._lock:
            self._store(kind, payload)

    def flush(self) -> bool:
        """Try again to store what is held in memory; True when nothing is held any more."""
        with self._lock:
            if not any(self._held.values()) and not self._held_dropped:
                return True
            try:
                self._write(self._write_held)
            except sqlite3.Error as exc:
                if not out_of_space(exc):
                    raise OutboxError(f"outbox {self.path}: cannot store held messages: {exc}") from exc
                return False
            return True

    @property
    def held(self) -> int:
        """Messages held in memory for want of disk space."""
        with self._lock:
            return sum(len(held) for held in self._held.values())

    def after(self, last_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with ``id > last_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
            ).fetchall()
        return [Row(int(i), str(k), bytes(p)) for i, k, p in rows]

    def max_id(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(id) FROM outbox").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def delete(self, ids: Iterable[int]) -> None:
        """Remove acknowledged rows (one transaction for the batch).

        On a full disk the ids are kept and deleted with the next batch (until then a new session
        sends those rows again: harmless, see the module's docstring). Once the outbox is empty
        its WAL is truncated.
        """
        with self._lock:
            ids = [*self._undeleted, *ids]
            if not ids:
                return
            try:
                self._write(lambda: self._delete(ids))
            except sqlite3.Error as exc:
                if not out_of_space(exc):
                    raise OutboxError(f"outbox {self.path}: cannot delete acknowledged rows: {exc}") from exc
                self._undeleted.update(ids)
                return
            self._undeleted.clear()
            self._counts = {k: self._count(k) for k in KINDS}
            if any(self._held.values()) or self._held_dropped:
                with contextlib.suppress(sqlite3.Error):  # still no room: held on
                    self._write_held()  # the deletes made room
            else:
                self.disk.write_worked()
            now = time.monotonic()
            if not any(self._counts.values()) and now - self._truncated_at >= _TRUNCATE_EVERY_S:
                self._truncated_at = now
                self._checkpoint()  # drained: give the WAL's space back

    def _delete(self, ids: list[int]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def depth(self, kind: str = "reading") -> int:
        """Messages of ``kind`` waiting to be sent: on disk and held in memory."""
        with self._lock:
            return self._counts[kind] + len(self._held[kind])

    @property
    def dropped(self) -> int:
        """Readings dropped (a full outbox, a full disk) since the database was created."""
        with self._lock:
            return self._meta("dropped") + self._held_dropped["reading"]

    @property
    def next_seq(self) -> int:
        with self._lock:
            return self._next_seq

    def get_setting(self, key: str) -> str | None:
        """Small persistent agent state (interval set by command, refused releases)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", ("setting." + key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str | None) -> None:
        with self._lock:
            try:
                if value is None:
                    self._db.execute("DELETE FROM meta WHERE key = ?", ("setting." + key,))
                else:
                    self._set_meta("setting." + key, value)
            except sqlite3.Error as exc:
                if out_of_space(exc):
                    self.disk.write_failed(exc)
                raise OutboxError(f"outbox {self.path}: cannot save setting {key}: {exc}") from exc

    def close(self) -> None:
        """Close the database, after a last try to store what is held in memory."""
        with self._lock:
            if any(self._held.values()) or self._held_dropped:
                with contextlib.suppress(sqlite3.Error):
                    self._write_held()
            self._db.close()
