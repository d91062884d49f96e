"""Retraining-loop test helpers: a live server + private broker + real agents, tiny model files, HTTP.

(A plain module, not conftest: test modules import it by its unique name.)
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from netutil import free_port
from onnx import TensorProto, helper

from binsight.config import load_toml
from binsight.device.agent import Agent
from binsight.device.config import DeviceConfig


def tiny_model(path: Path, version: str, *, a: float, b: float, clip: bool = True) -> Path:
    """A contract-following model whose fill is ``a * mean(image) / 255 + b`` (clipped unless not ``clip``).

    ``a=0`` is a constant "factory" model; ``a=-1, b=1`` inverts brightness; ``clip=False`` with a
    large ``a`` gives an insane model that a device's sanity check refuses.
    """
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Mul", ["m", "ka"], ["am"]),
        helper.make_node("Add", ["am", "kb"], ["raw"]),
        helper.make_node("Clip", ["raw", "zero", "one"], ["fill"])
        if clip
        else helper.make_node("Identity", ["raw"], ["fill"]),
    ]
    inits = [
        helper.make_tensor("ka", TensorProto.FLOAT, [], [a / 255.0]),
        helper.make_tensor("kb", TensorProto.FLOAT, [], [b]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("fill", TensorProto.FLOAT, ["N"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(
        model,
        {
            "binsight.task": "regression",
            "binsight.input_size": "[32, 32]",
            "binsight.backbone": "tiny-test",
            "binsight.features": "mean",
            "binsight.binsight_version": "0.1.0",
            "binsight.model_version": version,
            "binsight.dataset_fingerprint": "0" * 64,
            "binsight.metrics": "{}",
            "binsight.created_at": "2026-11-29T22:00:00Z",
            "binsight.precision": "fp32",
        },
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scene(brightness: float, seed: int = 0, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A textured BGR image of mean grey level about ``brightness`` that passes the quality gate."""
    rng = np.random.default_rng(seed)
    h, w = size
    blocks = rng.integers(-30, 31, size=(h // 8, w // 8, 3)).astype(np.float32)
    tex = cv2.resize(blocks, (w, h), interpolation=cv2.INTER_NEAREST)
    big = np.zeros((h, w, 3), np.float32)
    big[: h // 2, : w // 2] = 25
    big[h // 2 :, w // 2 :] = -25
    return np.ascontiguousarray(np.clip(brightness + tex + big, 0, 255).astype(np.uint8))


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f{i:04d}.png"), frame)
    return folder


def wait_until(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout:.0f} s")


@dataclass
class Api:
    """A tiny HTTP client with one bearer token."""

    base: str
    token: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                ctype = resp.headers.get("Content-Type", "")
                return resp.status, json.loads(raw) if "json" in ctype else raw
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Stack:
    """A ServerRuntime on a private broker, its tokens, and the agents started against it."""

    runtime: Any
    admin: Api
    labeller: Api
    public_key: str
    port: int
    tmp: Path
    agents: dict[str, Agent] = field(default_factory=dict)

    def start_agent(
        self, bin_id: str, frames: Path, model: Path, *, every_n: int = 0, public_key: str | None = None
    ) -> Agent:
        """A real agent for ``bin_id``; ``public_key=""`` starts it without a trusted key."""
        cfg_path = self.tmp / f"{bin_id}.toml"
        local_model = self.tmp / f"{bin_id}-model.onnx"
        local_model.write_bytes(model.read_bytes())
        cfg_path.write_text(
            f'bin_id = "{bin_id}"\nmodel = "{local_model}"\n'
            f'[camera]\nsource = "{frames}"\ninterval_s = 0.25\njitter = 0.0\nburst = 1\ndiscard_frames = 0\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.port}\nbackoff_min_s = 0.2\nbackoff_max_s = 1.0\n'
            f'[outbox]\npath = "{self.tmp / (bin_id + ".db")}"\n'
            f"[stats]\ninterval_s = 1.0\n"
            f"[labelling]\nevery_n = {every_n}\nunsure = false\n"
            f"[updates]\n"
            + (
                f'public_key = "{self.public_key if public_key is None else public_key}"\n'
                if public_key != ""
                else ""
            )
            + f'base_url = "{self.runtime.http_url}"\n'
        )
        agent = Agent(load_toml(cfg_path, DeviceConfig))
        agent.start()
        self.agents[bin_id] = agent
        return agent

    def readings(self, bin_id: str, since_ts: int = 0) -> list[tuple[int, float | None, str]]:
        """(ts, fill, model) of the bin's stored readings, oldest first."""
        from sqlalchemy import select

        from binsight.server.db.models import Reading

        with self.runtime.sessions() as s:
            rows = s.execute(
                select(Reading.ts, Reading.fill, Reading.model)
                .where(Reading.bin_id == bin_id, Reading.ts >= since_ts)
                .order_by(Reading.ts)
            ).all()
        return [(int(t), f, str(m)) for t, f, m in rows]

    def latest_model(self, bin_id: str) -> str | None:
        rows = self.readings(bin_id)
        return rows[-1][2] if rows else None

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.runtime.stop()


def start_stack(port: int, tmp: Path, signing_key: tuple[Path, str], **rollout: Any) -> Stack:
    """A started ServerRuntime on the broker at ``port`` (SQLite in ``tmp``), admin and labeller tokens.

    ``signing_key`` is (the private key file, the one-line public key for devices); ``rollout``
    overrides ``[rollout]`` (canary bins, soak) over fast test defaults.
    """
    from binsight.server.auth import create_token
    from binsight.server.config import config_from_dict
    from binsight.server.runtime import ServerRuntime

    cfg = config_from_dict(
        {
            "database": f"sqlite:///{tmp / 'server.db'}",
            "mqtt": {"port": port, "client_id": f"retrain-{free_port()}"},
            "http": {"port": free_port()},
            "models": {"dir": str(tmp / "models")},
            "rollout": {
                "signing_key": str(signing_key[0]),
                "min_canary_readings": 2,
                "canary_soak_s": 0.0,
                "check_interval_s": 0.2,
                "min_heldout_labels": 1,  # the loop tests hold out a few bins of a small fleet
                **rollout,
            },
        }
    )
    runtime = ServerRuntime(cfg)
    runtime.start()
    with runtime.sessions() as s, s.begin():
        admin = create_token(s, "admin", "admin-test")
        labeller = create_token(s, "labeller", "labeller-test")
    return Stack(
        runtime,
        Api(runtime.http_url, admin),
        Api(runtime.http_url, labeller),
        signing_key[1],
        port,
        tmp,
    )


class ModelTopics:
    """A real MQTT subscriber to every bin's model topic: what each bin was ever told, in order."""

    def __init__(self, port: int) -> None:
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.seen: list[tuple[str, str | None]] = []  # (bin_id, version or None when cleared)
        self.payloads: list[tuple[str, bytes]] = []  # (bin_id, the retained announcement as sent)
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"models-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: (c.subscribe("binsight/+/model", qos=1), ready.set())
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert ready.wait(10), "could not subscribe to the model topics"

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        bin_id = msg.topic.split("/")[1]
        version = json.loads(msg.payload)["version"] if msg.payload else None
        with self._lock:
            self.seen.append((bin_id, version))
            self.payloads.append((bin_id, bytes(msg.payload)))

    def last_payload(self, bin_id: str) -> bytes:
        with self._lock:
            return [p for b, p in self.payloads if b == bin_id][-1]

    def publish(self, bin_id: str, payload: bytes) -> None:
        """Retain ``payload`` on the bin's model topic, as anyone with write access to it could."""
        self.client.publish(f"binsight/{bin_id}/model", payload, qos=1, retain=True).wait_for_publish(10)

    def told(self, bin_id: str) -> list[str | None]:
        with self._lock:
            return [v for b, v in self.seen if b == bin_id]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
