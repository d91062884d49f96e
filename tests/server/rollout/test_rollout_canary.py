"""Staged rollout on a live server, private broker and three real agents (tiny models, no torch):
canary first, automatic halt on a canary's ``failed`` event or on jumping readings (the other bins
are never told), and rollback in one action."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from retrain_support import ModelTopics, Stack, scene, tiny_model, wait_until, write_frames

from binsight.training.from_server import upload_model

pytestmark = pytest.mark.broker

BINS = ("bin-a", "bin-b", "bin-c")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tiny")
    return {
        "v1": tiny_model(d / "v1.onnx", "v1-brightness", a=1.0, b=0.0),
        "bad": tiny_model(d / "bad.onnx", "v2-insane", a=5.0, b=0.0, clip=False),
        "jump": tiny_model(d / "jump.onnx", "v3-inverted", a=-1.0, b=1.0),
        "ok": tiny_model(d / "ok.onnx", "v4-brightness", a=1.0, b=0.0),
    }


@pytest.fixture
def fleet(
    make_stack: Callable[..., Stack], models: dict[str, Path], tmp_path: Path
) -> Iterator[tuple[Stack, ModelTopics]]:
    """Server with canary bin-a; three agents on v1 looking at dim scenes (v1 reads ~0.25)."""
    stack = make_stack(canary_bins=["bin-a"])
    frames = write_frames(tmp_path / "frames", [scene(60, seed=i) for i in range(6)])
    for b in BINS:
        stack.start_agent(b, frames, models["v1"])
    for b in BINS:
        wait_until(lambda b=b: stack.latest_model(b) == "v1-brightness", 30, f"{b} reading on v1")
    topics = ModelTopics(stack.port)
    try:
        yield stack, topics
    finally:
        topics.close()


def _register(stack: Stack, model: Path) -> str:
    version = str(upload_model(stack.admin.base, stack.admin.token, model, {})["version"])
    return version


def _rollout(stack: Stack) -> dict[str, object]:
    code, body = stack.admin.call("GET", "/api/rollout")
    assert code == 200
    rollout: dict[str, object] = body["rollout"]
    return rollout


def test_canary_failure_and_jump_halt_and_rollback(
    fleet: tuple[Stack, ModelTopics], models: dict[str, Path]
) -> None:
    """v1 goes canary -> all; a broken model fails on the canary and a jumping one moves its readings:
    both halt, only the canary is ever told, and it is sent back to v1; rollback re-announces v1."""
    stack, topics = fleet
    v1 = _register(stack, models["v1"])
    code, body = stack.admin.call("POST", f"/api/models/{v1}/promote", {})
    assert code == 200 and body["state"] == "canary" and body["canary_bins"] == ["bin-a"]
    wait_until(lambda: _rollout(stack)["state"] == "all", 30, "v1 rollout reaching all bins")
    wait_until(lambda: all(topics.told(b)[-1:] == [v1] for b in BINS), 10, "v1 retained on every bin")

    # 1. A model the device refuses (unclipped output): the canary reports `failed`.
    bad = _register(stack, models["bad"])
    code, body = stack.admin.call("POST", f"/api/models/{bad}/promote", {})
    assert code == 409 and "no comparison" in body["detail"]
    code, body = stack.admin.call("POST", f"/api/models/{bad}/promote", {"force": True})
    assert code == 422 and "reason" in body["detail"]
    code, body = stack.admin.call(
        "POST", f"/api/models/{bad}/promote", {"force": True, "reason": "test the canary halt"}
    )
    assert code == 200 and body["forced"] is True and body["reason"] == "test the canary halt"
    halted = wait_until(lambda: (r := _rollout(stack))["state"] == "halted" and r, 30, "halt on failure")
    assert halted["version"] == bad and "failed" in str(halted["halt_reason"])
    code, state = stack.admin.call("GET", "/api/rollout")
    assert state["active"] == v1
    wait_until(lambda: topics.told("bin-a")[-1:] == [v1], 10, "bin-a sent back to v1")

    # 2. A model whose readings jump on the canary (inverted: ~0.75 where v1 reads ~0.25).
    jump = _register(stack, models["jump"])
    code, body = stack.admin.call(
        "POST", f"/api/models/{jump}/promote", {"force": True, "reason": "jump test"}
    )
    assert code == 200
    halted = wait_until(lambda: (r := _rollout(stack))["state"] == "halted" and r, 60, "halt on jump")
    # The canary ran v1 beside it on the same frames (shadow soak): that check speaks first.
    assert halted["version"] == jump and "on the same frames" in str(halted["halt_reason"]), halted
    wait_until(lambda: stack.latest_model("bin-a") == v1, 60, "bin-a running v1 again")
    for b in ("bin-b", "bin-c"):
        assert bad not in topics.told(b) and jump not in topics.told(b), topics.told(b)
        assert {m for _, _, m in stack.readings(b)} == {v1}
    assert jump in topics.told("bin-a") and bad in topics.told("bin-a")

    # 3. Rollback: v1 has no previous model; after a healthy v4 reached every bin, one call goes back.
    code, body = stack.admin.call("POST", "/api/models/rollback")
    assert code == 409 and "no previous model" in body["detail"]
    ok = _register(stack, models["ok"])
    code, _ = stack.admin.call("POST", f"/api/models/{ok}/promote", {"force": True, "reason": "same output"})
    assert code == 200
    wait_until(lambda: _rollout(stack)["state"] == "all", 60, "v4 reaching all bins")
    wait_until(lambda: all(stack.latest_model(b) == ok for b in BINS), 60, "every bin on v4")
    code, body = stack.admin.call("POST", "/api/models/rollback", {"reason": "test"})
    assert code == 200 and body["version"] == v1 and body["kind"] == "rollback"
    assert all(topics.told(b)[-1] == v1 for b in BINS)
    wait_until(lambda: all(stack.latest_model(b) == v1 for b in BINS), 60, "every bin back on v1")
    code, listing = stack.admin.call("GET", "/api/models")
    assert [m["version"] for m in listing if m["active"]] == [v1]


def test_coverage_requests_reach_the_cameras(fleet: tuple[Stack, ModelTopics]) -> None:
    """Bins short of labels are asked for an image (send_image, reason coverage); it reaches the queue."""
    stack, _ = fleet
    code, plan = stack.admin.call("GET", "/api/coverage")
    assert code == 200 and sorted(p["bin_id"] for p in plan) == sorted(BINS)
    assert all("0 labels" in p["reasons"][0] for p in plan)
    code, sent = stack.admin.call("POST", "/api/coverage")
    assert code == 202 and len(sent) == len(BINS)

    def coverage_images() -> set[str]:
        _, queue = stack.labeller.call("GET", "/api/labels/queue?limit=100")
        return {q["bin_id"] for q in queue if q["reason"] == "coverage"}

    wait_until(lambda: coverage_images() == set(BINS), 30, "a coverage image from every bin")


def test_a_canary_without_a_key_is_heard_and_the_stage_halts_at_its_deadline(
    make_stack: Callable[..., Stack], models: dict[str, Path], tmp_path: Path
) -> None:
    """A canary with no [updates] public_key refuses the release: the server stores the refusal with
    its reason (``retrying``: the cause can pass), shows it per bin, and halts the stage at
    ``canary_deadline_s`` saying which canary did not switch and why; the other bins are never told.
    Restarted with the key, the same camera (same state DB) installs the next release."""
    stack = make_stack(canary_bins=["bin-a"], canary_deadline_s=3.0)
    frames = write_frames(tmp_path / "frames", [scene(60, seed=i) for i in range(6)])
    stack.start_agent("bin-a", frames, models["v1"], public_key="")
    stack.start_agent("bin-b", frames, models["v1"])
    wait_until(lambda: stack.latest_model("bin-a") == "v1-brightness", 30, "bin-a reading on v1")
    topics = ModelTopics(stack.port)
    try:
        ok = _register(stack, models["ok"])
        code, body = stack.admin.call("POST", f"/api/models/{ok}/promote", {})
        assert code == 200 and body["state"] == "canary"

        def bin_a_event() -> dict[str, object] | None:
            _, state = stack.admin.call("GET", "/api/rollout")
            return next(b["event"] for b in state["bins"] if b["bin_id"] == "bin-a")

        event = wait_until(bin_a_event, 30, "bin-a's refusal reaching the server")
        assert event["state"] == "retrying" and "no trusted public key" in str(event["detail"])
        halted = wait_until(lambda: (r := _rollout(stack))["state"] == "halted" and r, 30, "deadline halt")
        why = str(halted["halt_reason"])
        assert "not switched" in why and "bin-a" in why and "no trusted public key" in why, why
        assert ok not in topics.told("bin-b")

        # The key added and the camera restarted: the next promotion is installed, nothing remembered.
        stack.agents.pop("bin-a").stop()
        stack.start_agent("bin-a", frames, models["v1"])
        code, _ = stack.admin.call("POST", f"/api/models/{ok}/promote", {})
        assert code == 200
        wait_until(lambda: stack.latest_model("bin-a") == ok, 30, "bin-a on the new model")
    finally:
        topics.close()


def test_shadow_soak_judges_the_candidate_on_the_same_frames(
    make_stack: Callable[..., Stack], models: dict[str, Path], tmp_path: Path
) -> None:
    """Frames from dark to bright; after a switch the canary also runs the model it replaced on the
    same frames and its readings carry both. An inverted model keeps the median (0.5 either way), so
    the jump check passes it, but on the same frames it disagrees: halted. A flat-lined model (0.60
    whatever it sees) is halted on the same frames too (its spread collapses, or its gap on those
    frames is too wide). The other bins are never told of either."""
    stack = make_stack(canary_bins=["bin-a"], min_canary_readings=4)
    frames = write_frames(tmp_path / "frames", [scene(b, seed=b) for b in (50, 90, 128, 165, 205)])
    for b in ("bin-a", "bin-b"):
        stack.start_agent(b, frames, models["v1"])
    topics = ModelTopics(stack.port)
    try:
        v1 = _register(stack, models["v1"])
        code, _ = stack.admin.call("POST", f"/api/models/{v1}/promote", {})
        assert code == 200
        wait_until(lambda: _rollout(stack)["state"] == "all", 30, "v1 on every bin")
        flat = _register(stack, tiny_model(tmp_path / "flat.onnx", "v5-flat", a=0.0, b=0.6))
        # Which frames the first shadow readings fall on depends on timing: the flat model may be caught
        # by its gap on them or by its collapsed spread; both are judgements on the same frames.
        for candidate, words in ((models["jump"], "on the same frames"), (None, "on the same frames")):
            version = _register(stack, candidate) if candidate is not None else flat
            code, body = stack.admin.call(
                "POST", f"/api/models/{version}/promote", {"force": True, "reason": "shadow test"}
            )
            assert code == 200, body
            halted = wait_until(
                lambda: (r := _rollout(stack))["state"] == "halted" and r, 60, f"{version} halted"
            )
            assert halted["version"] == version and words in str(halted["halt_reason"]), halted
            assert version not in topics.told("bin-b")
            wait_until(lambda: stack.latest_model("bin-a") == v1, 60, "bin-a back on v1")
        with stack.runtime.sessions() as s:
            from sqlalchemy import select

            from binsight.server.db.models import Reading

            shadowed = s.execute(
                select(Reading.model, Reading.shadow_model).where(Reading.shadow_model.is_not(None))
            ).all()
        assert {(m, sm) for m, sm in shadowed} >= {("v3-inverted", v1), ("v5-flat", v1)}
    finally:
        topics.close()
