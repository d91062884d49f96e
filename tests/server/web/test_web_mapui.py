"""Issue #18, map and common page: time text, bins in view, clusters, pinch, the phone's sheet and
header, the urgent list and errors cleared on navigation (desktop and phone sizes)."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, login, shot, signed_in, wait_until

SHOTS = "/tmp/shots-c"


def _shot(page: Any, name: str, full_page: bool = False) -> None:
    shot(page, name, full_page)
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page)


def _module(page: Any, site: Seeded, module: str, body: str) -> Any:
    page.goto(site.base_url + "/")
    page.wait_for_selector("#login:not([hidden])")
    return page.evaluate(f"async () => {{ const m = await import('/static/js/{module}'); {body} }}")


def test_time_text_never_shows_sixty_minutes_or_twenty_four_hours(page: Any, site: Seeded) -> None:
    """Durations round once (15 h 59.7 min is 16 h), counts agree with their nouns, bands start at "now"."""
    out = _module(
        page,
        site,
        "format.js",
        """const b = await import('/static/js/views/bininfo.js');
        const M = 60_000, H = 60 * M, D = 24 * H, now = 1_800_000_000_000;
        return [m.duration(15 * H + 59.7 * M), m.duration(5 * D + 23.7 * H), m.duration(59.6 * 1000),
                m.duration(59.7 * M), m.duration(23 * H + 59.9 * M), m.duration(3 * D + 2 * H),
                m.plural(1, 'collection'), m.plural(2, 'collection'), m.plural(0, 'model'),
                b.timeToFull({full_ts: now + 5 * H, low_ts: now - H, high_ts: now + 9 * H}, now),
                b.timeToFull({full_ts: now - 10_000}, now),
                b.offlineReason('offline message (last will or shutdown)'),
                b.offlineReason('never seen')];""",
    )
    assert out == [
        "16 h", "6 d", "1 min", "1 h", "1 d", "3 d 2 h",
        "1 collection", "2 collections", "0 models",
        "full in 5 h (now to 9 h)", "full now",
        "sent its offline message (last will or shutdown)", "never seen",
    ]  # fmt: skip


def test_bins_in_view_lists_only_the_bins_on_screen(page: Any, site: Seeded) -> None:
    """Zoomed in on one bin, the list under the map holds the bins on screen and says how many it left out."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin-row]")
    assert page.locator("[data-bin-row]").count() == len(site.bins)
    page.click("[data-bin-row='ctr-01'] button")
    page.focus(".map-svg")
    for _ in range(4):
        page.keyboard.press("+")
    drawn_js = """() => { const r = document.querySelector('.map-svg').getBoundingClientRect();
        return [...document.querySelectorAll('circle[data-bin]')].filter(c => {
          const b = c.getBoundingClientRect();
          const x = b.x + b.width / 2 - r.x, y = b.y + b.height / 2 - r.y;
          return x >= 0 && y >= 0 && x <= r.width && y <= r.height; }).map(c => c.dataset.bin).sort(); }"""
    rows_js = "() => [...document.querySelectorAll('[data-bin-row]')].map(e => e.dataset.binRow).sort()"

    def settled() -> list[str] | None:
        # Zooming redraws the map a frame at a time and the list a moment after: compare once both rest.
        rows, drawn = page.evaluate(rows_js), page.evaluate(drawn_js)
        return rows if rows == drawn and len(rows) < len(site.bins) else None

    rows = wait_until(settled, what="the list to hold exactly the bins on screen")
    assert "ctr-01" in rows
    assert f"of {len(site.bins)}" in page.inner_text("#list-title")
    _shot(page, "map-in-view", full_page=True)


