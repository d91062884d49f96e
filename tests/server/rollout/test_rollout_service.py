"""RolloutService on a real SQLite database: canary then all, automatic halt, rollback, refusals.

The fake is the broker's side only (``publish_retained``); models are tiny real ONNX files signed
with a real key, so each announcement is a release a device would verify.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from retrain_support import tiny_model
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import ModelRelease
from binsight.server.config import config_from_dict
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import Device, DeviceEvent, ModelAnnouncement, ModelRecord, Reading, Rollout
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.registry import register_model
from binsight.server.rollout.service import RolloutService
from binsight.signing import parse_public_key, verify_release

BINS = ("b1", "b2", "b3")


class RetainingBroker:
    """Keeps what was retained on each topic, like the broker; ``down`` refuses like a lost connection."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self.down = False

    def publish_retained(self, topic: str, payload: bytes) -> None:
        if self.down:
            raise RolloutError("not connected to the MQTT broker: nothing announced", 503)
        self.retained[topic] = payload

    def release(self, bin_id: str) -> ModelRelease:
        return ModelRelease.model_validate_json(self.retained[f"binsight/{bin_id}/model"])

    def announced(self) -> dict[str, str]:
        """Each bin's retained model version ("" when cleared)."""
        out = {}
        for topic, payload in self.retained.items():
            bin_id = topic.split("/")[1]
            out[bin_id] = ModelRelease.model_validate_json(payload).version if payload else ""
        return out


@dataclass
class Setup:
    service: RolloutService
    broker: RetainingBroker
    sessions: sessionmaker[Session]
    seq: int = 0

    def readings(self, bin_id: str, model: str, fill: float, n: int = 2) -> None:
        now = int(time.time() * 1000)
        with self.sessions.begin() as s:
            for _ in range(n):
                self.seq += 1
                ts = now + self.seq
                s.add(
                    Reading(
                        bin_id=bin_id,
                        seq=self.seq,
                        ts=ts,
                        received_at=ts,
                        fill=fill,
                        quality="ok",
                        model=model,
                    )
                )

    def state(self) -> dict[str, Any]:
        return self.service.status()

    def live_to_all(self, version: str, fill: float, **promote: Any) -> None:
        """Promote ``version``, let its canary report healthy readings, tick: on every bin."""
        self.service.promote(
            version, who="admin", force=promote.get("force", False), reason=promote.get("reason")
        )
        self.readings("b1", version, fill)
        self.service.tick()
        assert self.state()["rollout"]["state"] == "all"


@pytest.fixture
def setup(tmp_path: Path, signing_key: tuple[Path, str], db_url: str) -> Iterator[Setup]:
    """Three bins (b1 the canary), models v1 and v2 registered, nothing active; SQLite and PostgreSQL."""
    cfg = config_from_dict(
        {
            "database": db_url,
            "models": {"dir": str(tmp_path / "models")},
            "rollout": {
                "signing_key": str(signing_key[0]),
                "canary_bins": ["b1"],
                "min_canary_readings": 2,
                "canary_soak_s": 0.0,
                "max_jump": 0.2,
            },
        }
    )
    engine = make_engine(cfg.database)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as s:
        s.add_all(Device(bin_id=b, available="online") for b in BINS)
    for version in ("v1", "v2"):
        register_model(
            sessions, cfg.models.dir, tiny_model(tmp_path / f"{version}.onnx", version, a=1, b=0), None
        )
    broker = RetainingBroker()
    yield Setup(RolloutService(cfg, sessions, broker), broker, sessions)
    engine.dispose()


def test_canary_stage_then_every_bin(setup: Setup) -> None:
    """A promotion goes to the canary only; once it sent enough readings on the new model, to all."""
    started = setup.service.promote("v1", force=False, reason=None, who="admin")
    assert (started["state"], started["canary_bins"], started["previous"]) == ("canary", ["b1"], None)
    assert setup.broker.announced() == {"b1": "v1"}
    assert setup.state()["active"] == "v1"
    setup.readings("b1", "v1", 0.4, n=1)
    setup.service.tick()  # one reading of the two needed: still canary
    assert setup.state()["rollout"]["state"] == "canary" and setup.broker.announced() == {"b1": "v1"}
    setup.readings("b1", "v1", 0.4, n=1)
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "all"
    assert setup.broker.announced() == dict.fromkeys(BINS, "v1")
    assert {b["bin_id"]: b["announced"] for b in setup.state()["bins"]} == dict.fromkeys(BINS, "v1")


