"""The agent's open problems: the ``last_error`` its stats report."""

from __future__ import annotations

from binsight.device.problems import Problems


def test_problems_keep_the_most_recent_open_one() -> None:
    """A problem cleared at its source is gone; the last one set is reported, each cut to 500 characters."""
    problems = Problems()
    assert problems.last is None
    problems.set("camera", "unplugged")
    problems.set("model", "x" * 600)
    assert problems.last == "x" * 500
    problems.clear("model")
    assert problems.last == "unplugged"
    problems.set("model", "bad file")
    problems.set("camera", "unplugged again")
    assert problems.last == "unplugged again"
