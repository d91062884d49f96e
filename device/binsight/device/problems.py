"""What is wrong with the agent right now: the ``last_error`` of its ``stats`` messages.

Problems are kept by source ("camera", "model", "inference", "update", "loop", "outbox"); each is
cleared when its source works again, so stats never show a problem fixed days ago.

:class:`DiskSpace` is how a writer on the state partition (the outbox, the model download) says
that a write failed for want of space: one WARNING when it starts, one INFO when writes work again,
and an open problem in between, however many writes fail meanwhile.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
from pathlib import Path

__all__ = ["DiskSpace", "Problems", "free_bytes", "out_of_space"]

logger = logging.getLogger(__name__)

#: SQLite's primary result codes for "the write did not reach the disk".
_SQLITE_WRITE_FAILED = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
#: OSError numbers for "no room left" (a full partition, a quota, a file size limit).
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class Problems:
    """The open problems, one message per source, the most recent last. Thread-safe."""

    def __init__(self) -> None:
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()  # set from the capture loop, the updater and the outbox's callers

    def set(self, source: str, message: str) -> None:
        with self._lock:
            self._open.pop(source, None)  # re-insert: most recent last
            self._open[source] = message[:500]

    def clear(self, source: str) -> None:
        with self._lock:
            self._open.pop(source, None)

    @property
    def last(self) -> str | None:
        """The most recent open problem, or None."""
        with self._lock:
            return next(reversed(self._open.values()), None)


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` says a write failed for want of space (or the disk refused it)."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _SQLITE_WRITE_FAILED  # extended codes: low byte
    return isinstance(exc, OSError) and exc.errno in _NO_ROOM


def free_bytes(path: Path) -> int | None:
    """Bytes free for writing in ``path``'s folder (its partition); None when it cannot be read."""
    folder = path if path.is_dir() else path.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


class DiskSpace:
    """Whether writes to ``path`` currently fail for want of space; each change logged once.

    Parameters
    ----------
    path
        The file written (its partition is the one that is full).
    what
        What the file is, for the messages ("outbox", "model download").
    meanwhile
        What the writer does while the disk is full, said in the WARNING.
    problems, source
        Where the open problem is shown (the agent's ``last_error``); None: logged only.
    room
        Bytes that must be free again before a full disk counts as fixed: near full, some writes
        work and some fail, which must not log a line each.
    """

    def __init__(
        self,
        path: Path,
        what: str,
        meanwhile: str,
        *,
        problems: Problems | None = None,
        source: str = "",
        room: int = 512 * 1024,
    ) -> None:
        self.path = path
        self.what = what
        self.meanwhile = meanwhile
        self.problems = problems
        self.source = source or what
        self.room = room
        self._full = False
        self._lock = threading.Lock()

    @property
    def full(self) -> bool:
        return self._full

    def write_failed(self, exc: BaseException) -> None:
        """A write failed for want of space: the first failure in a row logs one WARNING."""
        with self._lock:
            if self._full:
                return
            self._full = True
        free = free_bytes(self.path)
        message = (
            f"{self.what} {self.path}: cannot write ({exc}); "
            f"{'?' if free is None else free} bytes free: {self.meanwhile}"
        )
        logger.warning("%s", message)
        if self.problems is not None:
            self.problems.set(self.source, message)

    def write_worked(self, detail: str = "") -> None:
        """A write worked: after failures, once ``room`` bytes are free, one INFO line (with
        ``detail``) and the problem is cleared."""
        if not self._full:
            return
        free = free_bytes(self.path)
        with self._lock:
            if not self._full or (free is not None and free < self.room):
                return
            self._full = False
        logger.info(
            "%s %s: writable again (%s bytes free)%s",
            self.what,
            self.path,
            "?" if free is None else free,
            f": {detail}" if detail else "",
        )
        if self.problems is not None:
            self.problems.clear(self.source)
