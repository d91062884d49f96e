"""Device test helpers: tiny real ONNX models (model-file contract), test images, an MQTT collector.

(A plain module, not conftest: test modules import from it by its unique name.)

The models are built here with the ``onnx`` helper API (tests have every extra; the agent itself
never imports ``onnx``). The regression model's fill is the mean brightness of the frame, so a
test can choose the fill it expects by choosing the image.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import paho.mqtt.client as mqtt
from onnx import TensorProto, helper
from paho.mqtt.enums import CallbackAPIVersion

from binsight.config import load_toml
from binsight.device.config import DeviceConfig

INPUT_SIZE = (32, 32)


def build_model(
    path: Path,
    version: str,
    *,
    task: str = "regression",
    invert: bool = False,
    scale: float = 1.0,
    classes: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    class_head: list[str] | None = None,
) -> Path:
    """Write a tiny model following docs/contracts.md "The model file".

    Regression: ``fill = clip(scale * mean(image) / 255)`` (``1 - that`` when ``invert``);
    ``scale`` > 1 without clipping gives an insane model. Classification: softmax over
    ``[1 - mean, 0.5, mean] * 10``. Regression with ``class_head`` (three class names): a fill model
    with a class head, both outputs, the class head that same softmax.
    """
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Div", ["m", "c255"], ["b"]),
    ]
    inits = [
        helper.make_tensor("c255", TensorProto.FLOAT, [], [255.0 / scale]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    if task == "regression":
        if invert:
            nodes.append(helper.make_node("Sub", ["one", "b"], ["b2"]))
        else:
            nodes.append(helper.make_node("Identity", ["b"], ["b2"]))
        if scale > 1.0:
            nodes.append(helper.make_node("Identity", ["b2"], ["fill"]))  # deliberately unclipped
        else:
            nodes.append(helper.make_node("Clip", ["b2", "zero", "one"], ["fill"]))
        outs = [helper.make_tensor_value_info("fill", TensorProto.FLOAT, ["N"])]
    else:
        outs = []
    if task != "regression" or class_head is not None:
        classes = class_head or classes or ["empty", "half", "full"]
        inits += [
            helper.make_tensor("half", TensorProto.FLOAT, [1], [0.5]),
            helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
            helper.make_tensor("ax1", TensorProto.INT64, [1], [1]),
        ]
        nodes += [
            helper.make_node("Sub", ["one", "b"], ["inv"]),
            helper.make_node("Unsqueeze", ["b", "ax1"], ["b_"]),
            helper.make_node("Unsqueeze", ["inv", "ax1"], ["inv_"]),
            helper.make_node("Mul", ["b", "zero"], ["z"]),
            helper.make_node("Add", ["z", "half"], ["h"]),
            helper.make_node("Unsqueeze", ["h", "ax1"], ["h_"]),
            helper.make_node("Concat", ["inv_", "h_", "b_"], ["logits0"], axis=1),
            helper.make_node("Mul", ["logits0", "ten"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ]
        probs = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(classes)])
        outs.append(probs)
    inp = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])
    graph = helper.make_graph(nodes, "tiny", [inp], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    meta = {
        "binsight.task": task,
        "binsight.input_size": json.dumps(list(INPUT_SIZE)),
        "binsight.backbone": "tiny-test",
        "binsight.features": "mean",
        "binsight.binsight_version": "0.1.0",
        "binsight.model_version": version,
        "binsight.dataset_fingerprint": "0" * 64,
        "binsight.metrics": "{}",
        "binsight.created_at": "2026-11-29T22:00:00Z",
        "binsight.precision": "fp32",
    }
    if task == "classification" or class_head is not None:
        meta["binsight.classes"] = json.dumps(classes)
    meta.update(metadata or {})
    helper.set_model_props(model, {k: v for k, v in meta.items() if v is not None})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def scene(brightness: float, seed: int = 0, size: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A textured BGR image whose mean grey level is about ``brightness`` (0..255): passes the gate."""
    rng = np.random.default_rng(seed)
    h, w = size
    blocks = rng.integers(-40, 41, size=(h // 8, w // 8, 3)).astype(np.float32)
    tex = cv2.resize(blocks, (w, h), interpolation=cv2.INTER_NEAREST)
    # Large shapes too, as in a real bin: blurring keeps them, so blur is told apart from blocked.
    big = np.zeros((h, w, 3), np.float32)
    big[: h // 2, : w // 2] = 40
    big[h // 2 :, w // 2 :] = -40
    img = np.clip(brightness + tex + big, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def dark(seed: int = 0) -> np.ndarray:
    return (scene(128, seed).astype(np.float32) * 0.04).astype(np.uint8)


def blurred(seed: int = 0) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(scene(128, seed), (0, 0), 12), dtype=np.uint8)


def blank(level: int = 128) -> np.ndarray:
    return np.full((240, 320, 3), level, np.uint8)


def overexposed(seed: int = 0) -> np.ndarray:
    img = scene(128, seed)
    img[:, : img.shape[1] * 3 // 4] = 255
    return img


def write_images(folder: Path, frames: list[np.ndarray], prefix: str = "img") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{prefix}{i:05d}.png"), frame)
    return folder


def write_config(
    tmp: Path, *, bin_id: str, source: Path | str, model: Path, port: int, extra: str = "", **camera: Any
) -> Path:
    """A device.toml for tests: fast schedule, burst 1, short backoffs."""
    cam = {"interval_s": 0.2, "jitter": 0.0, "burst": 1, "discard_frames": 0, **camera}
    cam_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cam.items())
    path = tmp / f"{bin_id}.toml"
    path.write_text(
        f'bin_id = "{bin_id}"\nmodel = "{model}"\n'
        f'[camera]\nsource = "{source}"\n{cam_lines}\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\nbackoff_min_s = 0.2\nbackoff_max_s = 1.0\n'
        f'[outbox]\npath = "{tmp / (bin_id + ".db")}"\n'
        f"[stats]\ninterval_s = 1.0\n"
        f"[labelling]\nevery_n = 0\n"
        f"{extra}\n"
    )
    return path


def load_config(path: Path) -> DeviceConfig:
    return load_toml(path, DeviceConfig)


class Collector:
    """A real MQTT subscriber recording every message under ``binsight/#``."""

    def __init__(self, port: int, topic: str = "binsight/#", persistent: bool = False) -> None:
        """``persistent``: a durable session, so the broker keeps messages across its restarts."""
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"collector-{time.monotonic_ns()}",
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
        )
        self.client.on_connect = lambda c, *_: (c.subscribe(topic, qos=1), self._ready.set())
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "collector could not subscribe"
        time.sleep(0.1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/" + kind) and p[:1] == b"{"]

    def raw(self, kind: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith("/" + kind)]

    def wait_for(self, pred: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.05)
        raise AssertionError(f"condition not met in {timeout}s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def distinct_seqs(readings: list[dict[str, Any]]) -> list[int]:
    """Seqs in first-arrival order, duplicates (QoS 1 resends) removed."""
    seen: set[int] = set()
    out = []
    for r in readings:
        if r["seq"] not in seen:
            seen.add(r["seq"])
            out.append(r["seq"])
    return out


def reconfigure_broker(broker: Any, extra: str) -> None:
    """Restart the shared fixture's private Mosquitto with more config lines."""
    broker.stop()
    broker.extra_conf += "\n" + extra + "\n"
    broker.start()
