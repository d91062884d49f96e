"""The store-and-forward outbox: every QoS 1 message is on disk before it is sent.

SQLite in WAL mode with ``synchronous=FULL``: a row is fsynced before :meth:`Outbox.add_reading`
returns, and deleted only once the broker acknowledged it (PUBACK). Rows are replayed in insertion
order. The reading ``seq`` counter lives in the same database and advances in the same transaction
as the row it numbers, so it is monotonic across restarts and crashes.

Each kind of message is bounded separately; when full, the oldest rows of that kind are dropped
and counted (``dropped`` survives restarts). A lost delete (crash right after PUBACK) only means
the message is sent again: the server deduplicates on ``(bin_id, seq)``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from binsight.errors import BinsightError
from binsight.protocol import Reading

__all__ = ["Outbox", "OutboxError", "Row"]

logger = logging.getLogger(__name__)

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


class OutboxError(BinsightError):
    """The outbox database cannot be opened or written."""


@dataclass(frozen=True)
class Row:
    id: int
    kind: str
    payload: bytes


class Outbox:
    """A bounded, durable FIFO of messages waiting for their PUBACK. Thread-safe."""

    def __init__(self, path: str | Path, limits: dict[str, int] | None = None) -> None:
        self.path = Path(path)
        self.limits = {"reading": 50_000, "image": 20, "event": 1_000, **(limits or {})}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._counts = {k: self._count(k) for k in KINDS}

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

    def _trim(self, kind: str) -> int:
        excess = self._counts[kind] - self.limits[kind]
        if excess <= 0:
            return 0
        self._db.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)",
            (kind, excess),
        )
        self._counts[kind] -= excess
        key = "dropped" if kind == "reading" else f"dropped_{kind}"
        self._set_meta(key, self._meta(key) + excess)
        return excess

    def add_reading(self, make: Callable[[int], Reading]) -> Reading:
        """Number a reading with the next ``seq`` and store it durably, in one transaction.

        ``make(seq)`` builds the reading; the seq is consumed even if the reading is later dropped.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    seq = self._meta("next_seq")
                    reading = make(seq)
                    self._db.execute(
                        "INSERT INTO outbox (kind, payload) VALUES ('reading', ?)",
                        (reading.model_dump_json().encode(),),
                    )
                    self._set_meta("next_seq", seq + 1)
                    self._counts["reading"] += 1
                    dropped = self._trim("reading")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._counts["reading"] = self._count("reading")
                    raise
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: cannot store reading: {exc}") from exc
        if dropped:
            logger.warning(
                "outbox full (%d readings): dropped the %d oldest", self.limits["reading"], dropped
            )
        return reading

    def add(self, kind: str, payload: bytes) -> None:
        """Store an image or event message durably."""
        if kind not in KINDS or kind == "reading":
            raise ValueError(f"use add_reading for readings; unknown kind {kind!r}")
        if self.limits[kind] == 0:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute("INSERT INTO outbox (kind, payload) VALUES (?, ?)", (kind, payload))
                    self._counts[kind] += 1
                    self._trim(kind)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    self._counts[kind] = self._count(kind)
                    raise
            except sqlite3.Error as exc:
                raise OutboxError(f"outbox {self.path}: cannot store {kind}: {exc}") from exc

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
        """Remove acknowledged rows (one transaction for the batch)."""
        ids = list(ids)
        if not ids:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for chunk in range(0, len(ids), 500):
                    part = ids[chunk : chunk + 500]
                    marks = ",".join("?" * len(part))
                    self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", part)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise OutboxError(f"outbox {self.path}: cannot delete acknowledged rows: {exc}") from exc
            self._counts = {k: self._count(k) for k in KINDS}

    def depth(self, kind: str = "reading") -> int:
        with self._lock:
            return self._counts[kind]

    @property
    def dropped(self) -> int:
        """Readings dropped from a full outbox since the database was created."""
        with self._lock:
            return self._meta("dropped")

    @property
    def next_seq(self) -> int:
        with self._lock:
            return self._meta("next_seq")

    def get_setting(self, key: str) -> str | None:
        """Small persistent agent state (interval set by command, refused releases)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", ("setting." + key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", ("setting." + key,))
            else:
                self._set_meta("setting." + key, value)

    def close(self) -> None:
        with self._lock:
            self._db.close()
