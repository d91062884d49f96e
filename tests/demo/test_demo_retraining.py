"""The retraining loop runs in the demo: its server signs with the demo's own key, its cameras trust it,
and its live cameras read often enough for the canaries to be judged in minutes.

In-process, on the demo's own server config and camera fleet (3 bins, a tiny model instead of the
trained one, so no torch): the history is backfilled, the cameras go live (a reading every few
seconds, each showing the frame of the present), a candidate is uploaded and promoted through the
API, the canary cameras verify, install and read with it beside the old model (the demo's shadow
soak), it reaches every bin, a rollback goes back to the model the demo started on and a second
rollback is refused.
"""

from __future__ import annotations

import argparse
import stat
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import pytest
from netutil import free_port
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server" / "rollout"))
from retrain_support import Api, scene, tiny_model, wait_until

from binsight.demo import (
    FRAME_STEP_S,
    _camera_template,
    _camera_updates,
    _Cameras,
    _start_server,
    run_demo,
)
from binsight.demo.assets import ensure_frames
from binsight.demo.camera import TimedFrames
from binsight.demo.trust import SHADOW_CAPTURES, ensure_release_key
from binsight.demo.world import make_city
from binsight.errors import BinsightError
from binsight.server.db.models import DeviceEvent, Reading
from binsight.training.from_server import upload_model

pytestmark = pytest.mark.broker

CAPTURE_EVERY_S = 2.0  # the demo's --capture-every, short so that the test stays short


class _At:
    """A clock that says what the test sets."""

    def __init__(self) -> None:
        self.ms = 0

    def now_ms(self) -> int:
        return self.ms


def test_a_demo_camera_shows_the_frame_of_its_clock(tmp_path: Path) -> None:
    """However often it captures, a demo camera's frame follows its clock: frame ``k`` from ``k``
    frame steps after the start on (the same frame until then), looping at the end of the folder."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), scene(60 + 60 * i, seed=i))
    clock = _At()
    source = TimedFrames(folder, 1000, FRAME_STEP_S, clock)
    seen = []
    for at_s in (-5, 0, 10, FRAME_STEP_S - 1, FRAME_STEP_S, 2 * FRAME_STEP_S + 1, 3 * FRAME_STEP_S):
        clock.ms = 1000 + int(at_s * 1000)
        assert len(source.read_burst(1, 0.0)) == 1 and source.last_path is not None
        seen.append(source.last_path.name)
    assert seen == ["00000.jpg"] * 4 + ["00001.jpg", "00002.jpg", "00000.jpg"]


@pytest.mark.parametrize("every", [0.0, 0.5, 1201.0])
def test_a_capture_interval_out_of_range_fails_before_anything_starts(tmp_path: Path, every: float) -> None:
    """``--capture-every`` outside 1 s .. one frame step: refused at once, nothing trained or written."""
    data = tmp_path / "demo"
    with pytest.raises(BinsightError, match=r"--capture-every must be 1 \.\. 1200 s"):
        run_demo(argparse.Namespace(capture_every=every, data=str(data)))
    assert not data.exists()


def test_the_demo_runs_the_retraining_loop(tmp_path: Path, mosquitto: Any) -> None:
    """Promote, canaries (on the demo's live cadence and shadow soak), all, rollback, a refused second
    rollback: on the demo's server config and cameras."""
    data = tmp_path / "demo"
    data.mkdir()
    city = make_city(3)
    folders = ensure_frames(city, data / "frames")
    first = tiny_model(tmp_path / "first.onnx", "demo-first", a=1.0, b=0.0)
    args = argparse.Namespace(port=free_port(), mqtt_port=mosquitto.port, capture_every=CAPTURE_EVERY_S)
    stop = threading.Event()
    # An earlier demo in another folder (another key) on the same broker leaves its release retained.
    with ExitStack() as earlier:
        old = tmp_path / "earlier"
        old.mkdir()
        _start_server(earlier, old, city, argparse.Namespace(**{**vars(args), "port": free_port()}),
                      protocol="5", model=first)  # fmt: skip
    with ExitStack() as stack:
        server, token = _start_server(stack, data, city, args, protocol="5", model=first)
        key, public = ensure_release_key(data)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and ensure_release_key(data) == (key, public)
        mqtt = {"host": "127.0.0.1", "port": mosquitto.port, "root": "binsight-demo", "protocol": "5"}
        updates = _camera_updates(data, server.http_url)
        assert updates["public_key"] == public and updates["shadow_captures"] == SHADOW_CAPTURES
        # The demo's own cameras: an hour of history on the fast clock, then live.
        template = _camera_template(city, folders, first, mqtt, updates)
        cameras = _Cameras(template, folders, data / "devices", 3600.0, stop, capture_every_s=CAPTURE_EVERY_S)
        cameras.start()
        stack.callback(cameras.close)
        assert cameras.live.wait(30), "the backfill never ended"
        admin = Api(server.http_url, token)

        candidate = tiny_model(tmp_path / "candidate.onnx", "demo-candidate", a=0.95, b=0.02)
        version = str(upload_model(server.http_url, token, candidate, {})["version"])
        code, body = admin.call("POST", f"/api/models/{version}/promote", {"force": True, "reason": "demo"})
        assert code == 200 and body["state"] == "canary", body
        canaries = body["canary_bins"]

        def running(v: str) -> set[str]:
            _, state = admin.call("GET", "/api/rollout")
            return {b["bin_id"] for b in state["bins"] if b["running"] == v}

        wait_until(lambda: set(canaries) <= running(version), 60, "canaries reading on the candidate")
        # Three readings per canary on the candidate before "all": with one reading per frame (every
        # 20 minutes) this took an hour; the live cameras read every few seconds.
        wait_until(lambda: admin.call("GET", "/api/rollout")[1]["rollout"]["state"] == "all", 90, "all")
        wait_until(lambda: len(running(version)) == 3, 60, "every camera on the candidate")
        code, body = admin.call("POST", "/api/models/rollback", {"reason": "demo walk-through"})
        assert code == 200 and body["version"] == "demo-first", body
        wait_until(lambda: len(running("demo-first")) == 3, 60, "every camera back on the first model")
        code, body = admin.call("POST", "/api/models/rollback", {"reason": "a double click"})
        assert code == 409, body  # never back to the candidate it was rolled back from

        now_ms = time.time() * 1000
        with server.sessions() as s:
            # The canaries ran the first model beside the candidate for the demo's shadow soak, no longer.
            for b in canaries:
                shadowed = s.execute(
                    select(func.count()).where(
                        Reading.bin_id == b, Reading.model == version, Reading.shadow_model == "demo-first"
                    )
                ).scalar_one()
                assert shadowed == SHADOW_CAPTURES, (b, shadowed)
            latest = s.execute(select(func.max(Reading.ts))).scalar_one()
            # No camera met the earlier demo's release first (it is replaced before they subscribe).
            refused = s.execute(
                select(DeviceEvent.bin_id, DeviceEvent.detail).where(
                    DeviceEvent.kind == "model", DeviceEvent.state == "failed"
                )
            ).all()
            assert not refused, refused
        assert latest <= now_ms  # never in the server's future
        # Many readings, one frame: an hour after the demo clock's start, every live camera is on frame 3.
        assert cameras.fleet is not None
        for agent in cameras.fleet.agents:
            assert agent.captures >= 10 and agent.source.last_path.name == "00003.jpg"  # type: ignore[attr-defined]
