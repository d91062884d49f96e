"""Write one batch of validated messages in one transaction, idempotently.

Readings are inserted with ``ON CONFLICT (bin_id, seq) DO NOTHING ... RETURNING``, so a message the
broker delivers twice (after a server restart, or to two servers) is stored once, and the per-device
seq bookkeeping counts only rows actually inserted: ``seq_max - seq_min + 1 - seq_count`` is the
number of readings that never arrived.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from binsight.server.db.models import (
    Bin,
    Device,
    DeviceCommand,
    DeviceEvent,
    Image,
    IngestReject,
    Reading,
)
from binsight.server.ingest.messages import (
    Availability,
    EventMsg,
    ImageMsg,
    Item,
    ReadingMsg,
    Reject,
    StatsMsg,
)

__all__ = ["BatchResult", "BinRegistry", "write_batch"]


def _insert(session: Session, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_nothing/update``."""
    name = session.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def _greatest(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.greatest(a, b)
    return func.max(a, b)


def _least(session: Session, a: Any, b: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.least(a, b)
    return func.min(a, b)


class BinRegistry:
    """Which bins exist, cached; misses are looked up in the database (negative cache: a few s)."""

    def __init__(self, negative_ttl_s: float = 5.0) -> None:
        self.registered: set[str] = set()
        self.present: set[str] = set()
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
        session.execute(_insert(session, Bin).on_conflict_do_nothing(index_elements=["id"]), rows)
        self.present |= new


@dataclass
class BatchResult:
    inserted: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    live_ts: list[int] = field(default_factory=list)


def _touch_devices(session: Session, last_seen: dict[str, int]) -> None:
    if not last_seen:
        return
    session.execute(
        _insert(session, Device).on_conflict_do_nothing(index_elements=["bin_id"]),
        [{"bin_id": b, "seq_count": 0} for b in sorted(last_seen)],
    )
    t = Device.__table__
    assert isinstance(t, Table)
    session.execute(
        update(t)
        .where(t.c.bin_id == bindparam("b_id"))
        .values(last_seen=_greatest(session, func.coalesce(t.c.last_seen, 0), bindparam("b_seen"))),
        [{"b_id": b, "b_seen": ts} for b, ts in sorted(last_seen.items())],
    )


def _write_readings(session: Session, msgs: Sequence[ReadingMsg], now_ms: int, result: BatchResult) -> None:
    unique: dict[tuple[str, int], dict[str, Any]] = {}
    for m in msgs:
        r = m.reading
        unique.setdefault(
            (r.bin_id, r.seq),
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
            },
        )
    if not unique:
        return
    stmt = (
        _insert(session, Reading)
        .on_conflict_do_nothing(index_elements=["bin_id", "seq"])
        .returning(Reading.bin_id, Reading.seq)
    )
    rows = list(unique.values())
    inserted = session.execute(stmt, rows).all()
    result.inserted += len(inserted)
    result.duplicates += len(msgs) - len(inserted)
    per_bin: dict[str, list[int]] = defaultdict(list)
    for bin_id, seq in inserted:
        per_bin[bin_id].append(seq)
    if not per_bin:
        return
    t = Device.__table__
    assert isinstance(t, Table)
    session.execute(
        update(t)
        .where(t.c.bin_id == bindparam("b_id"))
        .values(
            seq_count=t.c.seq_count + bindparam("b_n"),
            seq_min=_least(session, func.coalesce(t.c.seq_min, bindparam("b_min")), bindparam("b_min")),
            seq_max=_greatest(session, func.coalesce(t.c.seq_max, bindparam("b_max")), bindparam("b_max")),
        ),
        [{"b_id": b, "b_n": len(s), "b_min": min(s), "b_max": max(s)} for b, s in sorted(per_bin.items())],
    )
    newest: dict[str, dict[str, Any]] = {}
    newest_ok: dict[str, dict[str, Any]] = {}
    for row in rows:
        b = row["bin_id"]
        if b not in newest or row["ts"] >= newest[b]["ts"]:
            newest[b] = row
        if row["fill"] is not None and (b not in newest_ok or row["ts"] >= newest_ok[b]["ts"]):
            newest_ok[b] = row
    session.execute(
        update(t)
        .where(t.c.bin_id == bindparam("b_id"), func.coalesce(t.c.reading_ts, -1) <= bindparam("b_ts"))
        .values(reading_ts=bindparam("b_ts"), quality=bindparam("b_q")),
        [{"b_id": b, "b_ts": r["ts"], "b_q": r["quality"]} for b, r in sorted(newest.items())],
    )
    if newest_ok:
        session.execute(
            update(t)
            .where(t.c.bin_id == bindparam("b_id"), func.coalesce(t.c.fill_ts, -1) <= bindparam("b_ts"))
            .values(fill_ts=bindparam("b_ts"), fill=bindparam("b_fill")),
            [{"b_id": b, "b_ts": r["ts"], "b_fill": r["fill"]} for b, r in sorted(newest_ok.items())],
        )
    live_models: dict[str, str] = {}
    for row in rows:
        if not row["historical"]:
            live_models[row["bin_id"]] = row["model"]
            result.live_ts.append(row["ts"])
    if live_models:
        session.execute(
            update(t).where(t.c.bin_id == bindparam("b_id")).values(model=bindparam("b_model")),
            [{"b_id": b, "b_model": m} for b, m in sorted(live_models.items())],
        )


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
    for m in msgs:
        e = m.event
        session.add(
            DeviceEvent(
                bin_id=e.bin_id,
                ts=e.ts,
                received_at=now_ms,
                kind=e.kind,
                state=e.state,
                ref=e.ref,
                detail=e.detail,
            )
        )
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
    session.execute(_insert(session, Image).on_conflict_do_nothing(index_elements=["bin_id", "sha256"]), rows)


def _write_rejects(session: Session, rejects: Sequence[Reject], now_ms: int) -> None:
    per: dict[str, tuple[int, Reject]] = {}
    for r in rejects:
        n, _ = per.get(r.reason, (0, r))
        per[r.reason] = (n + 1, r)
    for reason, (n, last) in sorted(per.items()):
        stmt = _insert(session, IngestReject).values(
            reason=reason, count=n, last_at=now_ms, last_topic=last.topic[:300], last_detail=last.detail[:500]
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
    session: Session, items: Sequence[Item], registry: BinRegistry, registration_required: bool, now_ms: int
) -> BatchResult:
    """Store ``items`` (validated messages and rejects) in the caller's transaction."""
    result = BatchResult()
    rejects = [i for i in items if isinstance(i, Reject)]
    good = [i for i in items if not isinstance(i, Reject)]

    def bin_of(i: Item) -> str:
        if isinstance(i, ReadingMsg):
            return i.reading.bin_id
        if isinstance(i, StatsMsg):
            return i.stats.bin_id
        if isinstance(i, EventMsg):
            return i.event.bin_id
        if isinstance(i, ImageMsg):
            return i.image.bin_id
        assert isinstance(i, Availability)
        return i.bin_id

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

    last_seen: dict[str, int] = {}
    for i in good:
        if not (isinstance(i, Availability) and not i.online):
            last_seen[bin_of(i)] = now_ms
    _touch_devices(session, {**{bin_of(i): 0 for i in good}, **last_seen})
    _write_readings(session, [i for i in good if isinstance(i, ReadingMsg)], now_ms, result)
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
