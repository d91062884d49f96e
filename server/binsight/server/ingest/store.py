"""Write one batch of validated messages in one transaction, idempotently.

Readings are inserted with ``ON CONFLICT (bin_id, seq) DO NOTHING ... RETURNING``, so a message the
broker delivers twice (after a server restart, or to two servers) is stored once, and the per-device
seq bookkeeping counts only rows actually inserted: ``seq_max - seq_min + 1 - seq_count`` is the
number of readings that never arrived. A seq far outside the device's range is a reset or a broken
device, not millions of lost readings: :func:`advance_seq_window` counts it as a jump instead.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    String,
    Table,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from binsight.protocol import Reading as Reading_
from binsight.server.db import dialect
from binsight.server.db.models import (
    Bin,
    Device,
    DeviceCommand,
    DeviceEvent,
    Image,
    IngestReject,
    Reading,
)
from binsight.server.forecast.smoothing import SmoothParams, SmoothState, step
from binsight.server.ingest.messages import (
    Availability,
    EventMsg,
    ImageMsg,
    Item,
    ReadingMsg,
    Reject,
    StatsMsg,
    bin_of,
    storable_text,
)

__all__ = ["MAX_SEQ_JUMP", "BatchResult", "BinRegistry", "SeqWindow", "advance_seq_window", "write_batch"]

#: How far (either way) a new seq may lie outside a device's stored range and still count what lies
#: between as missing readings. Farther is a jump: the device lost its state (reset) or is broken.
#: 10**7 readings are 115 days of them at one a second, 19 years at the default interval of 600 s.
MAX_SEQ_JUMP = 10**7


@dataclass(frozen=True, slots=True)
class SeqWindow:
    """One device's seq bookkeeping (``devices.seq_min``, ``seq_max``, ``seq_count``).

    ``count`` is every reading stored for the device; ``high - low + 1 - count`` are the missing ones.
    """

    low: int
    high: int
    count: int

    @property
    def missing(self) -> int:
        return max(0, self.high - self.low + 1 - self.count)


def advance_seq_window(window: SeqWindow | None, seqs: Iterable[int]) -> tuple[SeqWindow, int]:
    """The window after storing ``seqs`` (new readings, arrival order), and how many were jumps.

    A seq more than :data:`MAX_SEQ_JUMP` outside the window moves the window to end at it, keeping
    its length: what the device numbered before the jump counts as if it came right before it, so
    the missing count neither grows by the jump nor forgets the gaps it had. ``seq_min`` is then a
    bookkeeping value (it may be negative), not a seq that was seen. One wild seq and a return to
    normal cost nothing; whatever a device sends, one reading adds at most ``MAX_SEQ_JUMP`` missing.
    """
    jumps = 0
    for seq in seqs:
        if window is None:
            window = SeqWindow(seq, seq, 1)
        elif window.low - MAX_SEQ_JUMP <= seq <= window.high + MAX_SEQ_JUMP:
            window = SeqWindow(min(window.low, seq), max(window.high, seq), window.count + 1)
        else:
            jumps += 1
            window = SeqWindow(seq - (window.high - window.low + 1), seq, window.count + 1)
    if window is None:
        raise ValueError("advance_seq_window needs a window or at least one seq")
    return window, jumps


class BinRegistry:
    """Which bins exist, cached; misses are looked up in the database (negative cache: a few s)."""

    def __init__(self, negative_ttl_s: float = 5.0) -> None:
        self.registered: set[str] = set()
        self.present: set[str] = set()
        self.devices: set[str] = set()
        self._negative: dict[str, float] = {}
        self._negative_ttl_s = negative_ttl_s

    def unregistered(self, session: Session, bin_ids: Iterable[str]) -> set[str]:
        """The ids among ``bin_ids`` that are not registered (imported) bins."""
        now = time.monotonic()
        ask = [b for b in set(bin_ids) - self.registered if self._negative.get(b, 0.0) <= now]
        if ask:
            rows = session.execute(select(Bin.id).where(Bin.id.in_(ask), Bin.registered.is_(True)))
            found = {r[0] for r in rows}
            self.registered |= found
            for b in set(ask) - found:
                self._negative[b] = now + self._negative_ttl_s
        return set(bin_ids) - self.registered

    def ensure_present(self, session: Session, bin_ids: Iterable[str], now_ms: int) -> None:
        """Create bare bins (no position) for devices seen on MQTT that no import named yet."""
        new = set(bin_ids) - self.present
        if not new:
            return
        rows = [
            {"id": b, "registered": False, "created_at": now_ms, "updated_at": now_ms} for b in sorted(new)
        ]
        session.execute(dialect.insert(session, Bin).on_conflict_do_nothing(index_elements=["id"]), rows)
        self.present |= new


@dataclass
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    #: Seqs that jumped far outside their device's range (see :func:`advance_seq_window`), and what
    #: happened per device that had any (for the log).
    seq_jumps: int = 0
    jumped: dict[str, str] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    live_ts: list[int] = field(default_factory=list)


@dataclass
class _DeviceChange:
    """What one batch changes on one device row; the defaults mean "nothing new" for each field."""

    #: When the batch saw a sign of life from the device, epoch ms (0: none).
    last_seen: int = 0
    #: Readings this batch actually inserted (duplicates excluded): added to ``seq_count``.
    new_readings: int = 0
    #: The device's ``seq_min`` and ``seq_max`` after them (meaningful only when ``new_readings > 0``).
    seq_min: int = 0
    seq_max: int = 0
    #: Timestamp and quality of the batch's newest reading (-1: no reading).
    reading_ts: int = -1
    quality: str = ""
    #: Timestamp and value of the batch's newest reading with a fill (-1: none had one).
    fill_ts: int = -1
    fill: float = 0.0
    #: The model of the batch's live (not historical) readings ("": no live reading).
    model: str = ""
    #: The smoothing state (JSON) after the batch's readings, when it folded any in (forecast.smoothing).
    smooth_set: bool = False
    fill_smooth: float = 0.0
    smooth: str = "null"


@dataclass
class _Locked:
    """What the batch reads (on PostgreSQL: locks) of its devices first: seq bookkeeping and smoothing."""

    windows: dict[str, SeqWindow | None]
    smooth: dict[str, SmoothState | None]


def _ensure_devices(session: Session, registry: BinRegistry, bin_ids: set[str]) -> None:
    new = bin_ids - registry.devices
    if new:
        session.execute(
            dialect.insert(session, Device).on_conflict_do_nothing(index_elements=["bin_id"]),
            [{"bin_id": b, "seq_count": 0} for b in sorted(new)],
        )
        registry.devices |= new


_PG_LOCK_DEVICES = text(
    "SELECT bin_id, seq_min, seq_max, seq_count, smooth FROM devices WHERE bin_id = ANY(:bin_id)"
    " ORDER BY bin_id FOR UPDATE"
)
_PG_UPDATE_DEVICES = text(
    """
