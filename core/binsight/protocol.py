"""The MQTT wire protocol between camera agents and the server.

Every topic lives under a configurable root (default ``binsight``) and names one bin::

    <root>/<bin_id>/reading    device -> server  QoS 1       Reading (JSON)
    <root>/<bin_id>/available  device -> server  retained    "online" | "offline" (last will)
    <root>/<bin_id>/stats      device -> server  QoS 0       Stats (JSON)
    <root>/<bin_id>/image      device -> server  QoS 1       LabelImage (JSON, JPEG in base64)
    <root>/<bin_id>/event      device -> server  QoS 1       Event (JSON: command results, model update steps)
    <root>/<bin_id>/cmd        server -> device  QoS 1       Command (JSON)
    <root>/<bin_id>/model      server -> device  retained    ModelRelease (JSON), empty payload clears

A device only ever writes under its own ``<root>/<bin_id>/`` and reads only its ``cmd`` and ``model``
topics, which is what the broker ACL in ``deploy/mosquitto`` enforces with ``%u``.

Model releases are signed with Ed25519 over :func:`release_manifest` (version, sha256, size, release
number, issue time), so a device checks the signature first and the downloaded file's hash second:
a release cannot be replayed with another file, relabelled with another version or renumbered, and
a device refuses any release number not above the highest it accepted (docs/contracts.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

__all__ = [
    "BIN_ID_PATTERN",
    "DEFAULT_ROOT",
    "MAX_IMAGE_BYTES",
    "MAX_INTERVAL_S",
    "MAX_PAYLOAD_BYTES",
    "MIN_INTERVAL_S",
    "QUALITY_REASONS",
    "BinId",
    "Command",
    "Event",
    "LabelImage",
    "ModelRelease",
    "Reading",
    "Stats",
    "Topics",
    "release_manifest",
]

DEFAULT_ROOT = "binsight"
#: Bin ids travel in topic names and file names: keep them to a safe alphabet.
BIN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: The server rejects larger reading/stats/event payloads unread.
MAX_PAYLOAD_BYTES = 16 * 1024
#: A labelling image (JPEG, before base64) is capped at this size by the device.
MAX_IMAGE_BYTES = 512 * 1024

#: ``set_interval`` takes 10 s .. 1 day: faster floods the broker and the database (and wears the
#: camera) for no better forecast; slower than daily misses a bin that fills in a day.
MIN_INTERVAL_S = 10.0
MAX_INTERVAL_S = 86_400.0

BinId = Annotated[str, StringConstraints(pattern=BIN_ID_PATTERN)]

#: ``quality`` is ``ok`` or one of these reasons; ``fill`` is null whenever it is not ``ok``.
QUALITY_REASONS = ("dark", "overexposed", "blurred", "blocked", "camera_error", "inference_error")
Quality = Literal["ok", "dark", "overexposed", "blurred", "blocked", "camera_error", "inference_error"]

_SEGMENT = re.compile(BIN_ID_PATTERN)


class _Message(BaseModel):
    # Unknown fields are rejected: a typo on either side must show up in the server's reject counts.
    # Every number is finite: the JSON parser (pydantic's, like Python's json) reads the tokens
    # NaN, Infinity and -Infinity, and 1e999 as infinity; none of them is a reading, a duration or a size.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Reading(_Message):
    """One fill-level reading: the unit of data a camera produces."""

    bin_id: BinId
    seq: int = Field(ge=0, description="monotonic per device, survives restarts")
    ts: int = Field(ge=0, description="capture time, epoch milliseconds UTC")
    fill: float | None = Field(ge=0.0, le=1.0, description="0..1 of the container's depth; null if unusable")
    quality: Quality
    model: str = Field(min_length=1, max_length=128, description="version of the model that made it")
    historical: bool = Field(default=False, description="true when replayed from the outbox")
    spread: float | None = Field(default=None, ge=0.0, le=1.0, description="spread of the burst's fills")
    infer_ms: float | None = Field(default=None, ge=0.0)
    label: str | None = Field(
        default=None,
        max_length=64,
        description="predicted class (a class model, or a fill model's class head)",
    )
    label_prob: float | None = Field(
        default=None, ge=0.0, le=1.0, description="the model's probability of label"
    )
    shadow_model: str | None = Field(
        default=None, max_length=128, description="shadow soak: the previous model, run on the same frames"
    )
    shadow_fill: float | None = Field(default=None, ge=0.0, le=1.0, description="its fill on those frames")

    @model_serializer(mode="wrap")
    def _without_empty_shadow(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Absent unless set: a server from before the shadow soak (or label_prob) forbids unknown
        # fields, so an ordinary reading must stay exactly what it was.
        data: dict[str, Any] = handler(self)
        for key in ("shadow_model", "shadow_fill", "label_prob"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class Stats(_Message):
    """Periodic health of one agent."""

    bin_id: BinId
    ts: int = Field(ge=0)
    uptime_s: float = Field(ge=0.0)
    outbox_depth: int = Field(ge=0)
    dropped: int = Field(ge=0, description="readings dropped from a full outbox since install")
    model: str
    interval_s: float = Field(gt=0.0)
    last_infer_ms: float | None = Field(default=None, ge=0.0)
    last_error: str | None = Field(default=None, max_length=500)
    camera_ok: bool = True
    rss_mb: float | None = Field(default=None, ge=0.0)
    captures: int = Field(default=0, ge=0)
    unusable: int = Field(default=0, ge=0, description="captures whose quality was not ok")


class LabelImage(_Message):
    """A JPEG sent for human labelling, tied to the reading it produced."""

    bin_id: BinId
    seq: int = Field(ge=0)
    ts: int = Field(ge=0)
    reason: Literal["periodic", "unsure", "command", "coverage"]
    fill: float | None = Field(default=None, ge=0.0, le=1.0)
    model: str
    jpeg_b64: str = Field(max_length=(MAX_IMAGE_BYTES * 4) // 3 + 4)


class Command(_Message):
    """A command to one device. ``id`` is echoed in the device's :class:`Event`."""

    id: str = Field(min_length=1, max_length=64)
    action: Literal["capture", "send_image", "set_interval", "send_stats"]
    interval_s: float | None = Field(
        default=None,
        ge=MIN_INTERVAL_S,
        le=MAX_INTERVAL_S,
        description=f"for set_interval: seconds between captures, {MIN_INTERVAL_S:g} .. {MAX_INTERVAL_S:g}",
    )
    reason: Literal["command", "coverage"] = "command"


