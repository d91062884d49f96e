"""Every bad payload becomes a reject with its reason; good ones become typed items."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import BigInteger, Column, Integer, String

from binsight.protocol import MAX_PAYLOAD_BYTES, Event, LabelImage, Reading, Stats, Topics
from binsight.server.db.models import Base, Device, DeviceEvent, Image
from binsight.server.db.models import Reading as ReadingRow
from binsight.server.ingest.messages import (
    MAX_SEQ,
    REJECT_REASONS,
    Availability,
    ImageMsg,
    ReadingMsg,
    Reject,
    StatsMsg,
    parse,
)

T = Topics("binsight")
NOW = 1_790_000_000_000
GOOD = {"bin_id": "bin-1", "seq": 7, "ts": NOW - 1000, "fill": 0.5, "quality": "ok", "model": "m1"}
STATS = {
    "bin_id": "bin-1",
    "ts": NOW,
    "uptime_s": 5,
    "outbox_depth": 0,
    "dropped": 0,
    "model": "m",
    "interval_s": 600,
}
EVENT = {"bin_id": "bin-1", "ts": NOW, "kind": "command", "state": "ok", "ref": "c1", "detail": "done"}
JPEG_B64 = base64.b64encode(b"\xff\xd8\xff\xe0" + b"0" * 100).decode()
IMAGE = {"bin_id": "bin-1", "seq": 1, "ts": NOW, "reason": "unsure", "model": "m", "jpeg_b64": JPEG_B64}


def _p(topic: str, payload: bytes | str | dict[str, object]) -> object:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return parse(T, topic, payload, NOW, 86_400_000)


BAD = [
    ("binsight/bin-1/reading", b"\xff\xfe{}", "invalid_utf8"),
    ("binsight/bin-1/reading", "{not json", "invalid_json"),
    ("binsight/bin-1/reading", "", "invalid_json"),
    ("binsight/bin-1/reading", "[1, 2]", "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "fill": 1.2}, "fill_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "fill": -0.01}, "fill_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "fill": "0.5"}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "seq": "7"}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "seq": -1}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "historical": "yes"}, "invalid_fields"),
    ("binsight/bin-1/reading", {k: v for k, v in GOOD.items() if k != "ts"}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "colour": "blue"}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "quality": "foggy"}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "label": "overflowing", "label_prob": 1.5}, "invalid_fields"),
    ("binsight/bin-1/reading", {**GOOD, "label": "overflowing", "label_prob": "0.5"}, "invalid_fields"),
    ("binsight/bin-1/reading", json.dumps(GOOD)[:-1] + ', "label_prob": NaN}', "number_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "fill": None}, "quality_mismatch"),
    ("binsight/bin-1/reading", {**GOOD, "quality": "dark"}, "quality_mismatch"),
    ("binsight/bin-2/reading", GOOD, "topic_mismatch"),
    ("binsight/bin-1/reading", {**GOOD, "ts": NOW + 2 * 86_400_000}, "ts_in_future"),
    ("binsight/bin-1/reading", json.dumps(GOOD) + " " * MAX_PAYLOAD_BYTES, "oversized"),
    ("binsight/bin-1/reading/extra", GOOD, "bad_topic"),
    ("binsight/bin 1/reading", GOOD, "bad_topic"),
    ("other/bin-1/reading", GOOD, "bad_topic"),
    ("binsight/bin-1/cmd", GOOD, "bad_topic"),
    ("binsight/bin-1/available", "maybe", "invalid_fields"),
    ("binsight/bin-1/stats", {"bin_id": "bin-1", "ts": NOW}, "invalid_fields"),
    # Bounded to what both databases hold (issue #15): each of these once stopped ingest for good.
    ("binsight/bin-1/reading", {**GOOD, "seq": 2**63}, "number_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "seq": 2**63 - 1}, "number_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "seq": MAX_SEQ + 1}, "number_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "ts": 2**64}, "number_out_of_range"),
    (
        "binsight/bin-1/reading",
        json.dumps({**GOOD, "seq": 12345}).replace("12345", "9" * 4000),
        "number_out_of_range",
    ),
    ("binsight/bin-1/reading", {**GOOD, "model": "m\x00"}, "bad_text"),
    ("binsight/bin-1/reading", {**GOOD, "label": "\x00"}, "bad_text"),
    ("binsight/bin-1/reading", {**GOOD, "model": "m" * 10_000}, "text_too_long"),
    ("binsight/bin-1/reading", json.dumps(GOOD)[:-1] + ', "infer_ms": Infinity}', "number_out_of_range"),
    ("binsight/bin-1/reading", json.dumps(GOOD)[:-1] + ', "spread": -Infinity}', "number_out_of_range"),
    ("binsight/bin-1/reading", json.dumps(GOOD).replace("0.5", "NaN"), "number_out_of_range"),
    ("binsight/bin-1/reading", json.dumps(GOOD)[:-1] + ', "infer_ms": 1e999}', "number_out_of_range"),
    ("binsight/bin-1/reading", {**GOOD, "\x00": 1}, "invalid_fields"),
    ("binsight/bin-1/stats", {**STATS, "outbox_depth": 2**31}, "number_out_of_range"),
    ("binsight/bin-1/stats", {**STATS, "dropped": 2**63}, "number_out_of_range"),
    ("binsight/bin-1/stats", {**STATS, "captures": 2**70}, "number_out_of_range"),
    ("binsight/bin-1/stats", json.dumps(STATS).replace("600", "Infinity"), "number_out_of_range"),
    ("binsight/bin-1/stats", {**STATS, "model": "m" * 10_000}, "text_too_long"),
    ("binsight/bin-1/stats", {**STATS, "last_error": "boom\x00"}, "bad_text"),
    ("binsight/bin-1/event", {**EVENT, "detail": "x" * 10_000}, "text_too_long"),
    ("binsight/bin-1/event", {**EVENT, "ref": "\x00"}, "bad_text"),
    ("binsight/bin-1/image", {**IMAGE, "seq": 2**63}, "number_out_of_range"),
    ("binsight/bin-1/image", {**IMAGE, "model": "m" * 129}, "text_too_long"),
    ("binsight/bin-1/image", {**IMAGE, "model": "\x00"}, "bad_text"),
    (
        "binsight/bin-1/image",
        {"bin_id": "bin-1", "seq": 1, "ts": NOW, "reason": "unsure", "model": "m", "jpeg_b64": "!!notb64"},
        "bad_image",
    ),
    (
        "binsight/bin-1/image",
        {
            "bin_id": "bin-1",
            "seq": 1,
            "ts": NOW,
            "reason": "unsure",
            "model": "m",
            "jpeg_b64": base64.b64encode(b"GIF89a").decode(),
        },
        "bad_image",
    ),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_payload_rejected_with_reason(topic: str, payload: object, reason: str) -> None:
    """Each bad message is a Reject naming its reason, and the reason is one that is counted."""
    item = _p(topic, payload)  # type: ignore[arg-type]
    assert isinstance(item, Reject), item
    assert item.reason == reason, item
    assert item.reason in REJECT_REASONS
    assert item.topic == topic


def test_good_messages_parse() -> None:
    """Readings, unusable readings, stats, availability and images are accepted."""
    r = _p("binsight/bin-1/reading", GOOD)
    assert isinstance(r, ReadingMsg) and r.reading.seq == 7
    dark = _p("binsight/bin-1/reading", {**GOOD, "fill": None, "quality": "dark", "historical": True})
    assert isinstance(dark, ReadingMsg) and dark.reading.fill is None
    cls = _p("binsight/bin-1/reading", {**GOOD, "label": "contaminated", "label_prob": 0.8})
    assert isinstance(cls, ReadingMsg) and (cls.reading.label, cls.reading.label_prob) == (
        "contaminated",
        0.8,
    )
    assert isinstance(_p("binsight/bin-1/stats", STATS), StatsMsg)
    a = _p("binsight/bin-1/available", "offline")
    assert a == Availability("bin-1", online=False)
    im = _p("binsight/bin-1/image", IMAGE)
    assert isinstance(im, ImageMsg) and im.jpeg == base64.b64decode(JPEG_B64)


def _too_big(column: Column[object]) -> object:
    """The smallest value of the column's kind that the column cannot hold (None: unbounded)."""
    if isinstance(column.type, String) and column.type.length:
        return "x" * (column.type.length + 1)
    if isinstance(column.type, BigInteger):
        return 2**63
    if isinstance(column.type, Integer):
        return 2**31
    return None


@pytest.mark.parametrize(
    ("kind", "good", "table", "renamed"),
    [
        ("reading", GOOD, ReadingRow, {}),
        ("stats", STATS, Device, {}),
        ("event", EVENT, DeviceEvent, {}),
        ("image", IMAGE, Image, {"fill": "predicted_fill"}),
    ],
)
def test_no_field_carries_what_its_column_cannot_hold(
    kind: str, good: dict[str, object], table: type[Base], renamed: dict[str, str]
) -> None:
    """For every field stored in a column with a size (VARCHAR(n), INTEGER, BIGINT), a value one past
    it is rejected at parse time, so no such value can ever reach (and fail) a transaction."""
    model = {"reading": Reading, "stats": Stats, "event": Event, "image": LabelImage}[kind]
    checked = 0
    for name in model.model_fields:
        column = table.__table__.c.get(renamed.get(name, name))  # type: ignore[attr-defined]
        value = None if column is None else _too_big(column)
        if value is None:
            continue
        item = _p(f"binsight/bin-1/{kind}", {**good, name: value})
        assert isinstance(item, Reject), f"{kind}.{name} = {str(value)[:20]} was accepted"
        checked += 1
    assert checked >= 3