UPDATE devices AS d SET
  last_seen = CASE WHEN v.last_seen > 0 THEN GREATEST(COALESCE(d.last_seen, 0), v.last_seen)
                   ELSE d.last_seen END,
  seq_count = d.seq_count + v.new_readings,
  seq_min = CASE WHEN v.new_readings > 0 THEN v.seq_min ELSE d.seq_min END,
  seq_max = CASE WHEN v.new_readings > 0 THEN v.seq_max ELSE d.seq_max END,
  reading_ts = CASE WHEN v.reading_ts >= 0 AND v.reading_ts >= COALESCE(d.reading_ts, -1) THEN v.reading_ts
                    ELSE d.reading_ts END,
  quality = CASE WHEN v.reading_ts >= 0 AND v.reading_ts >= COALESCE(d.reading_ts, -1) THEN v.quality
                 ELSE d.quality END,
  fill_ts = CASE WHEN v.fill_ts >= 0 AND v.fill_ts >= COALESCE(d.fill_ts, -1) THEN v.fill_ts
                 ELSE d.fill_ts END,
  fill = CASE WHEN v.fill_ts >= 0 AND v.fill_ts >= COALESCE(d.fill_ts, -1) THEN v.fill ELSE d.fill END,
  model = CASE WHEN v.model <> '' THEN v.model ELSE d.model END,
  fill_smooth = CASE WHEN v.smooth_set THEN v.fill_smooth ELSE d.fill_smooth END,
  smooth = CASE WHEN v.smooth_set THEN CAST(v.smooth AS json) ELSE d.smooth END
