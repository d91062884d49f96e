"""The retraining loop runs in the demo: its server signs with the demo's own key, its cameras trust it.

In-process, on the demo's own server config and camera fleet (3 bins, a tiny model instead of the
trained one, so no torch): a candidate is uploaded and promoted through the API, the canary
cameras verify, install and read with it, it reaches every bin, and a rollback goes back to the
model the demo started on.
"""

from __future__ import annotations

import argparse
import stat
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server" / "rollout"))
from retrain_support import Api, tiny_model, wait_until

from binsight.demo import _camera_template, _start_server
from binsight.demo.assets import ensure_frames
from binsight.demo.trust import ensure_release_key
from binsight.demo.world import make_city
from binsight.training.from_server import upload_model

pytestmark = pytest.mark.broker


def test_the_demo_runs_the_retraining_loop(tmp_path: Path, mosquitto: Any) -> None:
    data = tmp_path / "demo"
    data.mkdir()
    city = make_city(3)
    folders = ensure_frames(city, data / "frames")
    first = tiny_model(tmp_path / "first.onnx", "demo-first", a=1.0, b=0.0)
    args = argparse.Namespace(port=free_port(), mqtt_port=mosquitto.port)
    with ExitStack() as stack:
        server, token = _start_server(stack, data, city, args, protocol="5", model=first)
        key, public = ensure_release_key(data)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and ensure_release_key(data) == (key, public)
        mqtt = {"host": "127.0.0.1", "port": mosquitto.port, "root": "binsight-demo", "protocol": "5"}
        updates = {"public_key": public, "base_url": server.http_url}
        # The demo's own camera configuration (its [updates] trusts the demo key), on a clock fast enough
        # for the canaries to be judged within the test: one capture every 2 s of wall time.
        from binsight.device.simulate import SimulatedFleet

        template = _camera_template(city, folders, first, mqtt, updates)
        fleet = SimulatedFleet(folders, template=template, state_dir=data / "devices", interval_s=2.0)
        fleet.start()
        stack.callback(fleet.stop)
        admin = Api(server.http_url, token)

        candidate = tiny_model(tmp_path / "candidate.onnx", "demo-candidate", a=0.95, b=0.02)
        version = str(upload_model(server.http_url, token, candidate, {})["version"])
        code, body = admin.call("POST", f"/api/models/{version}/promote", {"force": True, "reason": "demo"})
        assert code == 200 and body["state"] == "canary", body
        canaries = body["canary_bins"]

        def running(v: str) -> set[str]:
            _, state = admin.call("GET", "/api/rollout")
            return {b["bin_id"] for b in state["bins"] if b["running"] == v}

        wait_until(lambda: set(canaries) <= running(version), 90, "canaries reading on the candidate")
        wait_until(lambda: admin.call("GET", "/api/rollout")[1]["rollout"]["state"] == "all", 120, "all")
        wait_until(lambda: len(running(version)) == 3, 60, "every camera on the candidate")
        code, body = admin.call("POST", "/api/models/rollback", {"reason": "demo walk-through"})
        assert code == 200 and body["version"] == "demo-first", body
        wait_until(lambda: len(running("demo-first")) == 3, 60, "every camera back on the first model")
