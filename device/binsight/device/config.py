"""``device.toml``: one typed section per subsystem, unknown keys rejected.

Relative paths (model, outbox, TLS files, image folders) are resolved against the config file's
folder, so an agent behaves the same whatever its working directory.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from binsight.config import Section, check_time_zone
from binsight.protocol import DEFAULT_ROOT, MAX_IMAGE_BYTES, BinId

__all__ = [
    "CameraConfig",
    "DeviceConfig",
    "InferenceConfig",
    "LabellingConfig",
    "MqttConfig",
    "OutboxConfig",
    "QualityConfig",
    "StatsConfig",
    "UpdatesConfig",
    "WatchdogConfig",
]

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None or value.is_absolute():
        return value
    base = (info.context or {}).get("base_dir")
    return (Path(base) / value) if base is not None else value.resolve()


class CameraConfig(Section):
    """Where frames come from and when."""

    source: str = Field(
        default="0",
        min_length=1,
        validate_default=True,
        description="camera index, stream URL, video file or image folder",
    )
    interval_s: float = Field(default=600.0, gt=0.0, description="seconds between captures")
    jitter: float = Field(
        default=0.1, ge=0.0, lt=1.0, description="each wait is interval_s * (1 +- jitter), uniform"
    )
    burst: int = Field(default=3, ge=1, le=15, description="frames per capture")
    burst_gap_s: float = Field(default=0.3, ge=0.0, le=10.0, description="seconds between burst frames")
    burst_mode: Literal["median", "sharpest"] = "median"
    discard_frames: int = Field(
        default=5, ge=0, le=100, description="frames dropped after opening a live camera (auto-exposure)"
    )
    keep_open: bool = Field(default=False, description="keep a live camera open between captures")
    width: int | None = Field(default=None, gt=0, description="requested capture width (live cameras)")
    height: int | None = Field(default=None, gt=0)
    loop: bool = Field(default=True, description="image folders and video files restart at the end")
    timestamps: Literal["clock", "mtime", "filename", "exif"] = Field(
        default="clock",
        description="a reading's time: the clock at capture, or (image folders, back-testing) each "
        "image's file mtime, a time in its name, or its EXIF DateTimeOriginal",
    )
    timestamps_tz: str = Field(
        default="UTC", description="time zone of file-name and EXIF times without an offset (IANA name)"
    )
    retry_min_s: float = Field(default=2.0, gt=0.0, description="first retry delay when opening fails")
    retry_max_s: float = Field(default=300.0, gt=0.0)

    @field_validator("source", mode="after")
    @classmethod
    def _resolve_source(cls, v: str, info: ValidationInfo) -> str:
        if v.isdigit() or _URL.match(v):
            return v
        resolved = _resolve(Path(v), info)
        return str(resolved)

    @field_validator("timestamps_tz", mode="after")
    @classmethod
    def _zone_ok(cls, v: str) -> str:
        return check_time_zone(v)

    @property
    def tz(self) -> tzinfo:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timestamps_tz)

    @model_validator(mode="after")
    def _retry_order(self) -> CameraConfig:
        if self.retry_max_s < self.retry_min_s:
            raise ValueError("retry_max_s must be >= retry_min_s")
        if self.timestamps != "clock" and (self.source.isdigit() or _URL.match(self.source)):
            raise ValueError(f"timestamps = {self.timestamps!r} needs an image folder source (use 'clock')")
        return self


class QualityConfig(Section):
    """Thresholds of the quality gate, on a grey image scaled to 320 px wide (0..255)."""

    dark_mean: float = Field(default=10.0, ge=0.0, le=255.0, description="mean below this: dark")
    overexposed_fraction: float = Field(
        default=0.6, gt=0.0, le=1.0, description="share of pixels >= 250 above this: overexposed"
    )
    blocked_std: float = Field(
        default=4.0, ge=0.0, description="standard deviation below this: blocked (uniform view)"
    )
    blur_var: float = Field(default=4.0, ge=0.0, description="variance of the Laplacian below this...")
    blur_ratio: float = Field(
        default=0.02, ge=0.0, description="...and below this times the grey variance: blurred"
    )
    min_usable: int | None = Field(
        default=None, ge=1, description="usable burst frames needed (default: a majority)"
    )


class InferenceConfig(Section):
    threads: int = Field(
        default=1, ge=1, le=64, description="ONNX Runtime intra-op threads (1: measured faster on busy boxes)"
    )
    max_consecutive_errors: int = Field(
        default=3, ge=1, description="inference errors in a row after an update before rolling back"
    )
    release_startup_pages: bool = Field(
        default=True,
        description="after loading the model, unmap library pages only start-up touched (device run)",
    )


class MqttConfig(Section):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["5", "3.1.1"] = "5"
    root: str = Field(default=DEFAULT_ROOT, min_length=1)
    client_id: str | None = Field(default=None, max_length=64, description="default: the bin id")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    username: str | None = None
    password_file: Path | None = Field(
        default=None, description="file holding the password (or env BINSIGHT_MQTT_PASSWORD)"
    )
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = Field(default=None, description="client key (or credential mqtt_tls_key)")
    backoff_min_s: float = Field(default=1.0, gt=0.0)
    backoff_max_s: float = Field(default=120.0, gt=0.0)
    inflight: int = Field(default=100, ge=1, le=1000, description="unacknowledged QoS 1 messages at most")
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        le=0xFFFFFFFF,
        description="how long the broker keeps this device's session (queued commands) while it is "
        "offline (MQTT 5; 3.1.1: until the broker's persistent_client_expiration); 0: clean session",
    )

    resolve_paths = field_validator("password_file", "ca_file", "cert_file", "key_file", mode="after")(
        _resolve
    )

    @field_validator("root", mode="after")
    @classmethod
    def _root_ok(cls, v: str) -> str:
        if v.startswith("/") or v.endswith("/") or any(c in v for c in "#+\0"):
            raise ValueError(f"invalid MQTT topic root {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must be >= backoff_min_s")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file/cert_file given but tls = false")
        return self


class OutboxConfig(Section):
    path: Path = Field(default=Path("outbox.db"), validate_default=True)
    max_readings: int = Field(default=50_000, ge=10, description="oldest readings dropped beyond this")
    max_images: int = Field(default=20, ge=0, description="labelling images kept while offline")
    max_events: int = Field(default=1_000, ge=10)

    resolve_path = field_validator("path", mode="after")(_resolve)


class StatsConfig(Section):
    interval_s: float = Field(default=60.0, gt=0.0, description="seconds between stats messages")


class LabellingConfig(Section):
    """When the agent sends a JPEG for human labelling."""

    every_n: int = Field(default=144, ge=0, description="every Nth capture (0: never)")
    unsure: bool = Field(default=True, description="also when the model is unsure")
    unsure_spread: float = Field(
        default=0.15, gt=0.0, le=1.0, description="burst fills spread at least this much: unsure"
    )
    unsure_prob: float = Field(
        default=0.6, gt=0.0, le=1.0, description="top class probability below this: unsure"
    )
    max_bytes: int = Field(default=200_000, ge=10_000, le=MAX_IMAGE_BYTES)
    max_side: int = Field(default=640, ge=64, le=4096, description="longest side of the JPEG in pixels")


class UpdatesConfig(Section):
    """Signed model releases; without a public key every release is refused."""

    enabled: bool = True
    public_key: str | None = Field(default=None, description="ed25519:<base64>, as in KEY.pub")
    public_key_file: Path | None = None
    base_url: str | None = Field(default=None, description="server URL for relative release URLs")
    max_bytes: int = Field(default=300 * 1024 * 1024, gt=0)
    timeout_s: float = Field(default=60.0, gt=0.0)
    shadow_captures: int = Field(
        default=30, ge=0, description="after a switch, run the previous model on this many captures too"
    )

    resolve_path = field_validator("public_key_file", mode="after")(_resolve)

    @model_validator(mode="after")
    def _one_key(self) -> UpdatesConfig:
        if self.public_key is not None and self.public_key_file is not None:
            raise ValueError("give public_key or public_key_file, not both")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return self


class WatchdogConfig(Section):
    """systemd integration; the interval comes from WatchdogSec= when run under systemd."""

    enabled: bool = True


class DeviceConfig(Section):
    """The whole ``device.toml``."""

    bin_id: BinId
    model: Path = Field(
        default=Path("model.onnx"), validate_default=True, description="replaced by model updates"
    )
    camera: CameraConfig = CameraConfig()
    quality: QualityConfig = QualityConfig()
    inference: InferenceConfig = InferenceConfig()
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    stats: StatsConfig = StatsConfig()
    labelling: LabellingConfig = LabellingConfig()
    updates: UpdatesConfig = UpdatesConfig()
    watchdog: WatchdogConfig = WatchdogConfig()

    resolve_model = field_validator("model", mode="after")(_resolve)

    @model_validator(mode="after")
    def _min_usable(self) -> DeviceConfig:
        if self.quality.min_usable is not None and self.quality.min_usable > self.camera.burst:
            raise ValueError(
                f"quality.min_usable ({self.quality.min_usable}) > camera.burst ({self.camera.burst})"
            )
        return self

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (what ``--check`` prints)."""
        return self.model_dump(mode="json")