FROM unnest(CAST(:bin_id AS varchar[]), CAST(:last_seen AS bigint[]), CAST(:new_readings AS bigint[]),
            CAST(:seq_min AS bigint[]), CAST(:seq_max AS bigint[]), CAST(:reading_ts AS bigint[]),
            CAST(:quality AS varchar[]), CAST(:fill_ts AS bigint[]), CAST(:fill AS float8[]),
            CAST(:model AS varchar[]), CAST(:smooth_set AS boolean[]), CAST(:fill_smooth AS float8[]),
            CAST(:smooth AS text[]))
     AS v(bin_id, last_seen, new_readings, seq_min, seq_max, reading_ts, quality, fill_ts, fill, model,
          smooth_set, fill_smooth, smooth)
WHERE d.bin_id = v.bin_id
"""
)
_PG_INSERT_READINGS = text(
    """
INSERT INTO readings (bin_id, seq, ts, received_at, fill, quality, model, historical, spread, infer_ms, label,
                      shadow_model, shadow_fill, fill_smooth, label_prob)
SELECT * FROM unnest(CAST(:bin_id AS varchar[]), CAST(:seq AS bigint[]), CAST(:ts AS bigint[]),
                     CAST(:received_at AS bigint[]), CAST(:fill AS float8[]), CAST(:quality AS varchar[]),
                     CAST(:model AS varchar[]), CAST(:historical AS boolean[]), CAST(:spread AS float8[]),
                     CAST(:infer_ms AS float8[]), CAST(:label AS varchar[]),
                     CAST(:shadow_model AS varchar[]), CAST(:shadow_fill AS float8[]),
                     CAST(:fill_smooth AS float8[]), CAST(:label_prob AS float8[]))
ON CONFLICT (bin_id, seq) DO NOTHING
RETURNING bin_id, seq
"""
)


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    return {k: [r[k] for r in rows] for k in rows[0]}


def _lock_devices(session: Session, bin_ids: list[str]) -> _Locked:
    """The devices' stored seq windows and smoothing states; on PostgreSQL the rows are locked (in id
    order, so that two servers writing overlapping devices cannot deadlock) until the batch commits,
    so the seq bookkeeping and the smoothing both see every earlier batch."""
    if dialect.is_postgresql(session):
        rows = session.execute(_PG_LOCK_DEVICES, {"bin_id": bin_ids}).all()
    else:
        # SQLite has one writer (the ingest writer): nothing else changes these rows meanwhile.
        t = Device.__table__
        assert isinstance(t, Table)
        query = select(t.c.bin_id, t.c.seq_min, t.c.seq_max, t.c.seq_count, t.c.smooth).where(
            t.c.bin_id.in_(bin_ids)
        )
        rows = session.execute(query).all()
    windows = {
        b: None if lo is None or hi is None else SeqWindow(lo, hi, count) for b, lo, hi, count, _ in rows
    }
    smooth = {b: SmoothState.from_json(sm) for b, _lo, _hi, _count, sm in rows}
    return _Locked(windows, smooth)


def _advance_seqs(
    windows: dict[str, SeqWindow | None],
    changes: dict[str, _DeviceChange],
    fresh: dict[str, list[int]],
    result: BatchResult,
) -> None:
    """Set each device's new ``seq_min``/``seq_max`` from the seqs this batch inserted for it."""
    for bin_id, seqs in fresh.items():
        old = windows.get(bin_id)
        new, jumps = advance_seq_window(old, seqs)
        c = changes[bin_id]
        c.new_readings, c.seq_min, c.seq_max = len(seqs), new.low, new.high
        if jumps:
            result.seq_jumps += jumps
            was = "nothing" if old is None else f"{old.low}..{old.high}"
            result.jumped[bin_id] = (
                f"{jumps} seq jump(s) of more than {MAX_SEQ_JUMP} ({was} stored, now at {new.high})"
            )


