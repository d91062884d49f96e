"""Batches are stored idempotently on (bin_id, seq), with seq gaps, device state and rejects (both DBs)."""

from __future__ import annotations

from server_helpers import image, item, now_ms, reading, stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.models import Bin, Device, DeviceCommand, DeviceEvent, Image, IngestReject, Reading
from binsight.server.health import missing_readings
from binsight.server.ingest.store import BatchResult, BinRegistry, write_batch


def _write(
    sessions: sessionmaker[Session], items: list, required: bool = False, reg: BinRegistry | None = None
) -> BatchResult:
    with sessions() as s, s.begin():
        return write_batch(s, items, reg or BinRegistry(), required, now_ms())


def test_idempotent_and_gaps(sessions: sessionmaker[Session]) -> None:
    """The same readings twice are stored once; a missing seq shows as a gap until it arrives."""
    batch = [item("reading", "b1", reading("b1", s)) for s in (10, 11, 13, 13)]
    r1 = _write(sessions, batch)
    assert (r1.inserted, r1.duplicates) == (3, 1)
    r2 = _write(sessions, batch)
    assert (r2.inserted, r2.duplicates) == (0, 4)
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Reading)).scalar_one() == 3
        d = s.get(Device, "b1")
        assert d is not None and (d.seq_min, d.seq_max, d.seq_count) == (10, 13, 3)
        assert missing_readings(d) == 1
        assert s.get(Bin, "b1") is not None  # registration not required: a bare bin appears
    _write(sessions, [item("reading", "b1", reading("b1", 12, historical=True))])
    with sessions() as s:
        assert missing_readings(s.get(Device, "b1")) == 0


def test_latest_fill_and_quality(sessions: sessionmaker[Session]) -> None:
    """The device keeps the newest usable fill and the newest reading's quality, whatever the order."""
    t = now_ms()
    _write(
        sessions,
        [
            item("reading", "b1", reading("b1", 2, 0.7, ts=t)),
            item("reading", "b1", reading("b1", 1, 0.2, ts=t - 1000)),
        ],
    )
    _write(sessions, [item("reading", "b1", reading("b1", 3, None, ts=t + 1000))])
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None
        assert (d.fill, d.fill_ts, d.quality, d.reading_ts) == (0.7, t, "dark", t + 1000)


def test_registration_required(sessions: sessionmaker[Session]) -> None:
    """With registration required, readings of unknown bins are rejected as unknown_bin and counted."""
    with sessions() as s, s.begin():
        s.add(Bin(id="known", registered=True, created_at=0, updated_at=0, lat=1.0, lon=2.0, capacity_l=100))
    r = _write(
        sessions,
        [item("reading", "known", reading("known", 1)), item("reading", "ghost", reading("ghost", 1))],
        required=True,
    )
    assert r.inserted == 1
    assert [x.reason for x in r.rejects] == ["unknown_bin"]
    with sessions() as s:
        assert s.get(Bin, "ghost") is None
        assert s.get(IngestReject, "unknown_bin").count == 1  # type: ignore[union-attr]


def test_rejects_counted_across_batches(sessions: sessionmaker[Session]) -> None:
    """Reject counts persist and add up, with the last example kept."""
    _write(sessions, [item("reading", "b1", "{nope"), item("reading", "b1", "{nope")])
    _write(sessions, [item("reading", "b1", reading("b1", 1, 1.5))])
    _write(sessions, [item("reading", "b1", "[")])
    with sessions() as s:
        counts = {r.reason: r.count for r in s.execute(select(IngestReject)).scalars()}
    assert counts == {"invalid_json": 3, "fill_out_of_range": 1}


def test_stats_availability_events_images(sessions: sessionmaker[Session]) -> None:
    """Stats update the device (newest wins); availability and events are logged; images stored once."""
    t = now_ms()
    with sessions() as s, s.begin():
        s.add(
            DeviceCommand(id="c1", bin_id="b1", action="capture", created_at=t, status="sent", updated_at=t)
        )
    _write(
        sessions,
        [
            item("stats", "b1", stats("b1", ts=t, outbox_depth=5, last_error="lens")),
            item("stats", "b1", stats("b1", ts=t - 5000, outbox_depth=99)),
            item("available", "b1", "online"),
            item("event", "b1", {"bin_id": "b1", "ts": t, "kind": "command", "state": "ok", "ref": "c1"}),
            item("image", "b1", image("b1", 1)),
            item("image", "b1", image("b1", 1)),
        ],
    )
    _write(sessions, [item("available", "b1", "online")])
    _write(sessions, [item("available", "b1", "offline")])
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None and (d.outbox_depth, d.last_error, d.available) == (5, "lens", "offline")
        events = [
            (e.kind, e.state) for e in s.execute(select(DeviceEvent).order_by(DeviceEvent.id)).scalars()
        ]
        assert events == [("availability", "online"), ("command", "ok"), ("availability", "offline")]
        assert s.get(DeviceCommand, "c1").status == "ok"  # type: ignore[union-attr]
        assert s.execute(select(func.count()).select_from(Image)).scalar_one() == 1


def test_retained_online_is_not_a_sign_of_life(sessions: sessionmaker[Session]) -> None:
    """A retained 'online' replayed on subscribe sets availability but not last_seen; a live one does."""
    from server_helpers import T

    from binsight.server.ingest.messages import parse

    retained = parse(T, "binsight/r1/available", b"online", now_ms(), 1000, retained=True)
    _write(sessions, [retained])
    with sessions() as s:
        d = s.get(Device, "r1")
        assert d is not None and d.available == "online" and d.last_seen is None
    _write(sessions, [item("available", "r1", "online")])
    with sessions() as s:
        assert s.get(Device, "r1").last_seen is not None  # type: ignore[union-attr]


def test_resent_events_stored_once(sessions: sessionmaker[Session]) -> None:
    """An event the device's outbox sends again (same batch or a later one) is logged once."""
    t = now_ms()
    ok = {"bin_id": "b1", "ts": t, "kind": "command", "state": "ok", "ref": "c1", "detail": "seq 4"}
    other = {**ok, "ref": "c2"}  # a second command done in the same millisecond is its own event
    _write(sessions, [item("event", "b1", ok), item("event", "b1", ok), item("event", "b1", other)])
    _write(sessions, [item("event", "b1", ok)])
    bad = {"bin_id": "b1", "ts": t, "kind": "command", "state": "failed", "detail": "malformed command"}
    _write(sessions, [item("event", "b1", bad)])
    _write(sessions, [item("event", "b1", bad)])  # no ref: nothing to tell copies from repeats
    with sessions() as s:
        refs = [e.ref for e in s.execute(select(DeviceEvent).order_by(DeviceEvent.id)).scalars()]
    assert refs == ["c1", "c2", None, None]
