"""/api/bins and /api/bins/{id}/history: latest fill, forecast, health, collections."""

from __future__ import annotations

from server_helpers import Api, item, reading

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.engine import now_ms
from binsight.server.ingest.store import BinRegistry, write_batch

HOUR = 3_600_000


def _seed(api: Api) -> int:
    """b-fast fills 0.05/h since emptied 10 h ago; b-slow barely fills; b-dark has only unusable readings."""
    now = now_ms()
    rows = [
        BinRow("b-fast", 52.37, 4.89, 1000, site="north"),
        BinRow("b-slow", 52.38, 4.9, 1000, site="south"),
        BinRow("b-dark", 52.39, 4.91, 1000, site="south"),
    ]
    items = []
    # 8 h before the collection: too short to count as a day of history, so the rate is the cycle's own.
    for seq, h in enumerate(range(18, 0, -1)):
        t = now - h * HOUR
        fast = 0.9 + 0.005 * (18 - h) if h > 10 else 0.02 + 0.1 * (10 - h) / 2
        items.append(item("reading", "b-fast", reading("b-fast", seq, min(fast, 1.0), ts=t)))
        items.append(item("reading", "b-slow", reading("b-slow", seq, 0.1 + 0.001 * (18 - h), ts=t)))
    items.append(item("reading", "b-dark", reading("b-dark", 0, None, ts=now)))
    with api.sessions() as s, s.begin():
        import_bins(s, rows)
        write_batch(s, items, BinRegistry(), False, now)
    return now


def test_list_bins(api: Api) -> None:
    """Each bin has position, latest fill, forecast (or null) and health; filters work."""
    now = _seed(api)
    r = api.get("/api/bins", "labeller")
    assert r.status_code == 200
    bins = {b["id"]: b for b in r.json()}
    assert set(bins) == {"b-fast", "b-slow", "b-dark"}
    fast = bins["b-fast"]
    assert fast["lat"] == 52.37 and fast["site"] == "north" and fast["capacity_l"] == 1000
    assert abs(fast["fill"] - 0.47) < 1e-9 and fast["fill_ts"] == now - HOUR and fast["quality"] == "ok"
    fc = fast["forecast"]
    assert fc["rate_per_day"] > 0.8  # ~0.05 per hour since the collection = 1.2/day
    assert fc["low_ts"] <= fc["full_ts"] <= fc["high_ts"]
    assert now + 2 * HOUR < fc["full_ts"] < now + 14 * HOUR  # 0.8 at ~0.05/h from ~0.5
    slow = bins["b-slow"]["forecast"]
    assert slow["full_ts"] is None or slow["full_ts"] > now + 100 * 24 * HOUR or slow["rate_per_day"] < 0.05
    assert bins["b-dark"]["fill"] is None and bins["b-dark"]["quality"] == "dark"
    assert bins["b-dark"]["forecast"] is None
    assert all(b["online"] for b in bins.values())
    assert [b["id"] for b in api.get("/api/bins?site=south").json()] == ["b-dark", "b-slow"]
    assert [b["id"] for b in api.get("/api/bins?min_fill=0.3").json()] == ["b-fast"]
    assert api.get("/api/bins?offline=true").json() == []


def test_history(api: Api) -> None:
    """History returns the readings, the collection (sharp drop) and a forecast curve."""
    now = _seed(api)
    r = api.get("/api/bins/b-fast/history?days=2", "operator")
    assert r.status_code == 200
    h = r.json()
    assert len(h["readings"]) == 18
    assert h["collections"] == [now - 10 * HOUR]
    pts = h["forecast"]["points"]
    assert pts[0]["ts"] >= now - 1000 and pts[-1]["fill"] >= pts[0]["fill"]
    assert api.get("/api/bins/nope/history").status_code == 404


def test_raw_and_smoothed_fill(api: Api) -> None:
    """A wild last frame: /api/bins has it as ``fill`` and the bin's level as ``fill_smooth``, which
    ``min_fill`` filters on; history gives both for every reading."""
    now = now_ms()
    fills = [0.3, 0.31, 0.3, 0.32, 0.31, 0.32, 0.95]  # ten minutes apart; the last one wild
    items = [
        item("reading", "b-wild", reading("b-wild", seq, f, ts=now - (len(fills) - seq) * 600_000))
        for seq, f in enumerate(fills)
    ]
    with api.sessions() as s, s.begin():
        import_bins(s, [BinRow("b-wild", 52.37, 4.89, 1000)])
        write_batch(s, items, BinRegistry(), False, now)
    (b,) = [b for b in api.get("/api/bins", "labeller").json() if b["id"] == "b-wild"]
    assert b["fill"] == 0.95
    assert 0.29 < b["fill_smooth"] < 0.34
    assert [x["id"] for x in api.get("/api/bins?min_fill=0.5").json()] == []
    h = api.get("/api/bins/b-wild/history?days=1", "operator").json()
    assert [r["fill"] for r in h["readings"]] == fills
    smooth = [r["fill_smooth"] for r in h["readings"]]
    assert all(v is not None for v in smooth) and smooth == sorted(smooth)
    assert smooth[-1] == b["fill_smooth"]


def test_bins_carry_the_latest_class_and_flag(api: Api) -> None:
    """The latest usable reading's class and probability come with each bin; ``overflowing`` and
    ``contaminated`` flag it, ``clean`` does not; a later unusable reading keeps the last usable class."""
    now = now_ms()
    with api.sessions() as s, s.begin():
        import_bins(
            s, [BinRow(b, 52.37, 4.89, 1000) for b in ("b-over", "b-dirty", "b-clean", "b-old", "b-none")]
        )
        items = [
            item(
                "reading",
                "b-over",
                reading("b-over", 0, 0.5, ts=now - 2 * HOUR, label="clean", label_prob=0.9),
            ),
            item(
                "reading",
                "b-over",
                reading("b-over", 1, 0.97, ts=now - HOUR, label="overflowing", label_prob=0.81),
            ),
            item(
                "reading",
                "b-dirty",
                reading("b-dirty", 0, 0.4, ts=now - HOUR, label="contaminated", label_prob=0.7),
            ),
            item("reading", "b-dirty", reading("b-dirty", 1, None, ts=now)),  # dark: the class stays
            item("reading", "b-clean", reading("b-clean", 0, 0.9, ts=now - 2 * HOUR, label="overflowing")),
            item(
                "reading",
                "b-clean",
                reading("b-clean", 1, 0.1, ts=now - HOUR, label="clean", label_prob=0.95),
            ),
            item("reading", "b-old", reading("b-old", 0, 0.3, ts=now - HOUR)),  # a fill-only model
        ]
        write_batch(s, items, BinRegistry(), False, now)
    bins = {b["id"]: b for b in api.get("/api/bins", "labeller").json()}
    assert (bins["b-over"]["label"], bins["b-over"]["label_prob"], bins["b-over"]["flag"]) == (
        "overflowing",
        0.81,
        "overflowing",
    )
    assert (bins["b-dirty"]["label"], bins["b-dirty"]["flag"]) == ("contaminated", "contaminated")
    assert (bins["b-clean"]["label"], bins["b-clean"]["flag"]) == ("clean", None)
    assert bins["b-old"]["label"] is None and bins["b-old"]["flag"] is None
    assert bins["b-none"]["label"] is None and bins["b-none"]["fill"] is None
    hist = api.get("/api/bins/b-over/history?days=1").json()["readings"]
    assert [(r["label"], r["label_prob"]) for r in hist] == [("clean", 0.9), ("overflowing", 0.81)]
