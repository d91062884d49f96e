"""The tables. Times are epoch milliseconds UTC (``*_at``/``ts``), as on the wire.

Migrations in ``migrations/versions`` create exactly these tables; ``tests/server/db`` checks
that the migrated schema and this metadata agree.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

__all__ = [
    "ApiToken",
    "Base",
    "Bin",
    "Device",
    "DeviceCommand",
    "DeviceEvent",
    "Image",
    "IngestReject",
    "Label",
    "ModelAnnouncement",
    "ModelRecord",
    "Plan",
    "Reading",
    "Rollout",
    "StopUpdate",
]

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer, "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Bin(Base):
    """A container: where it is and what it holds. Position is null for bins only seen on MQTT."""

    __tablename__ = "bins"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    #: Street address for drivers ("Oudegracht 112, Utrecht"); free text from the bins import.
    address: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    capacity_l: Mapped[float | None] = mapped_column(Float)
    site: Mapped[str | None] = mapped_column(String(100), index=True)
    service_min: Mapped[float | None] = mapped_column(Float)
    window_start: Mapped[str | None] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Device(Base):
    """The camera agent on one bin: availability, last contact and its latest stats."""

    __tablename__ = "devices"
    bin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    available: Mapped[str | None] = mapped_column(String(16))
    available_at: Mapped[int | None] = mapped_column(BigInteger)
    last_seen: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str | None] = mapped_column(String(128))
    interval_s: Mapped[float | None] = mapped_column(Float)
    outbox_depth: Mapped[int | None] = mapped_column(Integer)
    dropped: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))
    uptime_s: Mapped[float | None] = mapped_column(Float)
    last_infer_ms: Mapped[float | None] = mapped_column(Float)
    camera_ok: Mapped[bool | None] = mapped_column(Boolean)
    rss_mb: Mapped[float | None] = mapped_column(Float)
    captures: Mapped[int | None] = mapped_column(BigInteger)
    unusable: Mapped[int | None] = mapped_column(BigInteger)
    stats_at: Mapped[int | None] = mapped_column(BigInteger)
    # The newest reading (any quality) and the newest usable fill, kept here so listing bins
    # never scans the readings table.
    reading_ts: Mapped[int | None] = mapped_column(BigInteger)
    quality: Mapped[str | None] = mapped_column(String(32))
    fill: Mapped[float | None] = mapped_column(Float)
    fill_ts: Mapped[int | None] = mapped_column(BigInteger)
    #: The smoothed fill after the newest smoothed reading (migration 0006c; only rises between
    #: collections) and the filter's state (binsight.server.forecast.smoothing.SmoothState).
    fill_smooth: Mapped[float | None] = mapped_column(Float)
    smooth: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Seq bookkeeping over stored readings: missing = seq_max - seq_min + 1 - seq_count.
    seq_min: Mapped[int | None] = mapped_column(BigInteger)
    seq_max: Mapped[int | None] = mapped_column(BigInteger)
    seq_count: Mapped[int] = mapped_column(BigInteger, default=0)

    @property
    def shown_fill(self) -> float | None:
        """The fill the map, alerts, metrics and plans without a forecast use: the smoothed one, or the
        newest raw one for a bin whose filter has not started (no reading since migration 0006c)."""
        return self.fill_smooth if self.fill_smooth is not None else self.fill


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("bin_id", "seq"),
        Index("ix_readings_bin_id_ts", "bin_id", "ts"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bin_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)
    fill: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    spread: Mapped[float | None] = mapped_column(Float)
    #: Shadow soak (migration 0005a): the previous model's fill on the same frames, after a switch.
    shadow_model: Mapped[str | None] = mapped_column(String(128))
    shadow_fill: Mapped[float | None] = mapped_column(Float)
    infer_ms: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(64))
    #: The smoothed fill when this reading arrived (migration 0006c); null: no fill, older than the
    #: bin's newest smoothed reading when it arrived, or stored before 0006c. ``fill`` stays the raw one.
    fill_smooth: Mapped[float | None] = mapped_column(Float)
    #: The class head's probability of ``label`` (migration 0006e).
    label_prob: Mapped[float | None] = mapped_column(Float)


class Image(Base):
    """A JPEG a device sent for labelling."""

    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("bin_id", "sha256"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bin_id: Mapped[str] = mapped_column(String(64), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    predicted_fill: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    jpeg: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class Label(Base):
    """A person's label for an image (or a skip). The latest non-skip label of an image counts."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    fill: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(64))
    unusable: Mapped[bool] = mapped_column(Boolean, default=False)
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    who: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(BigInteger)