def _update_devices(
    session: Session,
    locked: _Locked,
    changes: dict[str, _DeviceChange],
    fresh: dict[str, list[int]],
    result: BatchResult,
) -> None:
    """One UPDATE per device per batch: every SET sees the old row, as SQL defines.

    The rows were read (on PostgreSQL: locked) first (:func:`_lock_devices`). PostgreSQL gets one
    statement over arrays (``unnest``); SQLite an executemany.
    """
    if not changes:
        return
    _advance_seqs(locked.windows, changes, fresh, result)
    rows = [{"bin_id": b, **dataclasses.asdict(c)} for b, c in sorted(changes.items())]
    if dialect.is_postgresql(session):
        session.execute(_PG_UPDATE_DEVICES, _columns(rows))
        return
    # The bind names differ from the column names: SQLAlchemy reserves those for the SET values.
    session.execute(_sqlite_update_devices(session), [{f"d_{k}": v for k, v in r.items()} for r in rows])


def _sqlite_update_devices(session: Session) -> Any:
    """The per-device UPDATE of :func:`_update_devices`, with ``d_<field>`` binds per device."""
    t = Device.__table__
    assert isinstance(t, Table)
    last_seen = bindparam("d_last_seen", type_=BigInteger)
    new_readings = bindparam("d_new_readings", type_=BigInteger)
    reading_ts = bindparam("d_reading_ts", type_=BigInteger)
    fill_ts = bindparam("d_fill_ts", type_=BigInteger)
    model = bindparam("d_model", type_=String)
    smooth_set = bindparam("d_smooth_set", type_=Boolean)
    newer_reading = (reading_ts >= 0) & (reading_ts >= func.coalesce(t.c.reading_ts, -1))
    newer_fill = (fill_ts >= 0) & (fill_ts >= func.coalesce(t.c.fill_ts, -1))
    any_new = new_readings > 0
    return (
        update(t)
        .where(t.c.bin_id == bindparam("d_bin_id", type_=String))
        .values(
            last_seen=case(
                (last_seen > 0, dialect.greatest(session, func.coalesce(t.c.last_seen, 0), last_seen)),
                else_=t.c.last_seen,
            ),
            seq_count=t.c.seq_count + new_readings,
            seq_min=case((any_new, bindparam("d_seq_min", type_=BigInteger)), else_=t.c.seq_min),
            seq_max=case((any_new, bindparam("d_seq_max", type_=BigInteger)), else_=t.c.seq_max),
            reading_ts=case((newer_reading, reading_ts), else_=t.c.reading_ts),
            quality=case((newer_reading, bindparam("d_quality", type_=String)), else_=t.c.quality),
            fill_ts=case((newer_fill, fill_ts), else_=t.c.fill_ts),
            fill=case((newer_fill, bindparam("d_fill", type_=Float)), else_=t.c.fill),
            model=case((model != "", model), else_=t.c.model),
            fill_smooth=case((smooth_set, bindparam("d_fill_smooth", type_=Float)), else_=t.c.fill_smooth),
            smooth=case((smooth_set, bindparam("d_smooth", type_=String)), else_=t.c.smooth),
        )
    )


def _smooth(
    readings: Iterable[Reading_],
    states: dict[str, SmoothState | None],
    changes: dict[str, _DeviceChange],
    params: SmoothParams,
) -> dict[tuple[str, int], float]:
    """Fold the usable readings into their bins' filters, in time order; each one's smoothed fill.

    A reading not newer than its bin's state (a backlog arriving after newer readings, or a copy of one
    already folded in) is left out: the filter only runs forward, O(1) per reading.
    """
    out: dict[tuple[str, int], float] = {}
    per_bin: dict[str, list[Reading_]] = {}
    for r in readings:
        if r.fill is not None:
            per_bin.setdefault(r.bin_id, []).append(r)
    for bin_id, rs in per_bin.items():
        state = states.get(bin_id)
        before = state
        for r in sorted(rs, key=lambda r: (r.ts, r.seq)):
            assert r.fill is not None
            st = step(state, r.ts, r.fill, params)
            if st is not None:
                state = st.state
                out[bin_id, r.seq] = st.shown
        if state is not None and state is not before:
            c = changes[bin_id]
            c.smooth_set, c.fill_smooth = True, state.shown
            c.smooth = json.dumps(state.to_json(), separators=(",", ":"))
    return out


