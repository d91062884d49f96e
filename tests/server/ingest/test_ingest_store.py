"""Batches are stored idempotently on (bin_id, seq), with seq gaps, device state and rejects (both DBs)."""

from __future__ import annotations

from server_helpers import image, item, now_ms, reading, stats
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.models import Bin, Device, DeviceCommand, DeviceEvent, Image, IngestReject, Reading
from binsight.server.health import missing_readings
from binsight.server.ingest.messages import INT64_MAX, MAX_SEQ, Reject
from binsight.server.ingest.store import (
    MAX_SEQ_JUMP,
    BatchResult,
    BinRegistry,
    SeqWindow,
    advance_seq_window,
    write_batch,
)


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


def test_the_largest_accepted_values_are_stored(sessions: sessionmaker[Session]) -> None:
    """Every field at the bound parse accepts (seq MAX_SEQ, INTEGER and BIGINT maxima, full-length
    text in multi-byte characters, the largest finite float) fits both databases."""
    big = 1.7e308
    items = [
        item("reading", "b1", reading("b1", MAX_SEQ, model="é" * 128, label="ü" * 64, infer_ms=big)),
        item(
            "stats",
            "b1",
            stats(
                "b1",
                outbox_depth=2**31 - 1,
                dropped=INT64_MAX,
                captures=INT64_MAX,
                unusable=INT64_MAX,
                model="m" * 128,
                last_error="e" * 500,
                uptime_s=big,
                interval_s=big,
                rss_mb=big,
            ),
        ),
        item(
            "event", "b1", {"bin_id": "b1", "ts": now_ms(), "kind": "model", "state": "ok", "ref": "r" * 128}
        ),
        item("image", "b1", {**image("b1", MAX_SEQ), "model": "m" * 128}),
    ]
    assert not [i for i in items if isinstance(i, Reject)], items
    _write(sessions, items)
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None and (d.outbox_depth, d.dropped, d.seq_max) == (2**31 - 1, INT64_MAX, MAX_SEQ)
        assert s.execute(select(Reading.model)).scalar_one() == "é" * 128
        assert s.execute(select(Image.seq)).scalar_one() == MAX_SEQ


def test_a_seq_jump_is_counted_not_taken_for_missing_readings(sessions: sessionmaker[Session]) -> None:
    """A seq far beyond the device's (2**53 - 1 after 0..9) is a jump: the gap stays what it was
    (one reading, seq 5), not 9e15, and stays right for the readings that follow, on either side."""
    first = [item("reading", "b1", reading("b1", s_)) for s_ in range(10) if s_ != 5]
    assert _write(sessions, first).seq_jumps == 0
    r = _write(sessions, [item("reading", "b1", reading("b1", MAX_SEQ))])
    assert r.seq_jumps == 1
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None and missing_readings(d) == 1 and d.seq_count == 10 and d.seq_max == MAX_SEQ
    # The device goes on from 10 (the jump was one bad reading): back in its range, no new gap.
    r = _write(sessions, [item("reading", "b1", reading("b1", s_)) for s_ in (10, 11, 13)])
    assert r.seq_jumps == 1
    with sessions() as s:
        d = s.get(Device, "b1")
        assert d is not None and d.seq_count == 13 and missing_readings(d) == 2  # seq 5 and 12
    # A jump inside one batch counts too; a step within MAX_SEQ_JUMP is a gap.
    r = _write(sessions, [item("reading", "b1", reading("b1", 13 + MAX_SEQ_JUMP + 1))])
    assert r.seq_jumps == 1
    r = _write(sessions, [item("reading", "b1", reading("b1", 14 + MAX_SEQ_JUMP + 1000))])
    assert r.seq_jumps == 0
    with sessions() as s:
        assert missing_readings(s.get(Device, "b1")) == 2 + 999  # type: ignore[arg-type]


def test_seq_window_arithmetic() -> None:
    """advance_seq_window: ranges grow and count gaps; a jump moves the window and keeps its gaps;
    whatever a device sends, one reading adds at most MAX_SEQ_JUMP missing ones."""
    w, jumps = advance_seq_window(None, [5, 7, 6, 9])
    assert (w, jumps, w.missing) == (SeqWindow(5, 9, 4), 0, 1)
    w, jumps = advance_seq_window(w, [MAX_SEQ, 10, 11])  # one wild seq, then back to normal
    assert jumps == 2 and w.missing == 1 and w.count == 7 and w.high == 11
    w, jumps = advance_seq_window(w, [0])  # below the window, within reach: seqs 1..4 now missing
    assert jumps == 0 and w.low == 0 and w.count == 8
    for seqs in ([10 * MAX_SEQ_JUMP, 12], [12 + MAX_SEQ_JUMP + 1, 12], [MAX_SEQ_JUMP, 2 * MAX_SEQ_JUMP]):
        after, _ = advance_seq_window(w, seqs)
        assert after.missing <= w.missing + len(seqs) * MAX_SEQ_JUMP, seqs


def test_reject_details_with_nul_are_stored(sessions: sessionmaker[Session]) -> None:
    """A reject's detail quotes the payload (here a field named NUL): stored with the NUL replaced."""
    bad = item("reading", "b1", {**reading("b1", 1), "\x00": 1})
    assert isinstance(bad, Reject) and "\x00" in bad.detail
    _write(sessions, [bad])
    with sessions() as s:
        row = s.get(IngestReject, "invalid_fields")
        assert row is not None and row.count == 1 and "\x00" not in (row.last_detail or "")


def test_shadow_fields_are_stored(sessions: sessionmaker[Session]) -> None:
    """A shadow-soak reading keeps the previous model's version and fill beside its own (both DBs)."""
    _write(
        sessions,
        [
            item("reading", "b1", reading("b1", 1, 0.6, model="m2", shadow_model="m1", shadow_fill=0.31)),
            item("reading", "b1", reading("b1", 2, 0.4, model="m2")),
        ],
    )
    with sessions() as s:
        rows = s.execute(select(Reading.seq, Reading.shadow_model, Reading.shadow_fill).order_by(Reading.seq))
        assert [tuple(r) for r in rows] == [(1, "m1", 0.31), (2, None, None)]