def test_a_failed_canary_halts_and_goes_back(setup: Setup) -> None:
    """A canary reporting the model failed halts the rollout, gets the previous model back, and the
    other bins never hear of the candidate."""
    setup.live_to_all("v1", 0.4)
    setup.service.promote("v2", force=True, reason="no comparison in this test", who="admin")
    assert setup.broker.announced() == {"b1": "v2", "b2": "v1", "b3": "v1"}
    now = int(time.time() * 1000)
    with setup.sessions.begin() as s:
        s.add(
            DeviceEvent(
                bin_id="b1",
                ts=now,
                received_at=now,
                kind="model",
                state="failed",
                ref="v2",
                detail="bad hash",
            )
        )
    setup.service.tick()
    rollout = setup.state()["rollout"]
    assert (
        rollout["state"] == "halted" and "canary b1 reported model failed: bad hash" in rollout["halt_reason"]
    )
    assert setup.broker.announced() == dict.fromkeys(BINS, "v1")
    assert setup.state()["active"] == "v1"


def test_a_jump_in_the_canary_readings_halts(setup: Setup) -> None:
    """Readings on the candidate far from the previous model's (more than max_jump) halt the rollout."""
    setup.live_to_all("v1", 0.2)
    setup.service.promote("v2", force=True, reason="test", who="admin")
    setup.readings("b1", "v2", 0.9)
    setup.service.tick()
    rollout = setup.state()["rollout"]
    assert (
        rollout["state"] == "halted"
        and "readings jumped from 0.20 (v1) to 0.90 (v2)" in rollout["halt_reason"]
    )
    assert setup.broker.announced()["b1"] == "v1"


def test_a_canary_that_never_switches_halts_at_the_deadline(setup: Setup) -> None:
    """Nothing heard from the canary on the candidate: past canary_deadline_s the stage halts, naming
    the canary and that no model event came; before it, the stage waits."""
    setup.live_to_all("v1", 0.2)
    setup.service.promote("v2", force=True, reason="test", who="admin")
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "canary"
    setup.service.cfg = setup.service.cfg.model_copy(update={"canary_deadline_s": 0.001})
    time.sleep(0.01)
    setup.service.tick()
    rollout = setup.state()["rollout"]
    assert rollout["state"] == "halted", rollout
    assert "b1 (no model event)" in rollout["halt_reason"] and "canary_deadline_s" in rollout["halt_reason"]
    assert setup.broker.announced() == dict.fromkeys(BINS, "v1")


def test_a_flat_lined_candidate_halts_though_no_canary_jumps(setup: Setup) -> None:
    """Two canaries at 0.30-0.45 and 0.70-0.85 on v1; v2 reads 0.60-0.61 on both (the issue's forced bad
    model): each canary's median moves by less than max_jump (0.4 here), but the readings' spread
    collapsed, so the rollout halts saying so."""
    setup.service.cfg = setup.service.cfg.model_copy(
        update={"canary_bins": ["b1", "b2"], "max_jump": 0.4, "min_canary_readings": 3}
    )
    setup.service.promote("v1", force=False, reason=None, who="admin")
    for b, fills in (("b1", (0.30, 0.38, 0.45)), ("b2", (0.70, 0.78, 0.85))):
        for f in fills:
            setup.readings(b, "v1", f, n=1)
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "all"
    setup.service.promote("v2", force=True, reason="forced bad model", who="admin")
    for b, fills in (("b1", (0.60, 0.61, 0.60)), ("b2", (0.61, 0.60, 0.61))):
        for f in fills:
            setup.readings(b, "v2", f, n=1)
    setup.service.tick()
    rollout = setup.state()["rollout"]
    assert rollout["state"] == "halted" and "collapsed" in rollout["halt_reason"], rollout
    assert setup.broker.announced()["b3"] == "v1"


