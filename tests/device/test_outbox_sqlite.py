"""The SQLite outbox: durable, ordered, bounded with drops counted, seq monotonic across reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from binsight.device.outbox import Outbox, OutboxError
from binsight.protocol import Reading


def _reading(seq: int) -> Reading:
    return Reading(bin_id="b-1", seq=seq, ts=1_700_000_000_000 + seq, fill=0.5, quality="ok", model="v1")


def test_seq_is_monotonic_across_reopen(tmp_path: Path) -> None:
    """seq continues after closing and reopening (a restart), even after rows were deleted."""
    path = tmp_path / "o.db"
    box = Outbox(path)
    got = [box.add_reading(_reading).seq for _ in range(3)]
    box.delete(r.id for r in box.after(0, 10))
    box.close()
    box = Outbox(path)
    got += [box.add_reading(_reading).seq for _ in range(2)]
    assert got == [0, 1, 2, 3, 4]
    assert box.depth() == 2


def test_rows_come_back_in_order_and_delete_on_ack(tmp_path: Path) -> None:
    """after() pages through rows oldest first across kinds; delete() removes exactly the acked rows."""
    box = Outbox(tmp_path / "o.db")
    box.add_reading(_reading)
    box.add("event", b'{"e": 1}')
    box.add_reading(_reading)
    rows = box.after(0, 10)
    assert [r.kind for r in rows] == ["reading", "event", "reading"]
    assert [r.id for r in box.after(rows[0].id, 1)] == [rows[1].id]
    box.delete([rows[1].id])
    assert [r.kind for r in box.after(0, 10)] == ["reading", "reading"]
    assert box.depth() == 2 and box.depth("event") == 0


def test_full_outbox_drops_oldest_and_counts(tmp_path: Path) -> None:
    """Beyond max readings the oldest go; dropped is counted and survives reopening."""
    path = tmp_path / "o.db"
    box = Outbox(path, {"reading": 10})
    for _ in range(25):
        box.add_reading(_reading)
    seqs = [Reading.model_validate_json(r.payload).seq for r in box.after(0, 100)]
    assert seqs == list(range(15, 25))
    assert box.dropped == 15
    box.close()
    assert Outbox(path, {"reading": 10}).dropped == 15


def test_images_bounded_separately(tmp_path: Path) -> None:
    """Images have their own bound and never push readings out."""
    box = Outbox(tmp_path / "o.db", {"image": 2})
    box.add_reading(_reading)
    for i in range(5):
        box.add("image", str(i).encode())
    assert [r.payload for r in box.after(0, 10) if r.kind == "image"] == [b"3", b"4"]
    assert box.depth() == 1 and box.dropped == 0


def test_wal_and_full_sync(tmp_path: Path) -> None:
    """The database is in WAL mode; rows are visible to another connection once add returns."""
    path = tmp_path / "o.db"
    box = Outbox(path)
    box.add_reading(_reading)
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 1
    assert box._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_failed_build_consumes_nothing(tmp_path: Path) -> None:
    """If building the reading fails, the transaction rolls back: no row, seq not consumed."""
    box = Outbox(tmp_path / "o.db")

    def broken(seq: int) -> Reading:
        raise ValueError("no")

    with pytest.raises(ValueError):
        box.add_reading(broken)
    assert box.depth() == 0 and box.add_reading(_reading).seq == 0


def test_settings_persist(tmp_path: Path) -> None:
    """Small agent settings survive a reopen and can be cleared."""
    path = tmp_path / "o.db"
    box = Outbox(path)
    box.set_setting("interval_s", "30.0")
    box.close()
    box = Outbox(path)
    assert box.get_setting("interval_s") == "30.0"
    box.set_setting("interval_s", None)
    assert box.get_setting("interval_s") is None


def _full_disk(box: Outbox) -> None:
    """Make the database refuse to grow by one page: SQLite's own SQLITE_FULL, as on a full partition."""
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count={pages}")
    while not box.disk.full:
        box.add_reading(_reading)


def _room_again(box: Outbox) -> None:
    box._db.execute("PRAGMA max_page_count=1073741823")


def test_full_disk_holds_readings_then_stores_them_in_order(tmp_path: Path) -> None:
    """On SQLITE_FULL a reading is held in memory (never raised), up to a bound, the oldest beyond it
    dropped and counted; with room again the next write stores them in seq order, and the drops
    and seq survive a reopen."""
    path = tmp_path / "o.db"
    box = Outbox(path, held={"reading": 3})
    _full_disk(box)
    for _ in range(4):
        box.add_reading(_reading)
    full_at = box.next_seq
    assert box.disk.full and box.dropped == 2, "five readings held, three kept"
    assert box.depth() == len(box.after(0, 10_000)) + 3
    _room_again(box)
    box.add_reading(_reading)
    assert not box.disk.full
    seqs = [Reading.model_validate_json(r.payload).seq for r in box.after(0, 10_000)]
    assert seqs == sorted(seqs) and seqs[-4:] == [full_at - 3, full_at - 2, full_at - 1, full_at]
    assert len(seqs) + box.dropped == box.next_seq == full_at + 1
    box.close()
    again = Outbox(path)
    assert again.dropped == 2 and again.next_seq == full_at + 1


def test_full_disk_images_are_dropped_events_held(tmp_path: Path) -> None:
    """While full, an image (up to 200 KB) is dropped at once and counted; an event is held."""
    box = Outbox(tmp_path / "o.db")
    _full_disk(box)
    box.add("image", b"jpeg")
    box.add("event", b'{"e": 1}')
    assert box.depth("image") == 0 and box.depth("event") == 1
    _room_again(box)
    assert box.flush()
    assert [r.payload for r in box.after(0, 10_000) if r.kind != "reading"] == [b'{"e": 1}']
    assert box._meta("dropped_image") == 1


def test_settings_on_a_full_disk_raise_outbox_error(tmp_path: Path) -> None:
    """A setting that cannot be saved is an OutboxError naming it, and the full disk is noted."""
    box = Outbox(tmp_path / "o.db")
    _full_disk(box)
    with pytest.raises(OutboxError, match="cannot save setting big"):
        box.set_setting("big", "x" * 100_000)
