"""The page's pure JavaScript functions, run in the browser as the page loads them."""

from __future__ import annotations

from typing import Any

from web_support import Seeded


def _run(page: Any, site: Seeded, module: str, body: str) -> Any:
    page.goto(site.base_url + "/")
    page.wait_for_selector("#login:not([hidden])")
    return page.evaluate(f"async () => {{ const m = await import('/static/js/{module}'); {body} }}")


def test_mercator_round_trip_and_scale_bar(page: Any, site: Seeded) -> None:
    """project/unproject invert each other; the scale bar is a 1-2-5 length that fits."""
    out = _run(
        page,
        site,
        "geo.js",
        """
        const [x, y] = m.project(52.37, 4.89, 13.5);
        const [lat, lon] = m.unproject(x, y, 13.5);
        const sb = m.scaleBar(52.37, 13, 120);
        const f = m.fit({south: 52.36, north: 52.40, west: 4.87, east: 4.93}, 800, 500, 32);
        return {lat, lon, sb, f, mpp0: m.metersPerPixel(0, 0),
                d: m.haversine({lat: 52.37, lon: 4.89}, {lat: 52.38, lon: 4.89}),
                t: m.tileUrl('https://{s}.t/{z}/{x}/{y}.png', 3, 4, 5)};
        """,
    )
    assert abs(out["lat"] - 52.37) < 1e-9 and abs(out["lon"] - 4.89) < 1e-9
    sb = out["sb"]
    assert sb["px"] <= 120 and sb["px"] > 120 / 5
    assert str(int(sb["meters"])).strip("0") in ("1", "2", "5")
    assert abs(out["mpp0"] - 156543.03) < 0.1
    assert abs(out["d"] - 1111.95) < 1
    assert 52.36 < out["f"]["center"]["lat"] < 52.40 and 10 < out["f"]["zoom"] < 17
    assert out["t"] == "https://a.t/3/4/5.png"


def test_label_keys(page: Any, site: Seeded) -> None:
    """Digits set tens of percent, F sets 100, arrows nudge by 5 within 0..100, other keys do nothing."""
    out = _run(
        page,
        site,
        "views/label.js",
        "return ['0','7','9','F','ArrowRight','ArrowLeft','x'].map(k => m.keyToFill(k, 100))"
        ".concat([m.keyToFill('ArrowLeft', 0), m.keyToFill('ArrowUp', 40)]);",
    )
    assert out == [0, 70, 90, 100, 100, 95, None, 0, 45]


def test_manifest_numbers_bin_stops_only(page: Any, site: Seeded) -> None:
    """Stops are numbered 1..n over bins; depot, disposal and break rows carry no number."""
    out = _run(
        page,
        site,
        "views/plan.js",
        """return m.manifestRows({stops: [{kind: 'depot'}, {kind: 'bin'}, {kind: 'bin'}, {kind: 'disposal'},
            {kind: 'break'}, {kind: 'bin'}, {kind: 'disposal'}, {kind: 'depot'}]}).map(r => r.number);""",
    )
    assert out == [None, 1, 2, None, None, 3, None, None]


def test_learning_curve_shapes_and_metrics(page: Any, site: Seeded) -> None:
    """Learning curves are read from list or column form; metric text fits the task."""
    out = _run(
        page,
        site,
        "views/models.js",
        """return [m.learningCurve({learning_curve: [{n: 10, mae: 0.2}, {n: 20, mae: 0.1}]}),
                   m.learningCurve({learning_curve: [{n: 8, test: {mae: 0.3, r2: 0.5}}],
                                    baselines: {mean: {mae: 0.4}, hog: {accuracy: 0.5}}}),
                   m.comparisonRows({metric: 'mae', n: 9,
                                     candidate: {version: 'b', mae: 0.05, per_site: {n: {mae: 0.04}}},
                                     active: {version: 'a', mae: 0.07, per_site: {n: {mae: 0.06}}}}),
                   m.learningCurve({learning_curve: {n_labels: [5, 10], mae: [0.3, null]}}),
                   m.learningCurve({}), m.metricText({n: 3, mae: 0.05, rmse: 0.07, r2: 0.9}),
                   m.metricText({accuracy: 0.9, macro_f1: 0.8})];""",
    )
    assert out[0] == {"metric": "mae", "points": [{"x": 10, "y": 0.2}, {"x": 20, "y": 0.1}], "baselines": []}
    assert out[1] == {
        "metric": "mae",
        "points": [{"x": 8, "y": 0.3}],
        "baselines": [{"name": "mean", "y": 0.4}],
    }
    assert out[2] == [
        {"scope": "all held-out labels", "candidate": 0.05, "active": 0.07},
        {"scope": "n", "candidate": 0.04, "active": 0.06},
    ]
    assert out[3] == {"metric": "mae", "points": [{"x": 5, "y": 0.3}], "baselines": []}
    assert out[4] is None
    assert out[5] == "MAE 0.050 · RMSE 0.070 · R² 0.90 · n=3"
    assert out[6].startswith("accuracy 0.900")


