"""Turn one MQTT message into a typed item or a reject with its reason.

Pure functions, no I/O: ``parse`` never raises, whatever the bytes, so a bad payload can only ever
become a counted reject and never stop the ingest loop.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from binsight.protocol import MAX_IMAGE_BYTES, MAX_PAYLOAD_BYTES, Event, LabelImage, Reading, Stats, Topics

__all__ = [
    "REJECT_REASONS",
    "Availability",
    "EventMsg",
    "ImageMsg",
    "Item",
    "ReadingMsg",
    "Reject",
    "StatsMsg",
    "parse",
]

#: Every reason a message can be rejected for; each has its own counter.
REJECT_REASONS = (
    "bad_topic",  # not <root>/<bin_id>/<kind>, or a kind the server does not take
    "oversized",  # larger than MAX_PAYLOAD_BYTES (images: the JPEG cap in base64)
    "invalid_utf8",
    "invalid_json",
    "invalid_fields",  # missing, unknown or mistyped fields
    "fill_out_of_range",  # fill outside 0..1
    "quality_mismatch",  # fill given with a bad quality, or missing with quality ok
    "topic_mismatch",  # bin_id in the payload is not the topic's
    "ts_in_future",  # capture time too far ahead of the server clock
    "unknown_bin",  # registration required and the bin was never imported
    "bad_image",  # not base64 or not a JPEG
)

RejectReason = Literal[
    "bad_topic",
    "oversized",
    "invalid_utf8",
    "invalid_json",
    "invalid_fields",
    "fill_out_of_range",
    "quality_mismatch",
    "topic_mismatch",
    "ts_in_future",
    "unknown_bin",
    "bad_image",
]

_MODELS: dict[str, type[Reading] | type[Stats] | type[Event] | type[LabelImage]] = {
    "reading": Reading,
    "stats": Stats,
    "event": Event,
    "image": LabelImage,
}
_MAX_IMAGE_PAYLOAD = (MAX_IMAGE_BYTES * 4) // 3 + 4096


@dataclass(frozen=True, slots=True)
class Reject:
    reason: RejectReason
    detail: str
    topic: str


@dataclass(frozen=True, slots=True)
class ReadingMsg:
    reading: Reading


@dataclass(frozen=True, slots=True)
class StatsMsg:
    stats: Stats


@dataclass(frozen=True, slots=True)
class Availability:
    bin_id: str
    online: bool
    #: Delivered from the broker's retained store (on subscribe): says nothing about "now".
    retained: bool = False


@dataclass(frozen=True, slots=True)
class EventMsg:
    event: Event


@dataclass(frozen=True, slots=True)
class ImageMsg:
    image: LabelImage
    jpeg: bytes


Item = ReadingMsg | StatsMsg | Availability | EventMsg | ImageMsg | Reject


def _decode(topic: str, payload: bytes, limit: int) -> str | Reject:
    if len(payload) > limit:
        return Reject("oversized", f"{len(payload)} bytes > {limit}", topic)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject("invalid_utf8", str(exc), topic)


def _validation_reject(exc: ValidationError, topic: str) -> Reject:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return Reject("invalid_json", errors[0]["msg"], topic)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3])
    if all(e["loc"] == ("fill",) and e["type"] in ("greater_than_equal", "less_than_equal") for e in errors):
        return Reject("fill_out_of_range", detail, topic)
    return Reject("invalid_fields", detail, topic)


def parse(
    topics: Topics, topic: str, payload: bytes, now_ms: int, max_future_ms: int, *, retained: bool = False
) -> Item:
    """Validate one message. Returns the typed item, or a :class:`Reject` naming the reason."""
    parsed = topics.parse(topic)
    if parsed is None or parsed[1] in ("cmd", "model"):
        return Reject("bad_topic", "not a device-to-server topic", topic)
    bin_id, kind = parsed
    if kind == "available":
        text = _decode(topic, payload, 64)
        if isinstance(text, Reject):
            return text
        if text not in ("online", "offline"):
            return Reject(
                "invalid_fields", f"availability must be online or offline, not {text[:20]!r}", topic
            )
        return Availability(bin_id, text == "online", retained)
    text = _decode(topic, payload, _MAX_IMAGE_PAYLOAD if kind == "image" else MAX_PAYLOAD_BYTES)
    if isinstance(text, Reject):
        return text
    model = _MODELS[kind]
    try:
        # strict: "0.5" is not a fill and 1 is not a bool; typos must show up as rejects.
        msg = model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        return _validation_reject(exc, topic)
    if msg.bin_id != bin_id:
        return Reject("topic_mismatch", f"payload bin_id {msg.bin_id!r} on topic of {bin_id!r}", topic)
    if msg.ts > now_ms + max_future_ms:
        return Reject("ts_in_future", f"ts {msg.ts} is {(msg.ts - now_ms) / 1000:.0f} s ahead", topic)
    if isinstance(msg, Reading):
        if (msg.quality == "ok") != (msg.fill is not None):
            return Reject("quality_mismatch", f"quality {msg.quality!r} with fill {msg.fill!r}", topic)
        return ReadingMsg(msg)
    if isinstance(msg, Stats):
        return StatsMsg(msg)
    if isinstance(msg, Event):
        return EventMsg(msg)
    assert isinstance(msg, LabelImage)
    try:
        jpeg = base64.b64decode(msg.jpeg_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        return Reject("bad_image", f"not base64: {exc}", topic)
    if len(jpeg) > MAX_IMAGE_BYTES or not jpeg.startswith(b"\xff\xd8"):
        return Reject("bad_image", "not a JPEG of at most MAX_IMAGE_BYTES", topic)
    return ImageMsg(msg, jpeg)
