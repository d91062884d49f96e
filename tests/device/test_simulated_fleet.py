"""Simulated fleets: real agents on image folders, one per bin, with an accelerated clock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from device_support import build_model, load_config, scene, write_config, write_images

from binsight.cli import main
from binsight.device.simulate import SimulatedFleet

pytestmark = pytest.mark.broker


def test_fleet_per_bin_folders_and_time_scale(
    tmp_path: Path, mosquitto, model_v1: Path, collector_factory
) -> None:
    """Each bin reads its own folder; with time_scale 3600 readings' ts advance ~an hour per second."""
    folders = {
        "bin-low": write_images(tmp_path / "low", [scene(60, i) for i in range(3)]),
        "bin-high": write_images(tmp_path / "high", [scene(200, i) for i in range(3)]),
    }
    template = load_config(
        write_config(tmp_path, bin_id="tpl", source="0", model=model_v1, port=mosquitto.port)
    )
    col = collector_factory(mosquitto.port)
    fleet = SimulatedFleet(
        folders, template=template, state_dir=tmp_path / "sim", interval_s=0.2, time_scale=3600.0
    )
    with fleet:
        col.wait_for(lambda: sum(r["bin_id"] == "bin-high" for r in col.payloads("reading")) >= 4)
    readings = col.payloads("reading")
    low = [r for r in readings if r["bin_id"] == "bin-low"]
    high = [r for r in readings if r["bin_id"] == "bin-high"]
    assert low and high
    assert max(r["fill"] for r in low) < 0.3 < min(r["fill"] for r in high)
    span_ms = high[-1]["ts"] - high[0]["ts"]
    wall_s = 0.2 * (len(high) - 1)
    assert span_ms > 0.5 * wall_s * 3600 * 1000, "ts must advance time_scale times faster"
    assert (tmp_path / "sim" / "bin-low" / "outbox.db").exists()
    assert fleet.agents[0].model is fleet.agents[1].model, "one ONNX session shared by the fleet"
    assert {p.decode() for p in col.raw("available")} >= {"online", "offline"}
    # A second fleet on another template model starts on that model, not on the stale copy.
    other = tmp_path / "other.onnx"
    build_model(other, "v-other")
    template2 = load_config(write_config(tmp_path, bin_id="tpl2", source="0", model=other, port=1))
    fleet2 = SimulatedFleet(folders, template=template2, state_dir=tmp_path / "sim")
    fleet2.agents[0].load_initial_model()
    assert fleet2.agents[0].model is not None and fleet2.agents[0].model.version == "v-other"
    for a in fleet2.agents:
        a.outbox.close()


def test_simulate_command(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, collector_factory, capsys
) -> None:
    """``binsight device simulate --bins 3 --images DIR`` runs three agents sharing one folder."""
    col = collector_factory(mosquitto.port)
    t0 = time.monotonic()
    rc = main(
        ["device", "simulate", "--bins", "3", "--images", str(scenes), "--model", str(model_v1),
         "--broker", f"127.0.0.1:{mosquitto.port}", "--state-dir", str(tmp_path / "s"),
         "--interval", "0.3", "--duration", "2"]
    )  # fmt: skip
    assert rc == 0 and time.monotonic() - t0 < 30
    col.wait_for(
        lambda: {r["bin_id"] for r in col.payloads("reading")} == {"bin-0001", "bin-0002", "bin-0003"}
    )
    first = {}
    for r in col.payloads("reading"):
        first.setdefault(r["bin_id"], r["fill"])
    assert len(set(first.values())) == 3, "bins sharing a folder start at different images"


def test_simulate_bad_arguments(tmp_path: Path, model_v1: Path, capsys) -> None:
    """Missing images folder or model: exit 1 naming it."""
    assert (
        main(
            ["device", "simulate", "--bins", "2", "--images", str(tmp_path / "no"), "--model", str(model_v1)]
        )
        == 1
    )
    assert "not a folder" in capsys.readouterr().err
    assert main(["device", "simulate", "--bins", "2", "--images", str(tmp_path), "--model", "nope.onnx"]) == 1
    assert "does not exist" in capsys.readouterr().err