def test_readings_that_keep_their_spread_pass(setup: Setup) -> None:
    """A candidate that reads each canary a little differently (spread kept) goes to every bin."""
    setup.service.cfg = setup.service.cfg.model_copy(
        update={"canary_bins": ["b1", "b2"], "min_canary_readings": 3}
    )
    setup.service.promote("v1", force=False, reason=None, who="admin")
    for b, fills in (("b1", (0.30, 0.38, 0.45)), ("b2", (0.70, 0.78, 0.85))):
        for f in fills:
            setup.readings(b, "v1", f, n=1)
    setup.service.tick()
    setup.service.promote("v2", force=True, reason="test", who="admin")
    for b, fills in (("b1", (0.33, 0.40, 0.47)), ("b2", (0.68, 0.75, 0.80))):
        for f in fills:
            setup.readings(b, "v2", f, n=1)
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "all"


def test_a_halt_sticks_when_the_broker_is_gone(setup: Setup) -> None:
    """No broker at halt time: the halt is recorded anyway, and says the canaries were not sent back."""
    setup.live_to_all("v1", 0.2)
    setup.service.promote("v2", force=True, reason="test", who="admin")
    setup.readings("b1", "v2", 0.9)
    setup.broker.down = True
    setup.service.tick()
    rollout = setup.state()["rollout"]
    assert rollout["state"] == "halted" and "canaries not sent back" in rollout["halt_reason"]
    assert setup.state()["active"] == "v1"


def test_rollback_announces_the_previous_model_to_every_bin(setup: Setup) -> None:
    """Rollback makes the model before the active one active again, on every bin in one action."""
    setup.live_to_all("v1", 0.4)
    with pytest.raises(RolloutError, match="v1 has no previous model") as exc:
        setup.service.rollback(who="admin")
    assert exc.value.status == 409
    setup.live_to_all("v2", 0.4, force=True, reason="test")
    assert setup.broker.announced() == dict.fromkeys(BINS, "v2")
    back = setup.service.rollback(who="admin", reason="operators prefer v1")
    assert (back["kind"], back["version"], back["previous"], back["state"]) == ("rollback", "v1", "v2", "all")
    assert setup.broker.announced() == dict.fromkeys(BINS, "v1")
    assert setup.state()["active"] == "v1"
    with setup.sessions() as s:
        states = list(s.execute(select(Rollout.state).order_by(Rollout.id)).scalars())
    assert states == ["superseded", "rolled_back", "all"]


def test_a_second_rollback_never_goes_back_to_the_model_rolled_back_from(
    setup: Setup, tmp_path: Path
) -> None:
    """v0, v1 healthy on every bin; a forced bad v2 reaches every bin and is rolled back from. A
    second rollback (a double click) walks back to v0, never to v2; a third finds nothing (409) and
    changes nothing; re-promoting v2 goes through the canary stage again, judged on new readings only."""
    v0 = tiny_model(tmp_path / "v0.onnx", "v0", a=1, b=0)
    register_model(setup.sessions, setup.service.config.models.dir, v0, None)
    setup.live_to_all("v0", 0.4)
    setup.live_to_all("v1", 0.4, force=True, reason="test")
    setup.live_to_all("v2", 0.4, force=True, reason="a forced bad model")
    assert setup.state()["rollback_to"] == "v1"
    first = setup.service.rollback(who="admin", reason="v2 is flat")
    assert setup.state()["rollback_to"] == "v0"
    assert (first["version"], first["previous"]) == ("v1", "v2")
    second = setup.service.rollback(who="admin")
    assert (second["version"], second["previous"]) == ("v0", "v1")
    assert setup.broker.announced() == dict.fromkeys(BINS, "v0")
    before = dict(setup.broker.retained)
    assert setup.state()["rollback_to"] is None
    with pytest.raises(RolloutError, match="no previous model") as exc:
        setup.service.rollback(who="admin")
    assert exc.value.status == 409 and setup.broker.retained == before
    time.sleep(0.05)  # the readings above are stamped a few ms ahead (one per ms); the promotion comes after
    again = setup.service.promote("v2", force=True, reason="fixed upstream", who="admin")
    assert again["state"] == "canary" and setup.broker.announced() == {"b1": "v2", "b2": "v0", "b3": "v0"}
    # Judged anew: the canary's readings on v2 from its first time in production do not count.
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "canary"
    setup.readings("b1", "v2", 0.4)
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "all"


