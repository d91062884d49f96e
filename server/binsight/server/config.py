"""``server.toml``: one pydantic model per section, unknown keys rejected.

Relative paths (the SQLite file, the models folder) are resolved against the config file's folder,
so ``binsight server run --config /etc/binsight/server.toml`` does not depend on the working directory.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from binsight.config import Section, check_time_zone, load_toml
from binsight.protocol import DEFAULT_ROOT
from binsight.server.routing import Engine

__all__ = [
    "AlertsConfig",
    "DepotConfig",
    "DisposalSiteConfig",
    "FleetConfig",
    "ForecastConfig",
    "HealthConfig",
    "HomeAssistantConfig",
    "HttpConfig",
    "IngestConfig",
    "MqttConfig",
    "RetentionConfig",
    "RolloutConfig",
    "ServerConfig",
    "TruckConfig",
    "load_server_config",
]

HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context
    base = ctx.get("base_dir") if isinstance(ctx, dict) else None
    return base if isinstance(base, Path) else None


class MqttConfig(Section):
    """The broker the server subscribes to."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    root: str = DEFAULT_ROOT
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="3.1.1 for brokers without MQTT 5 (no shared subscriptions then)"
    )
    client_id: str = Field(
        default_factory=lambda: f"binsight-server-{socket.gethostname()}"[:64],
        min_length=1,
        max_length=64,
        description="stable per server process: the broker keeps this session's queue across restarts",
    )
    username: str | None = None
    password_file: Path | None = Field(default=None, description="or BINSIGHT_MQTT_PASSWORD(_FILE)")
    tls: bool = False
    ca_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="how long the broker keeps our queue while we are away"
    )