def test_close_bins_cluster_with_a_count_and_open_on_click(page: Any, site: Seeded) -> None:
    """Zoomed out, bins that would overlap become one marker with their count; clicking it zooms in."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    page.focus(".map-svg")
    for _ in range(4):
        page.keyboard.press("-")
    page.wait_for_selector("[data-cluster]")
    counts = page.eval_on_selector_all("[data-cluster]", "els => els.map(e => Number(e.dataset.count))")
    singles = page.locator("circle[data-bin]").count()
    assert sum(counts) + singles == len(site.bins) and max(counts) >= 2
    page.hover("[data-cluster]")
    assert "bins here" in page.inner_text(".map-tooltip")
    _shot(page, "map-clusters")
    before = float(page.get_attribute(".map-scale", "data-meters"))
    page.click("[data-cluster]")
    page.wait_for_function(f"Number(document.querySelector('.map-scale').dataset.meters) < {before}")


def test_cluster_and_badge_placement(page: Any, site: Seeded) -> None:
    """Points closer than the gap share a group; stop badges never overlap; offset lines keep their side."""
    out = _module(
        page,
        site,
        "mapview.js",
        """const pts = [[0, 0], [6, 0], [40, 0], [44, 3], [100, 100]].map(([x, y], i) => ({x, y, item: i}));
        const groups = m.clusterPoints(pts, 18).map(g => g.items);
        const spots = m.placeBadges([[10, 10], [14, 10], [12, 12], [200, 200]], 9);
        let minD = Infinity;
        for (let i = 0; i < spots.length; i++) for (let j = i + 1; j < spots.length; j++)
          minD = Math.min(minD, Math.hypot(spots[i][0] - spots[j][0], spots[i][1] - spots[j][1]));
        const there = m.offsetLine([[0, 0], [100, 0]], 3), back = m.offsetLine([[100, 0], [0, 0]], 3);
        return {groups, minD, first: spots[0], last: spots[3], there, back};""",
    )
    assert out["groups"] == [[0, 1], [2, 3], [4]]
    assert out["minD"] >= 19 and out["first"] == [10, 10] and out["last"] == [200, 200]
    # The way there runs below (right of travel, eastwards), the way back above: 6 px apart.
    assert out["there"] == [[0, 3], [100, 3]] and out["back"] == [[100, -3], [0, -3]]


def test_urgent_list_groups_bins_by_forecast(page: Any, site: Seeded) -> None:
    """Beside the map: bins reaching the full threshold today, tomorrow, later (the server's forecasts)."""
    bins = site.api("/api/bins", "operator")
    login(page, site, "operator")
    page.wait_for_selector("[data-urgent='today'] li")
    groups = page.evaluate(
        """async (bins) => { const m = await import('/static/js/views/map.js');
        const u = m.urgency(bins); return {today: u.today.map(b => b.id), tomorrow: u.tomorrow.map(b => b.id),
          later: u.later.map(b => b.id), none: u.unforecast}; }""",
        bins,
    )
    shown = {
        k: page.eval_on_selector_all(f"[data-urgent='{k}'] li button", "els => els.map(e => e.textContent)")
        for k in ("today", "tomorrow", "later")
    }
    for k, names in shown.items():
        assert names == groups[k][:8]
    # Bins already past the full threshold (0.8 by default) belong to today.
    full_now = {b["id"] for b in bins if (b["fill"] or 0) >= 0.8}
    assert full_now <= set(groups["today"])
    assert len(groups["today"]) + len(groups["tomorrow"]) + len(groups["later"]) + groups["none"] == len(bins)
    # Each entry says where the bin is: its name and street address (issue #18).
    first = next(b for b in bins if b["id"] == groups["today"][0])
    where = page.inner_text("[data-urgent='today'] li .urgent-where >> nth=0")
    assert where == f"{first['name']} · {first['address']}", where
    # A name in the list selects the bin.
    page.click(f"[data-urgent='today'] button:text-is('{groups['today'][0]}')")
    assert groups["today"][0] in page.inner_text("#bin-details")


def test_phone_details_in_a_sheet_and_a_compact_header(phone: Any, site: Seeded) -> None:
    """On a phone a tapped bin's details slide up over the bottom of the screen; the header stays small."""
    login(phone, site, "admin")
    phone.wait_for_selector("[data-bin]")
    header = phone.locator(".topbar").bounding_box()
    assert header is not None and header["height"] <= 110, header
    assert not phone.locator("#bin-details").is_visible()
    phone.locator("circle[data-bin='nrd-01']").tap()
    sheet = phone.locator("#bin-details")
    sheet.wait_for(state="visible")
    box = sheet.bounding_box()
    assert box is not None and box["y"] >= 300 and box["y"] + box["height"] <= 844 + 1, box
    assert "nrd-01" in sheet.inner_text()
    # The tapped bin stays in sight above the sheet.
    dot = phone.locator("circle[data-bin='nrd-01']").bounding_box()
    assert dot is not None and dot["y"] >= 0 and dot["y"] + dot["height"] <= box["y"], (dot, box)
    _shot(phone, "phone-sheet")
    # A bin picked in the list far down the page: its details show in the sheet, the map scrolls to it.
    phone.locator("[data-bin-row='ctr-06'] button").click()
    assert "ctr-06" in sheet.inner_text()
    phone.wait_for_timeout(500)  # the list redraws after the map moved: it must not scroll the page back
    dot = phone.locator("circle[data-bin='ctr-06']").bounding_box()
    top = sheet.bounding_box()
    assert dot is not None and top is not None and dot["y"] >= 0 and dot["y"] + dot["height"] <= top["y"]
    _shot(phone, "phone-sheet-from-list")
    phone.click(".sheet-close")
    sheet.wait_for(state="hidden")


def test_pinch_zooms_the_map(phone: Any, site: Seeded) -> None:
    """Two fingers spreading apart zoom in about their midpoint; closing them zooms out."""
    signed_in(phone, site, "operator")
    phone.wait_for_selector("[data-bin]")
    scale = lambda: float(phone.get_attribute(".map-scale", "data-meters"))  # noqa: E731
    before = scale()
    pinch = """([from, to]) => { const svg = document.querySelector('.map-svg');
      const r = svg.getBoundingClientRect();
      const cx = r.x + r.width / 2, cy = r.y + r.height / 2;
      const ev = (type, id, dx) => svg.dispatchEvent(new PointerEvent(type, {
        pointerId: id, pointerType: 'touch',
        isPrimary: id === 1, clientX: cx + dx, clientY: cy, bubbles: true}));
      ev('pointerdown', 1, -from); ev('pointerdown', 2, from);
      for (let k = 1; k <= 5; k++) {
        const d = from + (to - from) * k / 5; ev('pointermove', 1, -d); ev('pointermove', 2, d); }
      ev('pointerup', 1, -to); ev('pointerup', 2, to); }"""
    phone.evaluate(pinch, [30, 120])
    wait_until(lambda: scale() < before, what="pinch-out to zoom in")
    zoomed = scale()
    phone.evaluate(pinch, [120, 30])
    wait_until(lambda: scale() > zoomed, what="pinch-in to zoom out")
    # A pinch is no tap: no bin got selected.
    assert not phone.locator("#bin-details").is_visible()


def test_an_error_goes_when_the_page_changes(page: Any, site: Seeded) -> None:
    """An error flashed on one page is taken down when the user opens another."""
    signed_in(page, site, "admin", "cameras")
    page.evaluate("async () => (await import('/static/js/dom.js')).flash('Could not load X', 'error')")
    assert page.locator("#flash").is_visible()
    page.click("#nav a[data-view='map']")
    page.wait_for_selector("[data-bin]")
    assert not page.locator("#flash").is_visible()


def test_route_lines_follow_the_road_when_the_plan_has_paths(page: Any, site: Seeded) -> None:
    """A stop's ``path`` (OSRM's road from the stop before) bends the line; without one it is straight."""
    out = _module(
        page,
        site,
        "mapview.js",
        """const host = document.createElement('div'); host.style.cssText = 'width:600px;height:400px';
        document.body.append(host);
        const map = new m.MapView(host, {label: 'test'});
        const stops = [{id: 'd', kind: 'depot', lat: 52.37, lon: 4.89},
                       {id: 'b', kind: 'bin', lat: 52.38, lon: 4.90,
                        path: [[52.37, 4.89], [52.376, 4.893], [52.38, 4.90]]}];
        map.setRoutes([{truck: 't', stops}]);
        const bent = map.el.querySelector('.route-line').getAttribute('d').split('L').length;
        map.setRoutes([{truck: 't', stops: stops.map(({path, ...s}) => s)}]);
        const straight = map.el.querySelector('.route-line').getAttribute('d').split('L').length;
        map.destroy();
        return [bent, straight];""",
    )
    assert out == [3, 2]


def test_bins_at_one_spot_spread_on_a_ring(page: Any, site: Seeded) -> None:
    """A cluster no zoom can split (three bins at one address) opens into a ring of its bins."""
    out = _module(
        page,
        site,
        "mapview.js",
        """const host = document.createElement('div'); host.style.cssText = 'width:600px;height:400px';
        document.body.append(host);
        const picked = [];
        const map = new m.MapView(host, {label: 'test', onSelect: (b) => picked.push(b.id)});
        map.setBins(['a', 'b', 'c'].map((id, i) => ({id, lat: 52.37, lon: 4.89, fill: 0.3 * i,
                                                     online: true})));
        map.fitAll();
        const count = (sel) => map.el.querySelectorAll(sel).length;
        const before = [count('[data-cluster]'), count('circle[data-bin]')];
        const click = (el) => {
          const r = el.getBoundingClientRect();
          const at = {clientX: r.x + r.width / 2, clientY: r.y + r.height / 2, bubbles: true, pointerId: 1,
                      pointerType: 'mouse', button: 0};
          el.dispatchEvent(new PointerEvent('pointerdown', at));
          el.dispatchEvent(new PointerEvent('pointerup', at));
        };
        click(map.el.querySelector('[data-cluster] circle'));
        const dots = [...map.el.querySelectorAll('circle[data-bin]')];
        const spread = dots.map((d) => [Number(d.getAttribute('cx')), Number(d.getAttribute('cy'))]);
        click(dots[1]);
        const result = {before, after: dots.length, spokes: map.el.querySelectorAll('.bin-spokes').length,
                        apart: Math.hypot(spread[0][0] - spread[1][0], spread[0][1] - spread[1][1]), picked};
        map.destroy();
        return result;""",
    )
    assert out["before"] == [1, 0]
    assert out["after"] == 3 and out["spokes"] == 1 and out["apart"] >= 14
    assert out["picked"] == ["b"]
