"""Forged, replayed and downgraded model releases against a real server, broker and agent.

One agent (bin ``bin-r``, the canary) on a private Mosquitto with a live server. An attacker with
write access to the bin's retained model topic announces a v2 with a garbage signature, then
replays an older, validly signed release; the server promotes v2 and v4 and rolls back, each a new
numbered release. Counts: ``sent`` = announcements, ``stored`` = installed (or accepted) as
intended, ``rejected`` = refused by the device with a ``failed`` model event the server recorded.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server" / "rollout"))
from retrain_support import (
    ModelTopics,
    Stack,
    scene,
    start_stack,
    tiny_model,
    wait_until,
    write_frames,
)

from binsight.protocol import ModelRelease
from binsight.signing import format_public_key, generate_key
from binsight.training.from_server import upload_model

pytestmark = pytest.mark.broker

BIN = "bin-r"


@pytest.fixture
def stack(mosquitto: Any, tmp_path: Path) -> Iterator[Stack]:
    key = generate_key()
    key_file = tmp_path / "release.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    stack = start_stack(
        mosquitto.port, tmp_path, (key_file, format_public_key(key.public_key())), canary_bins=[BIN]
    )
    yield stack
    stack.stop()


def _refusals(stack: Stack, needle: str) -> int:
    """The ``failed`` model events of the bin the server stored whose detail names ``needle``."""
    from sqlalchemy import select

    from binsight.server.db.models import DeviceEvent

    with stack.runtime.sessions() as s:
        details = s.execute(
            select(DeviceEvent.detail).where(
                DeviceEvent.bin_id == BIN, DeviceEvent.kind == "model", DeviceEvent.state == "failed"
            )
        ).scalars()
        return sum(1 for d in details if needle in (d or ""))


def _promote(stack: Stack, version: str) -> None:
    code, body = stack.admin.call(
        "POST", f"/api/models/{version}/promote", {"force": True, "reason": "fault test"}
    )
    assert code == 200, body


def test_forged_replayed_and_rolled_back_releases(stack: Stack, tmp_path: Path, fault_counts: Any) -> None:
    """Forged v2 then genuine v2 -> v2; v4; v1's old release replayed -> refused, event stored;
    rollback (a new release of v2) -> v2."""
    models = {v: tiny_model(tmp_path / f"{v}.onnx", v, a=1.0, b=0.0) for v in ("v1", "v2", "v4")}
    registered = {v: upload_model(stack.admin.base, stack.admin.token, p, {}) for v, p in models.items()}
    frames = write_frames(tmp_path / "frames", [scene(60, seed=i) for i in range(4)])
    agent = stack.start_agent(BIN, frames, models["v1"])
    topics = ModelTopics(stack.port)
    try:
        wait_until(lambda: stack.latest_model(BIN) == "v1", 30, "readings on v1")

        def installed(version: str, number: int | None) -> None:
            wait_until(lambda: stack.latest_model(BIN) == version, 30, f"readings on {version}")
            wait_until(lambda: agent.updater.accepted_release() == number, 10, f"release {number} accepted")
            fault_counts.stored += 1

        def healthy_everywhere(version: str) -> None:
            """Its rollout reached every bin: only such a model is a rollback target."""
            wait_until(
                lambda: (
                    (r := stack.admin.call("GET", "/api/rollout")[1]["rollout"])["version"] == version
                    and r["state"] == "all"
                ),
                30,
                f"{version} on every bin",
            )

        def refused(needle: str) -> None:
            wait_until(lambda: _refusals(stack, needle) == 1, 30, f"the server's record of '{needle}'")
            fault_counts.rejected += 1

        # The server signs v1, which the agent runs: accepted (release 1), nothing to download.
        _promote(stack, "v1")
        fault_counts.sent += 1
        wait_until(lambda: topics.told(BIN) == ["v1"], 10, "v1 announced")
        v1_release = topics.last_payload(BIN)
        installed("v1", ModelRelease.model_validate_json(v1_release).release_number)

        # A v2 with a garbage signature, naming the very file the server will sign next.
        code, body = stack.admin.call("GET", "/api/rollout")
        assert code == 200, body
        number = int(body["release_number"]) + 1
        forged = ModelRelease.model_validate_json(v1_release).model_copy(
            update={
                "version": "v2",
                "url": "/models/v2.onnx",
                "sha256": registered["v2"]["sha256"],
                "size": registered["v2"]["size"],
                "release_number": number,
                "signature": base64.b64encode(bytes(64)).decode(),
            }
        )
        topics.publish(BIN, forged.model_dump_json().encode())
        fault_counts.sent += 1
        refused("signature does not match")

        # The genuine v2 (same version, hash and size; a valid signature) is installed all the same.
        _promote(stack, "v2")
        fault_counts.sent += 1
        installed("v2", number)
        healthy_everywhere("v2")
        _promote(stack, "v4")
        fault_counts.sent += 1
        installed("v4", number + 1)

        # v1's old, validly signed release replayed after v4: refused, the event reaches the server.
        topics.publish(BIN, v1_release)
        fault_counts.sent += 1
        refused("is not newer than release")
        assert stack.latest_model(BIN) == "v4"

        # The operator's rollback is a new, higher-numbered release of v2: installed.
        code, body = stack.admin.call("POST", "/api/models/rollback", {"reason": "fault test"})
        assert code == 200, body
        fault_counts.sent += 1
        installed("v2", number + 2)
    finally:
        topics.close()
