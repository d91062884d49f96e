"""/api/devices: health with the reason, seq gaps, events; commands need a live MQTT connection."""

from __future__ import annotations

import re

from server_helpers import Api, item, reading, stats
from sqlalchemy import update

from binsight.server.db.engine import now_ms
from binsight.server.db.models import Device
from binsight.server.ingest.store import BinRegistry, write_batch


def test_devices_health_and_gaps(api: Api) -> None:
    """An online device, one offline by last will and one silent for 3+ intervals, each with its reason."""
    with api.sessions() as s, s.begin():
        write_batch(
            s,
            [
                item("reading", "d-ok", reading("d-ok", 0)),
                item("reading", "d-ok", reading("d-ok", 3)),
                item("stats", "d-ok", stats("d-ok", interval_s=60, last_error="lens dirty")),
                item("available", "d-will", "online"),
                item("available", "d-quiet", "online"),
                item("stats", "d-quiet", stats("d-quiet", interval_s=60)),
            ],
            BinRegistry(),
            False,
            now_ms(),
        )
        write_batch(s, [item("available", "d-will", "offline")], BinRegistry(), False, now_ms())
        s.execute(update(Device).where(Device.bin_id == "d-quiet").values(last_seen=now_ms() - 200_000))
    devs = {d["bin_id"]: d for d in api.get("/api/devices", "operator").json()}
    assert devs["d-ok"]["online"] and devs["d-ok"]["reason"] is None
    assert devs["d-ok"]["seq_gaps"] == 2 and devs["d-ok"]["last_error"] == "lens dirty"
    assert devs["d-ok"]["outbox_depth"] == 3 and devs["d-ok"]["readings"] == 2
    assert not devs["d-will"]["online"] and "last will" in devs["d-will"]["reason"]
    assert not devs["d-quiet"]["online"] and re.search(r"silent for 20\d s", devs["d-quiet"]["reason"])
    assert "3 x interval 60 s" in devs["d-quiet"]["reason"]
    ev = api.get("/api/devices/d-will/events").json()
    assert [(e["kind"], e["state"]) for e in ev] == [("availability", "offline"), ("availability", "online")]
    offline_bins = {b["id"]: b["offline_reason"] for b in api.get("/api/bins?offline=true").json()}
    assert set(offline_bins) == {"d-will", "d-quiet"}


def test_command_validation(api: Api) -> None:
    """Unknown device 404, bad action 422, and 503 in an API-only process with no MQTT."""
    with api.sessions() as s, s.begin():
        write_batch(s, [item("reading", "d1", reading("d1", 0))], BinRegistry(), False, now_ms())
    assert api.post("/api/devices/nope/commands", json={"action": "capture"}).status_code == 404
    assert api.post("/api/devices/d1/commands", json={"action": "explode"}).status_code == 422
    assert api.post("/api/devices/d1/commands", json={"action": "set_interval"}).status_code == 422
    r = api.post("/api/devices/d1/commands", json={"action": "capture"}, role="operator")
    assert r.status_code == 503 and "MQTT" in r.json()["detail"]


def test_set_interval_bounds(api: Api) -> None:
    """set_interval takes 10 s .. 1 day; outside it (1e-9 s once gave 707 readings in 6 s), or not a
    finite number (JSON's NaN/Infinity tokens), is 422 naming the range, before anything is sent."""
    with api.sessions() as s, s.begin():
        write_batch(s, [item("reading", "d1", reading("d1", 0))], BinRegistry(), False, now_ms())
    for seconds in ("1e-9", "9.5", "0", "-60", "86401", "NaN", "Infinity", "-Infinity", "1e999"):
        body = f'{{"action": "set_interval", "interval_s": {seconds}}}'
        headers = {**api.h("operator"), "Content-Type": "application/json"}
        r = api.client.post("/api/devices/d1/commands", content=body, headers=headers)
        assert r.status_code == 422, (seconds, r.status_code, r.text)
        assert "interval_s" in r.json()["detail"] and "10 .. 86400 s" in r.json()["detail"], r.text
    for seconds in (10, 600, 86_400):  # in range: refused only for want of MQTT (API-only process)
        r = api.post("/api/devices/d1/commands", json={"action": "set_interval", "interval_s": seconds})
        assert r.status_code == 503, (seconds, r.text)