class Plan(Base):
    """A route plan: what was asked, the problem handed to routing, and its result."""

    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(100))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    problem: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The day the plan is for (``YYYY-MM-DD``, its problem's ``name``); NULL on plans made before 0005b.
    service_day: Mapped[str | None] = mapped_column(String(10), index=True)
    #: Set when a dispatcher publishes (locks) the plan: drivers see only their day's published plan.
    published_at: Mapped[int | None] = mapped_column(BigInteger)
    published_by: Mapped[str | None] = mapped_column(String(100))


class StopUpdate(Base):
    """What a driver reported at a stop of a published plan: done, blocked or overflowing."""

    __tablename__ = "stop_updates"
    __table_args__ = (Index("ix_stop_updates_bin_id_ts", "bin_id", "ts"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(String(32), index=True)
    truck: Mapped[str] = mapped_column(String(64))
    bin_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    ts: Mapped[int] = mapped_column(BigInteger)
    by: Mapped[str] = mapped_column(String(100))


class ModelRecord(Base):
    """A model file the server knows; promotion to devices sets ``active``."""

    __tablename__ = "models"
    version: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    precision: Mapped[str | None] = mapped_column(String(8))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    activated_at: Mapped[int | None] = mapped_column(BigInteger)
    #: The file's binsight.dataset_fingerprint: metrics are comparable only on the same data set.
    dataset_fingerprint: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    """A bearer token; only its sha256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    #: The truck whose manifest a ``driver`` token opens (NULL for other roles).
    truck: Mapped[str | None] = mapped_column(String(64))


class DeviceEvent(Base):
    """What a device reported doing (commands, model updates) and its availability changes.

    A device's outbox resends an event whose acknowledgement it missed, so device events are unique
    on (bin_id, ts, kind, state, ref) and a copy is not stored twice. Rows without a ``ref`` (the
    server's availability log, a device's "malformed command" report) are never merged: NULLs are
    distinct in a unique index on both databases.
    """

    __tablename__ = "device_events"
    __table_args__ = (
        Index("ix_device_events_bin_id_ts", "bin_id", "ts"),
        Index("uq_device_events_event", "bin_id", "ts", "kind", "state", "ref", unique=True),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bin_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(String(500))


class DeviceCommand(Base):
    """A command sent to a device; its ``event`` updates the status."""

    __tablename__ = "device_commands"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bin_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    interval_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class IngestReject(Base):
    """Rejected messages, counted by reason across restarts and server processes."""

    __tablename__ = "ingest_rejects"
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_at: Mapped[int] = mapped_column(BigInteger)
    last_topic: Mapped[str | None] = mapped_column(String(300))
    last_detail: Mapped[str | None] = mapped_column(String(500))


class Rollout(Base):
    """One promotion or rollback of a model: who, why, the gate's comparison and how far it got.

    ``state``: ``canary`` (announced to the canary bins only), ``all`` (announced to every bin),
    ``halted`` (a canary failed; canaries were sent back to ``previous``), ``superseded`` (a later
    rollout replaced it), ``rolled_back``.
    """

    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(128), index=True)
    previous: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    canary_bins: Mapped[list[Any]] = mapped_column(JSON)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    halt_reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    #: When it reached every bin (None: never, or before migration 0005a): rollback targets only these.
    all_at: Mapped[int | None] = mapped_column(BigInteger)


class ReleaseRecord(Base):
    """One signed model release; ``number`` is its release number (docs/contracts.md, "Model releases").

    Numbers only grow (``AUTOINCREMENT`` on SQLite, a sequence on PostgreSQL) and survive restarts:
    a device refuses any release not numbered above the highest it accepted, so a rollback is a
    new row (a higher number) for the older file. ``rollout_id`` is the promotion, halt or
    rollback that issued it.
    """

    __tablename__ = "model_releases"
    __table_args__ = ({"sqlite_autoincrement": True},)
    number: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(128), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    rollout_id: Mapped[int | None] = mapped_column(BigInteger, index=True)


class ModelAnnouncement(Base):
    """The release last announced (retained) to each bin, so the server knows what every camera was told."""

    __tablename__ = "model_announcements"
    bin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(128))
    rollout_id: Mapped[int | None] = mapped_column(BigInteger)
    announced_at: Mapped[int] = mapped_column(BigInteger)
    release_number: Mapped[int | None] = mapped_column(BigInteger)  # None: before 0004, or cleared


class AlertState(Base):
    """The last alerted state of one bin's ``kind`` (``level``: ok/full/overflow; ``camera``:
    online/offline; ``class``: overflowing/contaminated/clear). Alerts fire on a change of this row, so one
    per change (binsight.server.alerts)."""

    __tablename__ = "alert_states"
    bin_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[int] = mapped_column(BigInteger)