def _write_readings(
    session: Session,
    msgs: Sequence[ReadingMsg],
    now_ms: int,
    result: BatchResult,
    changes: dict[str, _DeviceChange],
    *,
    smoothed: Callable[[Iterable[Reading_]], dict[tuple[str, int], float]],
) -> dict[str, list[int]]:
    """Insert the readings; returns the seqs actually inserted per device, in arrival order."""
    unique: dict[tuple[str, int], Reading_] = {}
    for m in msgs:
        unique.setdefault((m.reading.bin_id, m.reading.seq), m.reading)
    if not unique:
        return {}
    smooth = smoothed(unique.values())
    stmt = (
        dialect.insert(session, Reading)
        .on_conflict_do_nothing(index_elements=["bin_id", "seq"])
        .returning(Reading.bin_id, Reading.seq)
    )
    rows = [
        {
            "bin_id": r.bin_id,
            "seq": r.seq,
            "ts": r.ts,
            "received_at": now_ms,
            "fill": r.fill,
            "quality": r.quality,
            "model": r.model,
            "historical": r.historical,
            "spread": r.spread,
            "infer_ms": r.infer_ms,
            "label": r.label,
            "shadow_model": r.shadow_model,
            "shadow_fill": r.shadow_fill,
            "fill_smooth": smooth.get((r.bin_id, r.seq)),
            "label_prob": r.label_prob,
        }
        for r in unique.values()
    ]
    if dialect.is_postgresql(session):
        # One statement over arrays: far less per-row work than a multi-row VALUES (measured ~3x).
        inserted = session.execute(_PG_INSERT_READINGS, _columns(rows)).all()
    else:
        inserted = session.execute(stmt, rows).all()
    result.inserted += len(inserted)
    result.duplicates += len(msgs) - len(inserted)
    new = {(bin_id, seq) for bin_id, seq in inserted}
    fresh: dict[str, list[int]] = {}
    for r in unique.values():
        if (r.bin_id, r.seq) in new:
            fresh.setdefault(r.bin_id, []).append(r.seq)
        c = changes[r.bin_id]
        if r.ts >= c.reading_ts:
            c.reading_ts, c.quality = r.ts, r.quality
        if r.fill is not None and r.ts >= c.fill_ts:
            c.fill_ts, c.fill = r.ts, r.fill
        if not r.historical:
            c.model = r.model
            result.live_ts.append(r.ts)
    return fresh


def _write_stats(session: Session, msgs: Sequence[StatsMsg]) -> None:
    latest: dict[str, StatsMsg] = {}
    for m in msgs:
        cur = latest.get(m.stats.bin_id)
        if cur is None or m.stats.ts >= cur.stats.ts:
            latest[m.stats.bin_id] = m
    t = Device.__table__
    assert isinstance(t, Table)
    for m in latest.values():
        s = m.stats
        session.execute(
            update(t)
            .where(t.c.bin_id == s.bin_id, func.coalesce(t.c.stats_at, -1) <= s.ts)
            .values(
                stats_at=s.ts,
                uptime_s=s.uptime_s,
                outbox_depth=s.outbox_depth,
                dropped=s.dropped,
                model=s.model,
                interval_s=s.interval_s,
                last_infer_ms=s.last_infer_ms,
                last_error=s.last_error,
                camera_ok=s.camera_ok,
                rss_mb=s.rss_mb,
                captures=s.captures,
                unusable=s.unusable,
            )
        )


def _write_availability(session: Session, msgs: Sequence[Availability], now_ms: int) -> None:
    for m in msgs:
        state = "online" if m.online else "offline"
        dev = session.get(Device, m.bin_id)
        assert dev is not None  # _touch_devices created it
        if dev.available != state:
            session.add(
                DeviceEvent(bin_id=m.bin_id, ts=now_ms, received_at=now_ms, kind="availability", state=state)
            )
        dev.available = state
        dev.available_at = now_ms
    session.flush()


def _write_events(session: Session, msgs: Sequence[EventMsg], now_ms: int) -> None:
    """Log device events once: a resent copy meets the unique index and is dropped.

    A copy re-applies the same command status, which changes nothing (the outbox sends in order,
    so an older event cannot arrive after a newer one of the same device).
    """
    rows = [
        {
            "bin_id": m.event.bin_id,
            "ts": m.event.ts,
            "received_at": now_ms,
            "kind": m.event.kind,
            "state": m.event.state,
            "ref": m.event.ref,
            "detail": m.event.detail,
        }
        for m in msgs
    ]
    session.execute(dialect.insert(session, DeviceEvent).on_conflict_do_nothing(), rows)
    for m in msgs:
        e = m.event
        if e.kind == "command" and e.ref:
            session.execute(
                update(DeviceCommand)
                .where(DeviceCommand.id == e.ref, DeviceCommand.bin_id == e.bin_id)
                .values(status=e.state, detail=e.detail, updated_at=now_ms)
            )
    session.flush()


