"""The wire protocol: topics and message validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from binsight.protocol import Reading, Topics, release_manifest


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


def test_release_manifest_binds_all_fields() -> None:
    """Changing version, hash or size changes the signed bytes."""
    a = release_manifest("v1", "0" * 64, 10)
    assert a != release_manifest("v2", "0" * 64, 10)
    assert a != release_manifest("v1", "1" * 64, 10)
    assert a != release_manifest("v1", "0" * 64, 11)
