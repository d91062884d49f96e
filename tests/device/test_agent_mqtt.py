"""The agent end to end against a real Mosquitto: readings, outages, quality, commands, stats."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from device_support import (
    Collector,
    blank,
    blurred,
    dark,
    distinct_seqs,
    load_config,
    overexposed,
    scene,
    write_config,
    write_images,
)

from binsight.device.agent import Agent
from binsight.protocol import LabelImage, Reading, Stats

pytestmark = pytest.mark.broker


@pytest.fixture
def agents() -> list[Agent]:
    made: list[Agent] = []
    yield made  # type: ignore[misc]
    for a in made:
        if a.running or a.link.alive:
            a.stop()


def test_readings_flow_with_online_and_stats(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, collector_factory, agents: list[Agent]
) -> None:
    """Readings arrive in seq order with the model version; online is retained; stats come."""
    col: Collector = collector_factory(mosquitto.port)
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-a", source=scenes, model=model_v1, port=mosquitto.port)
    )
    agent = Agent(cfg)
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("reading")) >= 5 and len(col.payloads("stats")) >= 1)
    readings = [Reading.model_validate(r) for r in col.payloads("reading")]
    assert [r.seq for r in readings[:5]] == [0, 1, 2, 3, 4]
    assert all(r.model == "v1" and r.quality == "ok" and not r.historical for r in readings[:5])
    # The tiny model's fill is the mean brightness: the first scene is about 80/255.
    assert readings[0].fill == pytest.approx(80 / 255, abs=0.03)
    stats = Stats.model_validate(col.payloads("stats")[0])
    assert stats.model == "v1" and stats.camera_ok and stats.interval_s == pytest.approx(0.2)
    assert stats.rss_mb is not None and stats.rss_mb > 0
    assert col.raw("available")[-1] == b"online"
    agent.stop()
    col.wait_for(lambda: col.raw("available")[-1] == b"offline")


def test_outage_readings_all_arrive_in_order_flagged_historical(
    tmp_path: Path, durable_mosquitto, scenes: Path, model_v1: Path, collector_factory, agents: list[Agent]
) -> None:
    """Broker stopped while readings are captured, then restarted: all arrive, in seq order,
    the ones captured during the outage flagged historical (the 30 s / 50 readings scenario,
    compressed: 0.1 s interval, outage of about 5 s)."""
    cfg_path = write_config(
        tmp_path, bin_id="bin-out", source=scenes, model=model_v1, port=durable_mosquitto.port, interval_s=0.1
    )
    # A durable subscriber (like the server's ingest): it reconnects and misses nothing.
    col = collector_factory(durable_mosquitto.port, persistent=True)
    agent = Agent(load_config(cfg_path))
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("reading")) >= 5)
    durable_mosquitto.stop()
    pre_outage = col.payloads("reading")
    before = agent.outbox.next_seq
    deadline = time.monotonic() + 30
    while agent.outbox.next_seq - before < 50 and time.monotonic() < deadline:
        time.sleep(0.1)
    during = agent.outbox.next_seq - before
    assert during >= 50, f"only {during} readings captured during the outage"
    assert agent.outbox.depth() >= 45
    assert not agent.link.connected
    durable_mosquitto.start()
    last = agent.outbox.next_seq - 1
    col.wait_for(lambda: any(r["seq"] >= last for r in col.payloads("reading")), timeout=30)
    agent.stop()
    readings = col.payloads("reading")
    seqs = distinct_seqs(readings)
    assert sorted(seqs) == list(range(len(seqs))), "a reading went missing"
    assert seqs == sorted(seqs), "readings arrived out of seq order"
    outage = [r for r in readings if before <= r["seq"] < before + during]
    assert {r["seq"] for r in outage} == set(range(before, before + during))
    assert all(r["historical"] for r in outage), "readings captured offline must be flagged historical"
    # Everything delivered before the outage went out live. (A reading in flight when the broker
    # died is sent again after it, as historical; the server deduplicates on seq.)
    assert pre_outage and not any(r["historical"] for r in pre_outage)


@pytest.mark.parametrize(
    ("make", "reason"),
    [(dark, "dark"), (blurred, "blurred"), (blank, "blocked"), (overexposed, "overexposed")],
)
def test_unusable_frames_give_null_fill_with_reason(
    tmp_path: Path,
    mosquitto,
    model_v1: Path,
    collector_factory,
    agents: list[Agent],
    make: Callable[[], object],
    reason: str,
) -> None:
    """Dark, blurred, blank and overexposed frames give fill null and the right reason."""
    folder = write_images(tmp_path / "bad", [make()])  # type: ignore[list-item]
    col = collector_factory(mosquitto.port)
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-q", source=folder, model=model_v1, port=mosquitto.port)
    )
    agent = Agent(cfg)
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("reading")) >= 2)
    agent.stop()
    for r in col.payloads("reading"):
        assert r["fill"] is None and r["quality"] == reason


def test_burst_median_ignores_a_hand_over_the_lens(tmp_path: Path, model_v1: Path) -> None:
    """A burst with one blocked frame still gives a reading: the median of the usable ones."""

    class Burst:
        live = True

        def open(self) -> None:
            pass

        def close(self) -> None:
            pass

        def read_burst(self, n: int, gap_s: float) -> list:
            return [scene(100, 1), blank(20), scene(110, 2)][:n]

    cfg = load_config(
        write_config(tmp_path, bin_id="bin-b", source="0", model=model_v1, port=1, burst=3, burst_gap_s=0.0)
    )
    agent = Agent(cfg, source=Burst())
    agent.load_initial_model()
    result = agent.capture()
    assert result.reading is not None and result.reading.quality == "ok"
    assert result.reading.fill == pytest.approx(105 / 255, abs=0.03)
    assert result.reading.spread is not None and result.reading.spread > 0
    agent.outbox.close()


def test_camera_failure_is_retried_and_reported(
    tmp_path: Path, mosquitto, model_v1: Path, collector_factory, agents: list[Agent]
) -> None:
    """An empty image folder: camera_error readings, camera_ok false in stats, recovery when images appear."""
    folder = tmp_path / "empty"
    folder.mkdir()
    col = collector_factory(mosquitto.port)
    cfg = load_config(
        write_config(
            tmp_path,
            bin_id="bin-cam",
            source=folder,
            model=model_v1,
            port=mosquitto.port,
            interval_s=0.5,
            retry_min_s=0.2,
            retry_max_s=0.4,
        )
    )
    agent = Agent(cfg)
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: any(r["quality"] == "camera_error" for r in col.payloads("reading")))
    col.wait_for(lambda: any(not s["camera_ok"] for s in col.payloads("stats")))
    assert "holds no images" in (agent.last_error or "")
    write_images(folder, [scene(120)])
    col.wait_for(lambda: any(r["quality"] == "ok" for r in col.payloads("reading")))
    assert agent.running and agent.camera_ok
    assert agent.last_error is None, "a fixed camera is no longer reported as an error"


def test_commands_capture_image_interval_stats(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, collector_factory, agents: list[Agent]
) -> None:
    """Each command runs and is answered with an Event carrying its id; a malformed one fails."""
    col = collector_factory(mosquitto.port)
    cfg = load_config(
        write_config(
            tmp_path, bin_id="bin-c", source=scenes, model=model_v1, port=mosquitto.port, interval_s=60
        )
    )
    agent = Agent(cfg)
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("reading")) >= 1)  # the first capture runs at start
    pub = col.client
    topic = "binsight/bin-c/cmd"
    pub.publish(topic, json.dumps({"id": "c1", "action": "capture"}), qos=1)
    pub.publish(topic, json.dumps({"id": "c2", "action": "send_image", "reason": "coverage"}), qos=1)
    pub.publish(topic, json.dumps({"id": "c3", "action": "set_interval", "interval_s": 3600}), qos=1)
    pub.publish(topic, json.dumps({"id": "c4", "action": "send_stats"}), qos=1)
    pub.publish(topic, b'{"id": "c5", "action": "explode"}', qos=1)
    col.wait_for(lambda: len(col.payloads("event")) >= 5)
    events = {e["ref"]: e for e in col.payloads("event")}
    assert [events[c]["state"] for c in ("c1", "c2", "c3", "c4")] == ["ok"] * 4
    failed = [e for e in col.payloads("event") if e["state"] == "failed"]
    assert failed and "action" in failed[0]["detail"]
    col.wait_for(lambda: len(col.payloads("image")) >= 1)
    image = LabelImage.model_validate(col.payloads("image")[0])
    assert image.reason == "coverage" and image.model == "v1"
    assert agent.interval_s == 3600
    assert len(col.payloads("reading")) >= 3
    assert agent.outbox.get_setting("interval_s") == "3600.0@60.0"
    agent.stop()
    again = Agent(cfg)
    assert again.interval_s == 3600, "the commanded interval survives a restart"
    again.outbox.close()
    edited = cfg.model_copy(update={"camera": cfg.camera.model_copy(update={"interval_s": 30.0})})
    again = Agent(edited)
    assert again.interval_s == 30, "until device.toml's own interval changes"
    again.outbox.close()


def test_periodic_and_unsure_label_images_are_capped(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, collector_factory, agents: list[Agent]
) -> None:
    """Every Nth capture sends a JPEG no larger than labelling.max_bytes."""
    col = collector_factory(mosquitto.port)
    cfg_path = write_config(
        tmp_path, bin_id="bin-l", source=scenes, model=model_v1, port=mosquitto.port, interval_s=0.05
    )
    text = cfg_path.read_text().replace("every_n = 0", "every_n = 3\nmax_bytes = 10000\nmax_side = 200")
    cfg_path.write_text(text)
    agent = Agent(load_config(cfg_path))
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("image")) >= 2)
    agent.stop()
    import base64

    for img in col.payloads("image"):
        msg = LabelImage.model_validate(img)
        assert msg.reason == "periodic" and (msg.seq + 1) % 3 == 0
        jpeg = base64.b64decode(msg.jpeg_b64)
        assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= 10000


def test_folder_without_loop_replays_once_then_exits(
    tmp_path: Path, mosquitto, model_v1: Path, collector_factory
) -> None:
    """Back-testing: camera.loop = false reads each image once, drains the outbox and returns 0."""
    import threading

    from binsight.device.agent import run_agent

    folder = write_images(tmp_path / "bt", [scene(60 + 30 * i, i) for i in range(4)])
    col = collector_factory(mosquitto.port)
    port = mosquitto.port
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-bt", source=folder, model=model_v1, port=port, loop=False)
    )
    assert run_agent(cfg, threading.Event()) == 0
    col.wait_for(lambda: len(col.payloads("reading")) >= 4)
    fills = [r["fill"] for r in col.payloads("reading")]
    assert len(fills) == 4 and fills == sorted(fills)


def test_classification_model_gives_label_and_fill(tmp_path: Path) -> None:
    """With a classification model the reading carries the majority label and the expected fill;
    a burst whose frames disagree makes the capture an "unsure" labelling image."""
    from device_support import build_model

    class Burst:
        live = True

        def open(self) -> None:
            pass

        def close(self) -> None:
            pass

        def read_burst(self, n: int, gap_s: float) -> list:
            return [scene(30, 1), scene(35, 2), scene(128, 3)][:n]

    model = build_model(tmp_path / "c.onnx", "c1", task="classification")
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-cl", source="0", model=model, port=1, burst=3, burst_gap_s=0.0)
    )
    agent = Agent(cfg, source=Burst())
    agent.load_initial_model()
    reading = agent.capture_and_send()
    assert reading is not None and reading.quality == "ok" and reading.model == "c1"
    assert reading.label == "empty" and reading.fill is not None and reading.fill < 0.2
    images = [r for r in agent.outbox.after(0, 10) if r.kind == "image"]
    assert len(images) == 1 and LabelImage.model_validate_json(images[0].payload).reason == "unsure"
    agent.outbox.close()


def test_class_head_readings_carry_class_beside_fill(
    tmp_path: Path, mosquitto, scenes: Path, collector_factory, agents: list[Agent]
) -> None:
    """A fill model with a class head: each reading over MQTT has its fill, its class and that class's
    probability, and validates strictly as the server validates it."""
    from device_support import build_model

    model = build_model(tmp_path / "two.onnx", "two1", class_head=["clean", "contaminated", "overflowing"])
    col: Collector = collector_factory(mosquitto.port)
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-cls", source=scenes, model=model, port=mosquitto.port)
    )
    agent = Agent(cfg)
    agents.append(agent)
    agent.start()
    col.wait_for(lambda: len(col.payloads("reading")) >= 2)
    raw = col.raw("reading")[0]
    reading = Reading.model_validate_json(raw, strict=True)
    # The first scene is dark (about 80/255): fill ~0.31 and the tiny class head's first class.
    assert reading.fill == pytest.approx(80 / 255, abs=0.03)
    assert reading.label == "clean" and reading.label_prob is not None and 0.5 < reading.label_prob <= 1.0
    agent.stop()


def test_fill_only_reading_has_no_label_prob(tmp_path: Path, model_v1: Path) -> None:
    """A fill model without a class head sends readings exactly as before: no ``label_prob`` key."""
    from binsight.device.agent import Agent as _Agent

    cfg = load_config(write_config(tmp_path, bin_id="bin-f", source="0", model=model_v1, port=1))
    agent = _Agent(cfg, source=_OneFrame())
    agent.load_initial_model()
    reading = agent.capture_and_send()
    assert reading is not None and reading.label is None
    assert "label_prob" not in json.loads(reading.model_dump_json())
    agent.outbox.close()


class _OneFrame:
    live = True

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read_burst(self, n: int, gap_s: float) -> list:
        return [scene(90, 1)] * n
