"""Every bad payload becomes a reject with its reason; good ones become typed items."""

from __future__ import annotations

import base64
import json

import pytest

from binsight.protocol import MAX_PAYLOAD_BYTES, Topics
from binsight.server.ingest.messages import (
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
    stats = {
        "bin_id": "bin-1",
        "ts": NOW,
        "uptime_s": 5,
        "outbox_depth": 0,
        "dropped": 0,
        "model": "m",
        "interval_s": 600,
    }
    assert isinstance(_p("binsight/bin-1/stats", stats), StatsMsg)
    a = _p("binsight/bin-1/available", "offline")
    assert a == Availability("bin-1", online=False)
    jpeg = b"\xff\xd8\xff\xe0" + b"0" * 100
    img = {
        "bin_id": "bin-1",
        "seq": 1,
        "ts": NOW,
        "reason": "unsure",
        "model": "m",
        "jpeg_b64": base64.b64encode(jpeg).decode(),
    }
    im = _p("binsight/bin-1/image", img)
    assert isinstance(im, ImageMsg) and im.jpeg == jpeg