class HttpConfig(Section):
    """Where the API and web page listen."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class IngestConfig(Section):
    """How readings get from the broker into the database."""

    batch_size: int = Field(default=1000, ge=1, le=50_000, description="most messages per transaction")
    linger_ms: float = Field(
        default=5.0, ge=0.0, le=1000.0, description="wait this long for more messages before a commit"
    )
    registration_required: bool = Field(
        default=False, description="reject readings from bins not imported with `bins import`"
    )
    shared_group: str | None = Field(
        default="binsight",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description='MQTT 5 shared subscription group ("" for none); servers in one group split the load',
    )
    max_future_s: float = Field(default=86_400.0, gt=0, description="reject capture times this far ahead")
    queue_size: int = Field(default=20_000, ge=100, description="messages held between network and writer")


class HealthConfig(Section):
    """When a device counts as offline."""

    default_interval_s: float = Field(default=600.0, gt=0, description="until a device reports its own")
    silent_factor: float = Field(default=3.0, ge=1.0, description="offline after this many intervals")


class ForecastConfig(Section):
    """Fill forecasts."""

    threshold: float = Field(default=0.8, gt=0.0, le=1.0, description="'full' means this fill")
    min_drop: float = Field(default=0.3, gt=0.0, le=1.0, description="a drop this sharp is a collection")
    confidence: float = Field(default=0.9, gt=0.5, lt=1.0, description="of the time-to-full band")
    history_days: float = Field(default=56.0, gt=0, description="history used for weekday patterns")
    timezone: str = Field(default="UTC", description="weekdays and service days are in this zone")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_time_zone(value)


class DepotConfig(Section):
    id: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DisposalSiteConfig(Section):
    id: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    service_min: float = Field(default=20.0, ge=0)


class BreakConfig(Section):
    after_min: float = Field(ge=0)
    duration_min: float = Field(gt=0)


class TruckConfig(Section):
    id: str = Field(min_length=1, max_length=64)
    depot: str
    capacity_l: float = Field(gt=0)
    shift: tuple[HHMM, HHMM] = ("06:00", "14:00")
    break_: BreakConfig | None = Field(default=None, alias="break")
    max_duration_min: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _shift_order(self) -> TruckConfig:
        if self.shift[1] <= self.shift[0]:
            raise ValueError(f"truck {self.id}: shift end {self.shift[1]} is not after start {self.shift[0]}")
        return self


class DistanceConfig(Section):
    method: Literal["haversine", "osrm", "matrix"] = "haversine"
    detour: float = Field(default=1.3, ge=1.0)
    speed_kmh: float = Field(default=30.0, gt=0)
    url: str | None = None
    file: str | None = None


class FleetConfig(Section):
    """What route plans are built from: depots, trucks, disposal sites and service days."""

    depots: list[DepotConfig] = Field(default_factory=list)
    trucks: list[TruckConfig] = Field(default_factory=list)
    disposal_sites: list[DisposalSiteConfig] = Field(default_factory=list)
    distance: DistanceConfig = Field(default_factory=DistanceConfig)
    service_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    plan_time_limit_s: float = Field(default=10.0, gt=0, le=3600)
    optional_min_fill: float = Field(
        default=0.3, ge=0.0, le=1.0, description="bins below this predicted fill are left out of plans"
    )
    default_service_min: float = Field(default=2.0, ge=0)
    engine: Engine = Field(
        default="auto",
        description="route engine: auto, pyvrp, ortools, or portfolio (PyVRP and OR-Tools at once, the "
        "better plan kept; two processes, so best with two free cores); a plan request may override it",
    )
    optional_lookahead_days: int = Field(
        default=1,
        ge=0,
        le=14,
        description="optional bins are those due within this many service days after the next one "
        "(lifted early, they save a visit of their own); 0: any bin above optional_min_fill",
    )
    skip_quiet_days: bool = Field(
        default=True,
        description="drive a service day only if some bin would overflow before the next one starts; "
        "a driven day then takes the bins full before the service day after next",
    )
    optional_near_km: float | None = Field(
        default=1.0,
        ge=0,
        description="optional bins only within this distance of a mandatory bin (where a truck goes "
        "anyway); unset in code or a large value: anywhere",
    )
    quiet_overflow_h: float = Field(
        default=12.0,
        ge=0,
        le=48,
        description="with skip_quiet_days: a day stays quiet unless some bin is forecast to overflow "
        "more than this many hours before the next service day starts (a bin that would spill only "
        "overnight waits for the next morning's truck); 0: no bin may spill before then",
    )
    consolidate_days: int = Field(
        default=2,
        ge=1,
        le=6,
        description="with skip_quiet_days: a day that is driven takes the bins full before this many "
        "service days later start, so the days between can be quiet (1: only what cannot wait)",
    )

    @model_validator(mode="after")
    def _references(self) -> FleetConfig:
        depot_ids = {d.id for d in self.depots}
        for truck in self.trucks:
            if truck.depot not in depot_ids:
                raise ValueError(f"truck {truck.id}: depot {truck.depot!r} is not in fleet.depots")
        for kind, items in (
            ("depot", self.depots),
            ("truck", self.trucks),
            ("disposal site", self.disposal_sites),
        ):
            ids = [i.id for i in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"duplicate {kind} id")
        if not self.service_days:
            raise ValueError("service_days must name at least one weekday")
        return self


class ModelsConfig(Section):
    """Where model files (served at ``/models/<version>.onnx``) live."""

    dir: Path = Field(default=Path("models"), validate_default=True)

    @field_validator("dir")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        base = _base_dir(info)
        return (base / value).resolve() if base is not None and not value.is_absolute() else value


class RolloutConfig(Section):
    """``[rollout]``: signing, the canary stage, its automatic halt, drift and coverage sampling."""

    signing_key: Path | None = Field(
        default=None, description="Ed25519 PEM key (`binsight model keygen`); or secret model_signing_key"
    )
    canary_bins: list[str] = Field(default_factory=list, description="bins that get a new model first")
    canary_fraction: float = Field(
        default=0.1, ge=0.0, le=1.0, description="without canary_bins: this share of bins (at least one)"
    )
    min_canary_readings: int = Field(default=3, ge=1, description="readings per canary on the new model")
    canary_soak_s: float = Field(default=600.0, ge=0.0, description="least time in the canary stage")
    canary_deadline_s: float = Field(
        default=1800.0, gt=0.0, description="halt when a canary has not switched to the new model by then"
    )
    max_jump: float = Field(
        default=0.2, gt=0.0, le=1.0, description="halt when a canary's fill jumps more than expected + this"
    )
    min_spread: float = Field(
        default=0.05, ge=0.0, le=1.0, description="judge a spread collapse only when old readings spread this"
    )
    min_spread_ratio: float = Field(
        default=0.25, ge=0.0, le=1.0, description="halt when the canaries' spread falls below this share"
    )
    min_heldout_labels: int = Field(
        default=30, ge=1, description="fewer held-out labels than this: the gate refuses to decide"
    )
    max_mae_increase: float = Field(
        default=0.0, ge=0.0, description="a candidate whose held-out MAE is higher by more than this is worse"
    )
    check_interval_s: float = Field(default=30.0, gt=0.0, description="how often the rollout is checked")
    drift_recent_s: float = Field(default=86_400.0, gt=0.0, description="recent window of drift checks")
    drift_baseline_s: float = Field(default=7 * 86_400.0, gt=0.0, description="baseline before it")
    drift_min_readings: int = Field(default=12, ge=2, description="readings each window needs")
    drift_unusable_increase: float = Field(default=0.3, gt=0.0, le=1.0)
    drift_ks: float = Field(default=0.6, gt=0.0, le=1.0, description="KS of fills, recent vs baseline")
    coverage_interval_s: float = Field(default=0.0, ge=0.0, description="ask for coverage images (0: never)")
    coverage_per_round: int = Field(default=5, ge=1)
    coverage_target: int = Field(default=20, ge=1, description="labels wanted per bin")

    @field_validator("signing_key")
    @classmethod
    def _resolve_key(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = _base_dir(info)
        if value is None or value.is_absolute() or base is None:
            return value
        return (base / value).resolve()


class RetentionConfig(Section):
    """``[retention]``: how long unlabelled images are kept. Labelled images are never pruned."""

    enabled: bool = Field(default=True, description="prune periodically inside `server run`")
    unlabelled_days: float = Field(
        default=30.0, gt=0.0, description="unlabelled images received longer ago than this are deleted"
    )
    max_unlabelled_per_bin: int = Field(
        default=100, ge=1, description="beyond this many unlabelled images of a bin, the oldest go"
    )
    interval_s: float = Field(default=3600.0, ge=10.0, description="how often the server prunes")
    batch_size: int = Field(default=200, ge=1, le=10_000, description="images deleted per transaction")
    batch_pause_s: float = Field(
        default=0.05, ge=0.0, le=10.0, description="pause between batches, so ingest commits in between"
    )


AlertEvent = Literal["threshold", "overflow", "emptied", "offline", "online", "overflowing", "contaminated"]
_DEFAULT_EVENTS: tuple[AlertEvent, ...] = ("threshold", "overflow", "offline")


class AlertsConfig(Section):
    """``[alerts]``: a webhook POST and an MQTT message when a bin's state changes (docs/server.md)."""

    enabled: bool = Field(default=False, description="watch bins and send alerts inside `server run`")
    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="POSTed JSON")
    secret_file: Path | None = Field(
        default=None, description="HMAC-SHA256 key; or BINSIGHT_ALERT_SECRET(_FILE), credential alert_secret"
    )
    mqtt: bool = Field(default=True, description="also publish each alert on <root>/<bin_id>/alert")
    events: list[AlertEvent] = Field(default_factory=lambda: list(_DEFAULT_EVENTS))
    threshold: float | None = Field(default=None, gt=0.0, le=1.0, description="default: [forecast] threshold")
    overflow_fill: float = Field(default=0.98, gt=0.0, le=1.0, description="fill at or above: overflowing")
    check_interval_s: float = Field(default=15.0, ge=1.0, le=3600.0, description="how often bins are checked")
    queue_size: int = Field(
        default=1000, ge=10, le=100_000, description="webhook deliveries waiting, at most"
    )
    max_attempts: int = Field(default=8, ge=1, le=50, description="webhook tries per alert (backoff doubles)")
    timeout_s: float = Field(default=5.0, gt=0.0, le=60.0, description="per webhook request")

    @field_validator("secret_file")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = _base_dir(info)
        if value is None or value.is_absolute() or base is None:
            return value
        return (base / value).resolve()