def test_a_halted_model_is_no_rollback_target(setup: Setup) -> None:
    """A halted candidate never reached every bin: rollback from the model after it skips it."""
    setup.live_to_all("v1", 0.2)
    setup.service.promote("v2", force=True, reason="test", who="admin")
    setup.readings("b1", "v2", 0.9)
    setup.service.tick()
    assert setup.state()["rollout"]["state"] == "halted" and setup.state()["active"] == "v1"
    with pytest.raises(RolloutError, match="no previous model"):
        setup.service.rollback(who="admin")


@pytest.mark.parametrize(
    ("promote", "status", "message"),
    [
        ({"force": False, "reason": None}, 409, "promotion refused"),
        ({"force": True, "reason": "  "}, 422, "needs a reason"),
    ],
)
def test_gate_refusals_change_nothing(
    setup: Setup, promote: dict[str, Any], status: int, message: str
) -> None:
    """A candidate without a comparison is refused unless forced with a reason; nothing is announced."""
    setup.live_to_all("v1", 0.4)
    before = dict(setup.broker.retained)
    with pytest.raises(RolloutError, match=message) as exc:
        setup.service.promote("v2", who="admin", **promote)
    assert exc.value.status == status
    assert setup.broker.retained == before and setup.state()["active"] == "v1"


def test_without_a_broker_nothing_is_promoted(setup: Setup) -> None:
    """An API-only service (no publisher) refuses with 503 before recording anything."""
    service = RolloutService(setup.service.config, setup.sessions, None)
    with pytest.raises(RolloutError, match="no MQTT connection") as exc:
        service.promote("v1", force=False, reason=None, who="admin")
    assert exc.value.status == 503
    with setup.sessions() as s:
        assert s.execute(select(Rollout)).first() is None
        assert s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).first() is None


def test_every_announcement_is_a_newer_release(setup: Setup, signing_key: tuple[Path, str]) -> None:
    """Promotion, halt and rollback each sign a new release with a higher number, kept across a
    restart; bins that join a rollout later get the very release the others got."""
    public = parse_public_key(signing_key[1])
    setup.service.promote("v1", force=False, reason=None, who="admin")
    first = setup.broker.release("b1")
    assert first.release_number is not None and first.issued_at is not None
    setup.readings("b1", "v1", 0.2)
    setup.service.tick()
    assert setup.broker.retained["binsight/b3/model"] == setup.broker.retained["binsight/b1/model"]
    setup.service.promote("v2", force=True, reason="test", who="admin")
    candidate = setup.broker.release("b1")
    assert (candidate.version, setup.broker.release("b2").version) == ("v2", "v1")
    setup.readings("b1", "v2", 0.9)  # a jump: halted, the canary goes back to v1 ...
    setup.service.tick()
    halted_back = setup.broker.release("b1")
    assert halted_back.version == "v1"  # ... in a new release, so a device that took v2 accepts it
    restarted = RolloutService(setup.service.config, setup.sessions, setup.broker)
    restarted.promote("v2", force=True, reason="again", who="admin")
    restarted.rollback(who="admin", reason="operators prefer v1")
    back = setup.broker.release("b2")
    numbers = [r.release_number or 0 for r in (first, candidate, halted_back, back)]
    assert numbers == sorted(set(numbers)), f"release numbers must only grow: {numbers}"
    assert (
        back.version == "v1" and back.sha256 == first.sha256 and back.release_number != first.release_number
    )
    for r in (first, candidate, halted_back, back):
        verify_release(public, r)
    assert restarted.status()["release_number"] == back.release_number
    with setup.sessions() as s:
        told = {a.bin_id: a.release_number for a in s.execute(select(ModelAnnouncement)).scalars()}
    assert told == dict.fromkeys(BINS, back.release_number)