def _write_images(session: Session, msgs: Sequence[ImageMsg], now_ms: int) -> None:
    import hashlib

    rows = []
    for m in msgs:
        im = m.image
        rows.append(
            {
                "bin_id": im.bin_id,
                "seq": im.seq,
                "ts": im.ts,
                "received_at": now_ms,
                "reason": im.reason,
                "predicted_fill": im.fill,
                "model": im.model,
                "sha256": hashlib.sha256(m.jpeg).hexdigest(),
                "size": len(m.jpeg),
                "jpeg": m.jpeg,
            }
        )
    upsert = dialect.insert(session, Image).on_conflict_do_nothing(index_elements=["bin_id", "sha256"])
    session.execute(upsert, rows)


def _write_rejects(session: Session, rejects: Sequence[Reject], now_ms: int) -> None:
    per: dict[str, tuple[int, Reject]] = {}
    for r in rejects:
        n, _ = per.get(r.reason, (0, r))
        per[r.reason] = (n + 1, r)
    for reason, (n, last) in sorted(per.items()):
        stmt = dialect.insert(session, IngestReject).values(
            reason=reason,
            count=n,
            last_at=now_ms,
            last_topic=storable_text(last.topic, 300),
            last_detail=storable_text(last.detail, 500),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["reason"],
            set_={
                "count": IngestReject.count + n,
                "last_at": now_ms,
                "last_topic": stmt.excluded.last_topic,
                "last_detail": stmt.excluded.last_detail,
            },
        )
        session.execute(stmt)


def write_batch(
    session: Session,
    items: Sequence[Item],
    registry: BinRegistry,
    registration_required: bool,
    now_ms: int,
    *,
    smoothing: SmoothParams | None = None,
) -> BatchResult:
    """Store ``items`` (validated messages and rejects) in the caller's transaction.

    ``smoothing``: the fill filter's settings (default :class:`SmoothParams`; the server passes its
    ``[forecast] min_drop``).
    """
    params = smoothing or SmoothParams()
    result = BatchResult()
    rejects = [i for i in items if isinstance(i, Reject)]
    good = [i for i in items if not isinstance(i, Reject)]

    if registration_required:
        unknown = registry.unregistered(session, {bin_of(i) for i in good})
        if unknown:
            for i in good:
                b = bin_of(i)
                if b in unknown:
                    rejects.append(Reject("unknown_bin", f"bin {b!r} is not registered", f"(bin {b})"))
            good = [i for i in good if bin_of(i) not in unknown]
    else:
        registry.ensure_present(session, {bin_of(i) for i in good}, now_ms)

    changes: dict[str, _DeviceChange] = {}
    for i in good:
        c = changes.setdefault(bin_of(i), _DeviceChange())
        # An offline will, or a retained "online" replayed when we subscribe, is no sign of life.
        if not (isinstance(i, Availability) and (not i.online or i.retained)):
            c.last_seen = now_ms
    _ensure_devices(session, registry, set(changes))
    locked = _lock_devices(session, sorted(changes))
    fresh = _write_readings(
        session,
        [i for i in good if isinstance(i, ReadingMsg)],
        now_ms,
        result,
        changes,
        smoothed=lambda rs: _smooth(rs, locked.smooth, changes, params),
    )
    _update_devices(session, locked, changes, fresh, result)
    if stats := [i for i in good if isinstance(i, StatsMsg)]:
        _write_stats(session, stats)
    if avail := [i for i in good if isinstance(i, Availability)]:
        _write_availability(session, avail, now_ms)
    if events := [i for i in good if isinstance(i, EventMsg)]:
        _write_events(session, events, now_ms)
    if images := [i for i in good if isinstance(i, ImageMsg)]:
        _write_images(session, images, now_ms)
    if rejects:
        _write_rejects(session, rejects, now_ms)
    result.rejects = rejects
    return result
