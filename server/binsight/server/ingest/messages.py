"""Turn one MQTT message into a typed item or a reject with its reason.

Pure functions, no I/O: ``parse`` never raises, whatever the bytes, so a bad payload can only ever
become a counted reject and never stop the ingest loop.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ValidationError

from binsight.protocol import MAX_IMAGE_BYTES, MAX_PAYLOAD_BYTES, Event, LabelImage, Reading, Stats, Topics

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_SEQ",
    "REJECT_REASONS",
    "Availability",
    "EventMsg",
    "ImageMsg",
    "Item",
    "Message",
    "ReadingMsg",
    "Reject",
    "RejectReason",
    "StatsMsg",
    "bin_of",
    "parse",
    "storable_text",
]

RejectReason = Literal[
    "bad_topic",  # not <root>/<bin_id>/<kind>, or a kind the server does not take
    "oversized",  # larger than MAX_PAYLOAD_BYTES (images: the JPEG cap in base64)
    "invalid_utf8",
    "invalid_json",
    "invalid_fields",  # missing, unknown or mistyped fields
    "fill_out_of_range",  # fill outside 0..1
    "number_out_of_range",  # an integer the database cannot hold, a seq above MAX_SEQ, Infinity or NaN
    "text_too_long",  # a string longer than its column
    "bad_text",  # a string with NUL or an unpaired surrogate (PostgreSQL text refuses both)
    "quality_mismatch",  # fill given with a bad quality, or missing with quality ok
    "topic_mismatch",  # bin_id in the payload is not the topic's
    "ts_in_future",  # capture time too far ahead of the server clock
    "unknown_bin",  # registration required and the bin was never imported
    "bad_image",  # not base64 or not a JPEG
    "db_refused",  # parsed, but the database refused it (the writer's backstop: see writer.py)
]

#: Every reason a message can be rejected for; each has its own counter.
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)

#: The largest ``seq`` (readings, images) the server takes: 2**53 - 1, the largest integer every JSON
#: reader holds exactly (JavaScript's ``Number.MAX_SAFE_INTEGER``: the web page's). A device numbering
#: a reading every millisecond reaches it in 285,000 years; beyond it is a broken or hostile device.
MAX_SEQ = 2**53 - 1
#: Integers are stored as signed 64-bit (``BIGINT``) unless :data:`_INT_MAX` names a tighter column.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Per field name, bounds tighter than the protocol's, from the columns the fields land in
#: (``devices.outbox_depth`` is a 32-bit INTEGER; ``model`` is VARCHAR(128) in every table).
_INT_MAX = {"seq": MAX_SEQ, "outbox_depth": 2**31 - 1}
_TEXT_MAX = {"model": 128, "shadow_model": 128}
#: What no PostgreSQL ``text`` holds: NUL, and surrogates (not encodable as UTF-8).
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")

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


#: A message that passed validation: what the writer stores.
Message = ReadingMsg | StatsMsg | Availability | EventMsg | ImageMsg
Item = Message | Reject


def bin_of(message: Message) -> str:
    """The bin (device) a validated message is about."""
    if isinstance(message, ReadingMsg):
        return message.reading.bin_id
    if isinstance(message, StatsMsg):
        return message.stats.bin_id
    if isinstance(message, EventMsg):
        return message.event.bin_id
    if isinstance(message, ImageMsg):
        return message.image.bin_id
    return message.bin_id


def _decode(topic: str, payload: bytes, limit: int) -> str | Reject:
    if len(payload) > limit:
        return Reject("oversized", f"{len(payload)} bytes > {limit}", topic)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Reject("invalid_utf8", str(exc), topic)


def _non_finite(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _validation_reject(exc: ValidationError, topic: str) -> Reject:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return Reject("invalid_json", errors[0]["msg"], topic)
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:3])
    # The same reasons as the bounds below, whichever of the protocol or this module finds the problem
    # (NaN fails every range check of the protocol; Infinity those with an upper bound).
    if all(e["type"] == "finite_number" or _non_finite(e.get("input")) for e in errors):
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:3])
        return Reject("number_out_of_range", f"{where}: not a finite number", topic)
    if all(e["loc"] == ("fill",) and e["type"] in ("greater_than_equal", "less_than_equal") for e in errors):
        return Reject("fill_out_of_range", detail, topic)
    if all(e["type"] == "string_too_long" for e in errors):
        return Reject("text_too_long", detail, topic)
    return Reject("invalid_fields", detail, topic)


def storable_text(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with what no database text holds (NUL, surrogates) made
    U+FFFD: for what the server writes about a message (a reject's topic and detail), never for data."""
    return _BAD_CHAR.sub("\ufffd", text[:limit])


def _int_text(value: int) -> str:
    # str() of a huge int is slow and, past 4300 digits, an error: say how big it is instead.
    return str(value) if value.bit_length() <= 128 else f"a {value.bit_length()}-bit integer"


def _field_problem(name: str, value: object) -> tuple[RejectReason, str] | None:
    """Why ``value`` cannot be stored in field ``name``'s column, or None when it can."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        top = _INT_MAX.get(name, INT64_MAX)
        if value > top:
            return "number_out_of_range", f"{name}: {_int_text(value)} is more than {top}"
        if value < INT64_MIN:
            return "number_out_of_range", f"{name}: {_int_text(value)} is less than {INT64_MIN}"
    elif isinstance(value, float):
        if not math.isfinite(value):
            return "number_out_of_range", f"{name}: {value} is not a finite number"
    elif isinstance(value, str):
        limit = _TEXT_MAX.get(name)
        if limit is not None and len(value) > limit:
            return "text_too_long", f"{name}: {len(value)} characters > {limit}"
        if bad := _BAD_CHAR.search(value):
            return "bad_text", f"{name}: character U+{ord(bad.group()):04X} at position {bad.start()}"
    return None


def _unstorable(msg: BaseModel, topic: str) -> Reject | None:
    """The first field of ``msg`` that no database column of ours could hold, as a reject.

    The protocol models check meaning (a fill is 0..1); these are the limits of storage, which a
    payload that passes the models can still exceed: a seq of 2**63 overflows BIGINT, a NUL is
    refused by PostgreSQL text, Infinity is no measurement. Caught here, such a message is one
    counted reject instead of a transaction that fails for the whole batch.
    """
    for name, value in msg:
        if problem := _field_problem(name, value):
            return Reject(problem[0], problem[1], topic)
    return None


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
    if unstorable := _unstorable(msg, topic):
        return unstorable
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
