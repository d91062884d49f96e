"""The agent's open problems: the ``last_error`` its stats report; a full disk logged once per change."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path

import pytest

from binsight.device.problems import DiskSpace, Problems, out_of_space


def test_problems_keep_the_most_recent_open_one() -> None:
    """A problem cleared at its source is gone; the last one set is reported, each cut to 500 characters."""
    problems = Problems()
    assert problems.last is None
    problems.set("camera", "unplugged")
    problems.set("model", "x" * 600)
    assert problems.last == "x" * 500
    problems.clear("model")
    assert problems.last == "unplugged"
    problems.set("model", "bad file")
    problems.set("camera", "unplugged again")
    assert problems.last == "unplugged again"


def test_disk_space_logs_each_change_once_and_shows_the_problem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Many failed writes are one WARNING (path, free bytes) and one open problem; the first write
    that works with room again is one INFO and clears it."""
    caplog.set_level(logging.INFO, logger="binsight.device.problems")
    problems = Problems()
    disk = DiskSpace(tmp_path / "outbox.db", "outbox", "holding readings", problems=problems, room=0)
    disk.write_worked()
    full = sqlite3.connect(":memory:")
    full.execute("CREATE TABLE t (x)")
    full.execute("PRAGMA max_page_count=2")  # SQLite's own SQLITE_FULL: the table cannot grow
    with pytest.raises(sqlite3.OperationalError) as exc:
        full.execute("INSERT INTO t VALUES (zeroblob(100000))")
    assert out_of_space(exc.value)
    for _ in range(5):
        disk.write_failed(exc.value)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(tmp_path / "outbox.db") in warnings[0] and "bytes free" in warnings[0]
    assert problems.last == warnings[0] and disk.full
    for _ in range(3):
        disk.write_worked("2 held stored")
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "writable again" in infos[0] and "2 held stored" in infos[0]
    assert problems.last is None and not disk.full


def test_a_near_full_disk_is_not_fixed_until_there_is_room(tmp_path: Path) -> None:
    """A write that works with less than ``room`` bytes free leaves the problem open (no flapping)."""
    disk = DiskSpace(tmp_path / "o.db", "outbox", "holding", room=2**62)
    disk.write_failed(OSError(errno.ENOSPC, "No space left on device"))
    disk.write_worked()
    assert disk.full


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
        (OSError(errno.EACCES, "Permission denied"), False),
        (sqlite3.OperationalError("no such table: t"), False),
        (ValueError("no"), False),
    ],
)
def test_out_of_space_tells_a_full_disk_from_other_errors(exc: BaseException, expected: bool) -> None:
    """Only the errors a full disk gives count as one."""
    assert out_of_space(exc) is expected
