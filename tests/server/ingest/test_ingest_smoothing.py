"""Ingest stores a smoothed fill beside every raw reading and on the device row (both databases)."""

from __future__ import annotations

from server_helpers import item, now_ms, reading
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.models import Device, Reading
from binsight.server.forecast.smoothing import SmoothParams, SmoothState
from binsight.server.ingest.store import BinRegistry, write_batch

STEP = 600_000


def _write(
    sessions: sessionmaker[Session], bin_id: str, fills: list[float | None], t0: int, seq0: int = 0
) -> None:
    """One batch of readings ``STEP`` apart from ``t0``, in arrival order."""
    items = [
        item("reading", bin_id, reading(bin_id, seq0 + i, f, ts=t0 + i * STEP)) for i, f in enumerate(fills)
    ]
    with sessions() as s, s.begin():
        write_batch(s, items, BinRegistry(), False, now_ms(), smoothing=SmoothParams(min_drop=0.3))


def _stored(sessions: sessionmaker[Session], bin_id: str) -> list[tuple[int, float | None, float | None]]:
    with sessions() as s:
        rows = s.execute(
            select(Reading.seq, Reading.fill, Reading.fill_smooth)
            .where(Reading.bin_id == bin_id)
            .order_by(Reading.ts)
        ).all()
    return [(r.seq, r.fill, r.fill_smooth) for r in rows]


def test_raw_kept_and_smoothed_beside_it(sessions: sessionmaker[Session]) -> None:
    """A wild frame keeps its raw fill; its smoothed fill, and the device's, stay at the bin's level."""
    t0 = now_ms() - 40 * STEP
    fills: list[float | None] = [0.40, 0.41, 0.40, 0.42, 1.0, 0.41, None, 0.42]
    _write(sessions, "b1", fills[:4], t0)
    _write(sessions, "b1", fills[4:], t0 + 4 * STEP, seq0=4)  # across batches: the state is on the row
    rows = _stored(sessions, "b1")
    assert [f for _, f, _ in rows] == fills  # raw untouched
    wild = rows[4]
    assert wild[1] == 1.0 and wild[2] is not None and wild[2] < 0.45
    assert rows[6][2] is None  # an unusable frame has no fill to smooth
    smoothed = [sm for _, _, sm in rows if sm is not None]
    assert smoothed == sorted(smoothed)  # only rises
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None and d.fill == 0.42 and d.fill_smooth == smoothed[-1]
        assert SmoothState.from_json(d.smooth) is not None


def test_a_collection_resets_the_smoothed_fill(sessions: sessionmaker[Session]) -> None:
    """Readings that stay low after a full bin start a new cycle: the smoothed fill drops with them."""
    t0 = now_ms() - 60 * STEP
    _write(sessions, "b2", [0.2 + 0.02 * i for i in range(30)], t0)
    _write(sessions, "b2", [0.04] * 8, t0 + 30 * STEP, seq0=30)
    rows = _stored(sessions, "b2")
    before = [sm for _, _, sm in rows[:30]]
    assert before == sorted(before) and before[-1] is not None and before[-1] > 0.7
    after = [sm for _, _, sm in rows[30:]]
    assert after[0] == before[-1]  # the first low reading is held back: it might be an outlier
    assert after[-1] is not None and after[-1] < 0.1
    with sessions() as s:
        d = s.get(Device, "b2")
        assert d is not None and d.fill_smooth is not None and d.fill_smooth < 0.1


def test_a_backlog_older_than_the_state_is_stored_unsmoothed(sessions: sessionmaker[Session]) -> None:
    """Readings that arrive after newer ones are stored with their raw fill; the state does not move."""
    t0 = now_ms() - 60 * STEP
    _write(sessions, "b3", [0.5, 0.5, 0.5], t0 + 10 * STEP, seq0=10)
    with sessions() as s:
        d = s.get(Device, "b3")
        assert d is not None
        state_before, shown_before = d.smooth, d.fill_smooth
    _write(sessions, "b3", [0.9, 0.9], t0, seq0=0)  # the outbox's older readings, late
    rows = _stored(sessions, "b3")
    assert [(seq, f, sm) for seq, f, sm in rows[:2]] == [(0, 0.9, None), (1, 0.9, None)]
    with sessions() as s:
        d = s.get(Device, "b3")
        assert d is not None and d.smooth == state_before and d.fill_smooth == shown_before


def test_a_redelivered_batch_changes_nothing(sessions: sessionmaker[Session]) -> None:
    """The broker's second copy of a batch is not folded in again: rows and state stay as they were."""
    t0 = now_ms() - 60 * STEP
    _write(sessions, "b4", [0.3, 0.32, 0.31, 0.33], t0)
    first = _stored(sessions, "b4")
    with sessions() as s:
        state = s.get(Device, "b4").smooth  # type: ignore[union-attr]
    _write(sessions, "b4", [0.3, 0.32, 0.31, 0.33], t0)
    assert _stored(sessions, "b4") == first
    with sessions() as s:
        assert s.get(Device, "b4").smooth == state  # type: ignore[union-attr]
