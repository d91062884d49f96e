"""The whole loop on synthetic lid frames with the real broker and the real EfficientNet-Lite0:
three running agents send images, 30 are labelled through the HTTP API, a candidate is trained from
the server's export, compared with the active model, uploaded and promoted through the API; the
agents verify the signed release and switch (canary first), and their readings carry the new
version. A worse candidate is refused, accepted only when forced with a recorded reason, and one
rollback call re-announces the previous model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from retrain_support import ModelTopics, Stack, tiny_model, wait_until, write_frames

from binsight.training.synth import render_frame

pytestmark = [pytest.mark.broker, pytest.mark.torch, pytest.mark.slow]

BINS = ("bin-0000", "bin-0001", "bin-0002")
FRAMES = 12
LABELS_PER_BIN = 10


def _thumb(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.resize(grey, (40, 30), interpolation=cv2.INTER_AREA), dtype=np.float32)


def _label_what_you_see(
    stack: Stack, truth: dict[str, list[tuple[np.ndarray, float]]]
) -> list[tuple[str, float]]:
    """A labeller's work through the API: look at each queued image, give its fill depth.

    The 'looking' is finding the rendered frame the JPEG came from (nearest thumbnail of that bin).
    """
    code, queue = stack.labeller.call("GET", "/api/labels/queue?limit=500")
    assert code == 200
    done: list[tuple[str, float]] = []
    per_bin: dict[str, int] = dict.fromkeys(BINS, 0)
    for item in queue:
        b = item["bin_id"]
        if per_bin[b] >= LABELS_PER_BIN:
            continue
        code, jpeg = stack.labeller.call("GET", f"/api/images/{item['image_id']}")
        assert code == 200
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        thumb = _thumb(img)
        fill = min(truth[b], key=lambda t: float(np.mean((t[0] - thumb) ** 2)))[1]
        code, _ = stack.labeller.call("POST", f"/api/images/{item['image_id']}/label", {"fill": fill})
        assert code == 200
        per_bin[b] += 1
        done.append((b, fill))
    return done


@pytest.mark.timeout(600)  # ~2 min alone; several times that when the shared machine is saturated
def test_label_retrain_promote_switch_refuse_rollback(
    make_stack: Any, tmp_path: Path, lite0: Any, feature_cache: Path
) -> None:
    """Label 30 -> retrain from the server -> promote -> agents switch; worse refused; rollback."""
    from binsight.server.labels import export_folder
    from binsight.training.from_server import (
        compare_models,
        fit_from_server,
        read_export_context,
        upload_model,
    )

    stack: Stack = make_stack(canary_bins=[BINS[0]])
    truth: dict[str, list[tuple[np.ndarray, float]]] = {}
    folders: dict[str, Path] = {}
    for k, b in enumerate(BINS):
        fills = [round((i + 0.5) / FRAMES, 3) for i in range(FRAMES)]
        frames = [render_frame(k, f, seed=11, frame=i) for i, f in enumerate(fills)]
        truth[b] = [(_thumb(f), fill) for f, fill in zip(frames, fills, strict=True)]
        folders[b] = write_frames(tmp_path / "frames" / b, frames)
    factory = tiny_model(tmp_path / "factory.onnx", "v1-factory", a=0.0, b=0.05)
    for b in BINS:
        stack.start_agent(b, folders[b], factory, every_n=1)
    topics = ModelTopics(stack.port)
    try:
        # The factory model is the first one promoted: nothing to compare with, so no gate.
        v1 = str(upload_model(stack.admin.base, stack.admin.token, factory, {})["version"])
        code, _ = stack.admin.call("POST", f"/api/models/{v1}/promote", {})
        assert code == 200
        wait_until(lambda: stack.admin.call("GET", "/api/rollout")[1]["rollout"]["state"] == "all", 30)

        # Devices send every capture's image; 30 of them get a fill label through the API.
        wait_until(
            lambda: len(stack.labeller.call("GET", "/api/labels/queue?limit=500")[1]) >= len(BINS) * FRAMES,
            60,
            "every distinct frame received as a labelling image",
        )
        labelled = _label_what_you_see(stack, truth)
        assert len(labelled) == 30
        code, stats = stack.labeller.call("GET", "/api/labels/stats")
        assert stats["total"] == 30

        # Retrain from the server's export, compare with the active model, upload the candidate.
        work = tmp_path / "work"
        report = fit_from_server(
            stack.admin.base,
            tmp_path / "candidate.onnx",
            token=stack.admin.token,
            backbone=lite0,
            cache_dir=feature_cache,
            work_dir=work,
            report_path=tmp_path / "report.json",
            upload=True,
            progress=False,
        )
        comp = report["comparison"]
        assert comp["active"]["version"] == v1 and comp["n"] == LABELS_PER_BIN
        assert comp["candidate"]["mae"] < comp["active"]["mae"]
        assert set(comp["candidate"]["per_site"]) == set(comp["active"]["per_site"]) == {"(none)"}
        assert json.loads((tmp_path / "report.json").read_text())["comparison"] == comp
        v2 = report["uploaded"]["version"]
        assert v2 == report["export"]["model_version"]

        # Promote through the API: the gate passes, the canary switches first, then every bin.
        code, body = stack.admin.call("POST", f"/api/models/{v2}/promote", {})
        assert code == 200, body
        assert body["comparison"]["gate_ok"] is True and body["canary_bins"] == [BINS[0]]
        check = body["comparison"]["server_check"]  # the server re-ran both models on its own labels
        assert check["checked"] and check["n"] == LABELS_PER_BIN
        assert check["candidate_mae"] == pytest.approx(comp["candidate"]["mae"], abs=0.02)
        assert check["active_mae"] == pytest.approx(comp["active"]["mae"], abs=0.02)
        switched = time.time() * 1000
        wait_until(lambda: stack.latest_model(BINS[0]) == v2, 90, "canary reading on the new model")
        wait_until(lambda: all(stack.latest_model(b) == v2 for b in BINS), 90, "every bin on the new model")
        code, events = stack.admin.call("GET", f"/api/devices/{BINS[0]}/events")
        states = [e["state"] for e in events if e["kind"] == "model" and e["ref"] == v2]
        assert {"downloading", "verified", "active"} <= set(states)
        for b in BINS:
            after = [f for ts, f, m in stack.readings(b, int(switched)) if m == v2]
            assert after and all(f is not None for f in after)
        assert [b for b in BINS if topics.told(b)[-1] != v2] == []

        # A worse candidate (brightness inverted), compared on the same held-out labels: refused.
        worse = tiny_model(tmp_path / "worse.onnx", "v3-worse", a=-1.0, b=1.0)
        active_file = stack.runtime.config.models.dir / f"{v2}.onnx"
        worse_comp = compare_models(worse, active_file, work / "labels", comp["test_bins"], {})
        assert worse_comp["candidate"]["mae"] > worse_comp["active"]["mae"]
        v3 = upload_model(stack.admin.base, stack.admin.token, worse, {"comparison": worse_comp})["version"]
        code, body = stack.admin.call("POST", f"/api/models/{v3}/promote", {})
        assert code == 409 and "worse" in body["detail"]
        # A report that lies (claims the worse model is better) is caught by the server's own re-run.
        liar = tiny_model(tmp_path / "liar.onnx", "v3-liar", a=-1.0, b=1.0)
        forged = json.loads(json.dumps(worse_comp))
        forged["candidate"].update(version="v3-liar", mae=0.001)
        v3b = upload_model(stack.admin.base, stack.admin.token, liar, {"comparison": forged})["version"]
        code, body = stack.admin.call("POST", f"/api/models/{v3b}/promote", {})
        assert code == 409 and "labels stored here" in body["detail"]
        code, body = stack.admin.call("POST", f"/api/models/{v3}/promote", {"force": True})
        assert code == 422
        code, body = stack.admin.call(
            "POST", f"/api/models/{v3}/promote", {"force": True, "reason": "operator override in a test"}
        )
        assert code == 200 and body["forced"] is True
        code, state = stack.admin.call("GET", "/api/rollout")
        assert state["rollout"]["reason"] == "operator override in a test" and state["active"] == v3

        # Rollback in one action: every bin is told v2 again.
        code, body = stack.admin.call("POST", "/api/models/rollback")
        assert code == 200 and body["version"] == v2
        # The announcements are published before the reply; they reach this subscriber a moment later.
        wait_until(lambda: all(topics.told(b)[-1] == v2 for b in BINS), 10, "every bin told v2 again")
        wait_until(lambda: all(stack.latest_model(b) == v2 for b in BINS), 90, "every bin on v2 again")

        # `binsight server export-labels` gives the same labelled set and the active model's file.
        folder = tmp_path / "exported"
        with stack.runtime.sessions() as s:
            export_folder(s, folder, stack.runtime.config.models.dir)
        active_path, _sites = read_export_context(folder)
        assert active_path is not None and active_path.read_bytes() == active_file.read_bytes()
        assert len((folder / "labels.csv").read_text().splitlines()) == 1 + 30
    finally:
        topics.close()