def test_map_filter_and_fill_colour(page: Any, site: Seeded) -> None:
    """Filters combine; unknown fill is grey; the fill scale runs green to red."""
    out = _run(
        page,
        site,
        "views/map.js",
        """const bins = [{id: 'a', site: 'n', fill: 0.9, online: true},
                        {id: 'b', site: 'n', fill: null, online: false},
                        {id: 'c', site: 's', fill: 0.5, online: false}];
        const ids = (f) => m.filterBins(bins, f).map(b => b.id);
        const c = await import('/static/js/colors.js');
        return [ids({site: 'n'}), ids({minFill: 60}), ids({offline: true}), ids({site: 's', offline: true}),
                c.fillColor(null), c.fillColor(0), c.fillColor(1)];""",
    )
    assert out[:4] == [["a", "b"], ["a"], ["b", "c"], ["c"]]
    assert out[4] == "#9aa0a6" and out[5] == "rgb(26, 152, 80)" and out[6] == "rgb(165, 0, 38)"


def test_static_files_need_nothing_from_outside(site: Seeded) -> None:
    """No CDN: every asset is served from /static and no file loads anything from another host."""
    import re

    from binsight.server.web import STATIC_DIR

    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".html", ".js", ".css"):
            continue
        text = path.read_text(encoding="utf-8")
        for url in re.findall(r"https?://[^\s'\"`)]+", text):
            # The only outside URLs: the SVG namespace and the opt-in tile template.
            assert url in ("http://www.w3.org/2000/svg", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"), (
                path,
                url,
            )


def test_fill_badge_text_contrast(page: Any, site: Seeded) -> None:
    """Text on a fill badge keeps a WCAG contrast of at least 4.5:1 across the whole scale."""
    out = _run(
        page,
        site,
        "colors.js",
        """const worst = [];
        for (let f = 0; f <= 1.0001; f += 0.01) {
          const bg = m.fillColor(f).match(/\\d+/g).map(Number);
          const fg = m.fillTextColor(f) === '#000' ? [0, 0, 0] : [255, 255, 255];
          worst.push(m.contrast(bg, fg));
        }
        return Math.min(...worst);""",
    )
    assert out >= 4.5


def test_formatting_for_people(page: Any, site: Seeded) -> None:
    """Durations, route clocks, percentages and the time-to-full wording."""
    out = _run(
        page,
        site,
        "format.js",
        """const b = await import('/static/js/views/bininfo.js');
        const now = 1_800_000_000_000, H = 3_600_000;
        return [m.duration(40_000), m.duration(90_000), m.duration(2 * H + 5 * 60_000), m.duration(50 * H),
                m.clock(395), m.clock('07:05'), m.pct(0.934), m.pct(null), m.relative(now - 2 * H, now),
                b.timeToFull(null, now), b.timeToFull({full_ts: now - H}, now),
                b.timeToFull({full_ts: now + 30 * H, low_ts: now + 20 * H, high_ts: now + 40 * H}, now)];""",
    )
    assert out == [
        "40 s", "2 min", "2 h 5 min", "2 d 2 h", "06:35", "07:05", "93%", "–", "2 h ago",
        "not forecast", "full now (since 1 h)", "full in 1 d 6 h (20 h to 1 d 16 h)",
    ]  # fmt: skip


def test_stop_numbers_readable_on_every_route_colour(page: Any, site: Seeded) -> None:
    """Stop numbers are drawn in black or white, whichever gives at least 4.5:1 on the route's colour."""
    out = _run(
        page,
        site,
        "colors.js",
        """return m.ROUTE_COLORS.map((c) => {
          const bg = c.match(/[0-9a-f]{2}/gi).map((x) => parseInt(x, 16));
          return m.contrast(bg, m.textOn(c) === '#000' ? [0, 0, 0] : [255, 255, 255]);
        });""",
    )
    assert len(out) == 10 and min(out) >= 4.5, out
