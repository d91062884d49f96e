"""The server's commands on the device: each run once, acknowledged after it ran, every one answered."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from device_support import load_config, write_config

from binsight.device.agent import Agent
from binsight.device.outbox import Outbox
from binsight.device.remote import RemoteCommands
from binsight.protocol import Reading


class Target:
    """The agent's side of the commands, recording what it was asked to do."""

    def __init__(self) -> None:
        self.intervals: list[float] = []
        self.captures: list[str | None] = []
        self.connected = True
        self.last_error: str | None = None

    def set_interval(self, interval_s: float) -> None:
        self.intervals.append(interval_s)

    def publish_stats(self) -> bool:
        return self.connected

    def capture_and_send(self, image_reason: str | None = None) -> Reading | None:
        self.captures.append(image_reason)
        if self.last_error is not None:
            return None
        return Reading(bin_id="b1", seq=len(self.captures), ts=1, fill=0.5, quality="ok", model="v1")


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


#: ``(state, ref, detail)`` of the ``command`` events sent.
Events = list[tuple[str, str | None, str | None]]


def _commands(outbox: Outbox, target: Target) -> tuple[RemoteCommands, Events]:
    events: Events = []

    def report(kind: str, state: str, ref: str | None, detail: str | None) -> None:
        assert kind == "command"
        events.append((state, ref, detail))

    return RemoteCommands("b1", outbox, target, report=report, wake=threading.Event()), events


def _cmd(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_each_command_runs_once_and_is_acknowledged_after(outbox: Outbox) -> None:
    """A redelivered id is acknowledged but not run again, also by a new queue on the same outbox."""
    target = Target()
    commands, events = _commands(outbox, target)
    acks: list[str] = []
    commands.put(_cmd(id="c1", action="set_interval", interval_s=60), lambda: acks.append("c1"))
    commands.put(_cmd(id="c1", action="set_interval", interval_s=60), lambda: acks.append("c1 again"))
    assert acks == [], "nothing is acknowledged before it ran"
    commands.run_queued()
    assert target.intervals == [60.0] and acks == ["c1", "c1 again"]
    assert events == [("ok", "c1", "interval 60 s")]
    after_restart, _ = _commands(outbox, target)
    after_restart.put(_cmd(id="c1", action="set_interval", interval_s=60))
    after_restart.run_queued()
    assert target.intervals == [60.0]


def test_every_command_is_answered(outbox: Outbox) -> None:
    """Malformed, incomplete, offline and failing commands each end in a ``failed`` event with the reason."""
    target = Target()
    commands, events = _commands(outbox, target)
    commands.put(b"{not json")
    commands.put(_cmd(id="c2", action="set_interval"))
    commands.put(_cmd(id="c3", action="send_image", reason="coverage"))
    target.connected = False
    commands.put(_cmd(id="c4", action="send_stats"))
    commands.run_queued()
    target.last_error = "camera unplugged"
    commands.put(_cmd(id="c5", action="capture"))
    commands.run_queued()
    assert events[0][:2] == ("failed", None) and events[0][2] is not None
    assert events[0][2].startswith("malformed command")
    assert events[1:] == [
        ("failed", "c2", "set_interval needs interval_s"),
        ("ok", "c3", "seq 1 quality ok"),
        ("failed", "c4", "not connected"),
        ("failed", "c5", "camera unplugged"),
    ]
    assert target.captures == ["coverage", None]


@pytest.mark.parametrize("interval_s", [1e-9, 0.1, 86_401.0, 1e9, math.inf, math.nan])
def test_agent_refuses_an_interval_outside_its_range(
    tmp_path: Path, scenes: Path, model_v1: Path, interval_s: float
) -> None:
    """The agent itself takes 10 s .. 1 day, widened to device.toml's own interval, whatever the command's
    validation let through: outside, a ValueError naming the range, and nothing changes."""
    toml = write_config(tmp_path, bin_id="b-iv", source=scenes, model=model_v1, port=1, interval_s=0.2)
    agent = Agent(load_config(toml))
    try:
        agent.set_interval(600)
        with pytest.raises(ValueError, match=r"refused: this device takes 0\.2 \.\. 86400 s"):
            agent.set_interval(interval_s)
        assert agent.interval_s == 600 and agent.outbox.get_setting("interval_s") == "600@0.2"
        agent.set_interval(0.2)  # device.toml's own
        assert agent.interval_s == 0.2
    finally:
        agent.outbox.close()
        agent.source.close()


def test_a_refused_interval_is_a_failed_command(outbox: Outbox) -> None:
    """The agent's refusal ends in a ``failed`` event with its reason, and the command is done."""
    target = Target()

    def refuse(interval_s: float) -> None:
        raise ValueError(f"interval {interval_s:g} s refused: this device takes 10 .. 86400 s")

    target.set_interval = refuse  # type: ignore[method-assign]
    commands, events = _commands(outbox, target)
    acks: list[str] = []
    commands.put(_cmd(id="c9", action="set_interval", interval_s=20), lambda: acks.append("c9"))
    commands.run_queued()
    assert events == [("failed", "c9", "interval 20 s refused: this device takes 10 .. 86400 s")]
    assert acks == ["c9"]
