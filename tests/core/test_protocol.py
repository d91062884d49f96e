"""The wire protocol: topics and message validation."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from binsight.protocol import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    Command,
    Event,
    LabelImage,
    ModelRelease,
    Reading,
    Stats,
    Topics,
    release_manifest,
)


def test_topics_round_trip() -> None:
    """Every topic a bin uses parses back to its bin id and kind."""
    t = Topics("city/binsight")
    for kind in Topics.KINDS:
        topic = getattr(t, kind)("bin-0001")
        assert t.parse(topic) == ("bin-0001", kind)
    assert t.wildcard("reading") == "city/binsight/+/reading"


@pytest.mark.parametrize(
    "topic", ["binsight/bin-1/reading/x", "other/bin-1/reading", "binsight/+/reading", "binsight/b/unknown"]
)
def test_topics_parse_rejects_foreign(topic: str) -> None:
    """Topics that are not exactly <root>/<bin_id>/<kind> are not ours."""
    assert Topics().parse(topic) is None


@pytest.mark.parametrize("bad", ["", "a/b", "#", "bin id", "x" * 65, "-lead"])
def test_bad_bin_id_rejected(bad: str) -> None:
    """Bin ids that would break topic names or file names are refused."""
    with pytest.raises(ValueError, match="invalid bin id"):
        Topics().reading(bad)


def _reading(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "bin_id": "bin-1", "seq": 1, "ts": 1, "fill": 0.5, "quality": "ok", "model": "m1",
    }  # fmt: skip
    base.update(over)
    return base


@pytest.mark.parametrize(
    "over",
    [{"fill": 1.5}, {"fill": -0.1}, {"seq": -1}, {"quality": "great"}, {"surprise": 1}, {"bin_id": "a b"}],
)
def test_reading_rejects_bad_fields(over: dict[str, object]) -> None:
    """Out-of-range fill, unknown quality, unknown field: all rejected."""
    with pytest.raises(ValidationError):
        Reading.model_validate(_reading(**over))


def test_reading_null_fill_allowed() -> None:
    """An unusable image gives a reading with null fill and a reason."""
    r = Reading.model_validate(_reading(fill=None, quality="dark"))
    assert r.fill is None and r.quality == "dark" and r.historical is False


_VALID: dict[type[BaseModel], dict[str, object]] = {
    Reading: _reading(spread=0.1, infer_ms=12.5),
    Stats: {
        "bin_id": "bin-1",
        "ts": 1,
        "uptime_s": 1.0,
        "outbox_depth": 0,
        "dropped": 0,
        "model": "m1",
        "interval_s": 600.0,
        "last_infer_ms": 3.0,
        "rss_mb": 80.0,
    },
    LabelImage: {
        "bin_id": "bin-1",
        "seq": 1,
        "ts": 1,
        "reason": "unsure",
        "fill": 0.5,
        "model": "m1",
        "jpeg_b64": "",
    },
    Command: {"id": "c1", "action": "set_interval", "interval_s": 600.0},
    Event: {"bin_id": "bin-1", "ts": 1, "kind": "command", "state": "ok"},
    ModelRelease: {
        "version": "v1",
        "url": "http://x/v1.onnx",
        "sha256": "0" * 64,
        "size": 1,
        "signature": "s",
    },
}


def _number_fields() -> list[tuple[type[BaseModel], str]]:
    """Every (message, field) that holds a number, so that a field added later is covered too."""
    return [
        (model, name)
        for model in _VALID
        for name, field in model.model_fields.items()
        if {field.annotation, *getattr(field.annotation, "__args__", ())} & {float, int}
    ]


def test_valid_examples_are_valid() -> None:
    """The examples the non-finite tests start from parse, from JSON as on the wire."""
    for model, data in _VALID.items():
        model.model_validate_json(json.dumps(data), strict=True)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize(("model", "name"), _number_fields(), ids=lambda v: getattr(v, "__name__", v))
def test_non_finite_numbers_rejected(model: type[BaseModel], name: str, token: str) -> None:
    """NaN, Infinity and an overflowing literal are JSON tokens both parsers read as floats; no
    message takes them in any numeric field (``infer_ms``, ``interval_s``, ``uptime_s``, ...)."""
    payload = json.dumps({k: v for k, v in _VALID[model].items() if k != name}).rstrip("}")
    payload += f', "{name}": {token}}}'
    with pytest.raises(ValidationError) as err:
        model.model_validate_json(payload, strict=True)
    assert err.value.errors()[0]["loc"] == (name,), err.value.errors()
    data = {**_VALID[model], name: json.loads(token)}  # what Python's json makes of the token
    with pytest.raises(ValidationError):
        model.model_validate(data)


@pytest.mark.parametrize("seconds", [MIN_INTERVAL_S, 600.0, MAX_INTERVAL_S])
def test_set_interval_in_range(seconds: float) -> None:
    """10 s .. 1 day: what a lid camera may be told to capture at."""
    assert Command(id="c", action="set_interval", interval_s=seconds).interval_s == seconds


@pytest.mark.parametrize(
    ("seconds", "bound"), [(1e-9, "greater than or equal to 10"), (9.99, "greater than or equal to 10"),
                           (0.0, "greater than or equal to 10"), (-60.0, "greater than or equal to 10"),
                           (86_400.5, "less than or equal to 86400")]
)  # fmt: skip
def test_set_interval_out_of_range(seconds: float, bound: str) -> None:
    """1e-9 s once made a device capture 707 times in 6 s; the error names the bound it broke."""
    with pytest.raises(ValidationError, match=bound):
        Command(id="c", action="set_interval", interval_s=seconds)


def test_release_manifest_binds_all_fields() -> None:
    """Changing version, hash or size changes the signed bytes."""
    a = release_manifest("v1", "0" * 64, 10)
    assert a != release_manifest("v2", "0" * 64, 10)
    assert a != release_manifest("v1", "1" * 64, 10)
    assert a != release_manifest("v1", "0" * 64, 11)
