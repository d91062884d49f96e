"""Response bodies, so that ``/openapi.json`` documents every field. Times are epoch ms UTC."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ForecastOut(BaseModel):
    full_ts: int | None
    low_ts: int | None
    high_ts: int | None
    rate_per_day: float
    level: float | None = None
    method: str | None = None


class BinOut(BaseModel):
    id: str
    name: str | None
    address: str | None = None
    lat: float | None
    lon: float | None
    capacity_l: float | None
    site: str | None
    fill: float | None = Field(description="the newest usable reading's fill, raw (as the camera said)")
    fill_ts: int | None
    fill_smooth: float | None = Field(
        None,
        description="the smoothed fill (only rises between collections; docs/server.md 'Smoothed fill'): "
        "what the map, alerts and the min_fill filter use; null before the bin's first smoothed reading",
    )
    quality: str | None
    forecast: ForecastOut | None
    online: bool
    offline_reason: str | None
    last_seen: int | None
    model: str | None
    outbox_depth: int | None
    last_error: str | None
    registered: bool
    seq_gaps: int
    #: The class of the latest usable reading (a model with a class head), its probability, and
    #: ``flag`` (``overflowing`` | ``contaminated``) when that class flags the bin.
    label: str | None = None
    label_prob: float | None = None
    flag: str | None = None


class ReadingOut(BaseModel):
    ts: int
    fill: float | None = Field(description="raw, as the camera said; null for an unusable frame")
    quality: str
    historical: bool
    fill_smooth: float | None = Field(
        None,
        description="the smoothed fill as it stood when this reading arrived; null: no fill, arrived "
        "after newer readings (not smoothed), or stored before smoothing existed",
    )
    label: str | None = None
    label_prob: float | None = None


class FillPoint(BaseModel):
    ts: int
    fill: float


class HistoryForecast(BaseModel):
    points: list[FillPoint]
    full_ts: int | None
    low_ts: int | None
    high_ts: int | None
    rate_per_day: float | None = None


class StopReportOut(BaseModel):
    """A driver's report on one stop: what was found at the bin, when, by whom, on which truck."""

    ts: int
    status: str
    note: str | None
    by: str
    truck: str
    plan_id: str


class HistoryOut(BaseModel):
    readings: list[ReadingOut]
    collections: list[int]
    forecast: HistoryForecast | None
    #: What "full" means: ``forecast.threshold``, the fill the forecast's ``full_ts`` and plans use.
    threshold: float
    #: The drivers' reports on this bin in the period, oldest first (done, blocked, overflowing).
    stop_reports: list[StopReportOut] = []


class DeviceOut(BaseModel):
    bin_id: str
    online: bool
    reason: str | None
    last_seen: int | None
    model: str | None
    outbox_depth: int | None
    dropped: int | None
    last_error: str | None
    uptime_s: float | None
    last_infer_ms: float | None
    seq_gaps: int
    interval_s: float | None
    camera_ok: bool | None
    readings: int


class EventOut(BaseModel):
    ts: int
    received_at: int
    kind: str
    state: str
    ref: str | None
    detail: str | None


class CommandIn(BaseModel):
    model_config = {"extra": "forbid"}
    action: str
    interval_s: float | None = None


class CommandAccepted(BaseModel):
    id: str


class PlanAccepted(BaseModel):
    id: str
    status: str


class PlanOut(BaseModel):
    id: str
    status: str
    error: str | None
    created_at: int
    finished_at: int | None
    created_by: str | None
    request: dict[str, Any]
    result: dict[str, Any] | None
    #: The day the plan is for (YYYY-MM-DD); null only for a plan without a problem.
    service_day: str | None = None
    #: Set while this plan is its day's published (locked) plan, the one drivers follow.
    published_at: int | None = None
    published_by: str | None = None
    #: Trucks of the plan's fleet that get no bin stop.
    idle_trucks: list[str] = []


class QueueItem(BaseModel):
    image_id: int
    bin_id: str
    ts: int
    reason: str
    predicted_fill: float | None
    model: str
    #: Already labelled by one other person: a second label measures agreement and bias.
    second_opinion: bool = False


class LabelIn(BaseModel):
    model_config = {"extra": "forbid"}
    fill: float | None = None
    label: str | None = None
    unusable: bool = False


class LabelClasses(BaseModel):
    classes: list[str]
    #: The active model's own classes ([] when it has no class head).
    model: list[str]
    flagged: list[str]


class LabelStats(BaseModel):
    per_bin: dict[str, int]
    per_site: dict[str, int]
    total: int


class ModelOut(BaseModel):
    version: str
    created_at: int
    metrics: dict[str, Any] | None = Field(
        description="held-out metrics the file's metadata claims: its own test set, not checked here"
    )
    report: dict[str, Any] | None
    active: bool
    precision: str | None
    sha256: str
    size: int
    dataset_fingerprint: str | None = None
    #: ``{n, dataset_fingerprint}`` of the test set ``metrics`` come from.
    test_set: dict[str, Any] | None = None
    #: Whether ``metrics`` are on the same data set as the active model's (None: no active model).
    comparable_with_active: bool | None = None
    #: The server's own run of this model and the then active one on the same stored labels, at promotion.
    server_check: dict[str, Any] | None = None
    #: A signed release of it was issued: only then is its file served without a token.
    released: bool = False
    warnings: list[str] = Field(default_factory=list)


class Me(BaseModel):
    name: str
    role: str
    #: A driver's truck: the manifest the page opens on sign-in.
    truck: str | None = None


class IngestOut(BaseModel):
    rejects: dict[str, int]
    seq_gaps: int
    readings: int