class Event(_Message):
    """Something a device did that the server should record: a command result or a model update step."""

    bin_id: BinId
    ts: int = Field(ge=0)
    kind: Literal["command", "model"]
    #: ``failed``: refused for good (or a command failed); ``retrying``: a model release refused for
    #: a cause that can pass (no key yet, download error), tried again with backoff.
    state: Literal["ok", "failed", "retrying", "downloading", "verified", "active", "rolled_back"]
    ref: str | None = Field(default=None, max_length=128, description="command id or model version")
    detail: str | None = Field(default=None, max_length=500)


#: Release numbers and their issue times fit a signed 64-bit column (the server's and the device's).
MAX_RELEASE_NUMBER = 2**63 - 1


class ModelRelease(_Message):
    """A signed model announcement, retained on ``<root>/<bin_id>/model``.

    A numbered release (manifest v2) carries ``release_number``, strictly increasing for every
    release the server (or an operator) signs, and ``issued_at``; a device installs only releases
    newer than the highest it accepted, which stops a replayed or downgraded announcement. A
    release without them is a v1 release, accepted only by a device that never accepted a v2 one.
    """

    version: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    signature: str = Field(max_length=256, description="base64 Ed25519 signature of release_manifest(...)")
    key_id: str | None = Field(default=None, max_length=64)
    release_number: int | None = Field(
        default=None, ge=1, le=MAX_RELEASE_NUMBER, description="strictly increasing; null on a v1 release"
    )
    issued_at: int | None = Field(default=None, ge=0, le=MAX_RELEASE_NUMBER, description="epoch ms, signed")

    @model_validator(mode="after")
    def _numbered_together(self) -> ModelRelease:
        if (self.release_number is None) != (self.issued_at is None):
            raise ValueError("release_number and issued_at come together (a v2 release) or not at all (v1)")
        return self

    def manifest(self) -> bytes:
        """The bytes :attr:`signature` covers: :func:`release_manifest` of this release's fields."""
        return release_manifest(
            self.version, self.sha256, self.size, release_number=self.release_number, issued_at=self.issued_at
        )


def release_manifest(
    version: str, sha256: str, size: int, *, release_number: int | None = None, issued_at: int | None = None
) -> bytes:
    """The exact bytes a model release signature covers.

    v2 (``release_number`` and ``issued_at`` given) adds both, so a signature cannot be moved onto
    another number; v1 (neither) is what releases signed before release numbers carried.
    """
    if release_number is None and issued_at is None:
        return f"binsight-model-release:v1\n{version}\n{sha256}\n{size}\n".encode()
    if release_number is None or issued_at is None:
        raise ValueError("a v2 release manifest needs both release_number and issued_at")
    return f"binsight-model-release:v2\n{version}\n{sha256}\n{size}\n{release_number}\n{issued_at}\n".encode()


class Topics:
    """Topic names under one root. ``Topics("binsight").reading("bin-1") == "binsight/bin-1/reading"``."""

    KINDS = ("reading", "available", "stats", "image", "event", "cmd", "model")

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        if not root or root.startswith("/") or root.endswith("/") or any(c in root for c in "#+\0"):
            raise ValueError(f"invalid MQTT topic root {root!r}")
        self.root = root

    def _t(self, bin_id: str, kind: str) -> str:
        if not _SEGMENT.match(bin_id):
            raise ValueError(f"invalid bin id {bin_id!r}: must match {BIN_ID_PATTERN}")
        return f"{self.root}/{bin_id}/{kind}"

    def reading(self, bin_id: str) -> str:
        return self._t(bin_id, "reading")

    def available(self, bin_id: str) -> str:
        return self._t(bin_id, "available")

    def stats(self, bin_id: str) -> str:
        return self._t(bin_id, "stats")

    def image(self, bin_id: str) -> str:
        return self._t(bin_id, "image")

    def event(self, bin_id: str) -> str:
        return self._t(bin_id, "event")

    def cmd(self, bin_id: str) -> str:
        return self._t(bin_id, "cmd")

    def model(self, bin_id: str) -> str:
        return self._t(bin_id, "model")

    def wildcard(self, kind: str) -> str:
        """Subscription filter for one kind across all bins: ``binsight/+/reading``."""
        if kind not in self.KINDS:
            raise ValueError(f"unknown topic kind {kind!r}")
        return f"{self.root}/+/{kind}"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(bin_id, kind)`` for a topic under this root, or None when it is not one of ours."""
        prefix = self.root + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) != 2 or parts[1] not in self.KINDS or not _SEGMENT.match(parts[0]):
            return None
        return parts[0], parts[1]