class HomeAssistantConfig(Section):
    """``[homeassistant]``: MQTT discovery of each bin's fill and camera state (off by default)."""

    enabled: bool = False
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    node_id: str = Field(
        default="binsight", pattern=r"^[A-Za-z0-9_-]+$", description="<prefix>/sensor/<node_id>/..."
    )


_SQLITE_REL = re.compile(r"^sqlite(\+\w+)?:///(?!/)(.+)$")


class ServerConfig(Section):
    """The whole ``server.toml``."""

    database: str = "sqlite:///binsight.db"
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    # Validated even when absent, so the default folder is resolved next to the config file too.
    models: ModelsConfig = Field(default_factory=dict, validate_default=True)
    rollout: RolloutConfig = Field(default_factory=dict, validate_default=True)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    alerts: AlertsConfig = Field(default_factory=dict, validate_default=True)
    homeassistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str, info: ValidationInfo) -> str:
        if value.startswith("postgresql://"):
            # psycopg 3 is the driver we ship; SQLAlchemy's bare postgresql:// means psycopg2.
            return "postgresql+psycopg://" + value[len("postgresql://") :]
        if not value.startswith(("sqlite:", "postgresql+")):
            raise ValueError(f"database must be a sqlite:/// or postgresql:// URL, not {value!r}")
        m = _SQLITE_REL.match(value)
        base = _base_dir(info)
        if m and base is not None and m.group(2) != ":memory:":
            return f"sqlite{m.group(1) or ''}:///{(base / m.group(2)).resolve()}"
        return value


def load_server_config(path: str | Path) -> ServerConfig:
    """Load and validate ``server.toml``; raises :class:`binsight.errors.ConfigError` naming the key."""
    return load_toml(path, ServerConfig)


def config_from_dict(data: dict[str, Any], base_dir: Path | None = None) -> ServerConfig:
    """Validate a dict as a ``server.toml`` (tests and the demo build configs this way)."""
    return ServerConfig.model_validate(data, context={"base_dir": base_dir} if base_dir else None)
