"""Cameras: devices online and offline with their health, and one bin's fill chart."""

from __future__ import annotations

import itertools
from typing import Any

from web_support import OFFLINE, Seeded, login, shot, signed_in


def test_cameras_lists_devices_and_draws_a_fill_chart(page: Any, site: Seeded) -> None:
    """Offline devices come first, with why; a bin's chart shows readings, collections and forecast."""
    login(page, site, "operator")
    page.click("#nav a[data-view='cameras']")
    page.wait_for_selector("[data-device]")
    rows = page.eval_on_selector_all("[data-device]", "els => els.map(e => e.dataset.device)")
    assert sorted(rows) == sorted(b["bin_id"] for b in site.bins)
    assert set(rows[: len(OFFLINE)]) == OFFLINE
    off = page.inner_text("[data-device='nrd-05']")
    assert "offline" in off and "camera timeout" in off
    assert "m-seed" in page.inner_text("[data-device='nrd-01']")
    ingest = site.api("/api/ingest", "operator")
    page.wait_for_selector("#ingest:has-text('readings stored')")
    assert f"{ingest['readings']:,} readings stored" in page.inner_text("#ingest")

    page.click("[data-device='nrd-01'] button.link")
    page.wait_for_selector(".chart .smooth-line")
    hist = site.api("/api/bins/nrd-01/history?days=14", "operator")
    assert page.locator(".chart .collection").count() == len(hist["collections"])
    if hist["forecast"] and len(hist["forecast"]["points"]) > 1:
        assert page.locator(".chart .forecast-line").count() == 1
    assert f"{len(hist['readings'])} readings" in page.inner_text(".chart-panel")
    shot(page, "cameras", full_page=True)


def test_a_command_the_server_cannot_send_is_reported(page: Any, site: Seeded) -> None:
    """An API-only server has no MQTT link: "Capture now" says so instead of pretending it worked."""
    page.expect_errors = True  # the 503 is the point
    signed_in(page, site, "operator", "cameras/nrd-02")
    page.wait_for_selector(".commands button")
    page.click(".commands button:text-is('Capture now')")
    page.wait_for_selector(".flash-error")
    assert "no MQTT connection" in page.inner_text("#flash")


def test_the_old_fleet_address_opens_the_cameras_page(page: Any, site: Seeded) -> None:
    """``#/fleet/<bin>``, the page's name before it became Cameras, still opens that bin's history."""
    signed_in(page, site, "operator", "fleet/nrd-02")
    page.wait_for_selector(".chart-panel h2:has-text('Fill history of nrd-02')")
    assert page.evaluate("location.hash") == "#/cameras/nrd-02"
    assert page.inner_text("#view h1") == "Cameras"
    assert page.get_attribute("#nav a[data-view='cameras']", "aria-current") == "page"


def test_the_fill_chart_says_what_full_means(page: Any, phone: Any, site: Seeded) -> None:
    """The chart draws forecast.threshold as a line labelled "full (80%)", and the legend explains it."""
    hist = site.api("/api/bins/nrd-01/history?days=14", "operator")
    assert hist["threshold"] == 0.8
    for pg, name in ((page, "cameras-threshold"), (phone, "cameras-threshold-phone")):
        signed_in(pg, site, "operator", "cameras/nrd-01")
        pg.wait_for_selector(".chart .threshold", state="attached")  # a flat line has no height
        assert pg.text_content(".chart .threshold-label") == "full (80%)"
        legend = pg.inner_text(".chart-panel .legend")
        assert "full = 80%" in legend and "forecast.threshold" in legend
        # The line sits at 80% of the fill axis: 0% is the bottom axis, 100% the top of the plot.
        y = float(pg.get_attribute(".chart .threshold", "y1"))
        assert abs(y - (300 - 36 - 0.8 * (300 - 16 - 36))) < 0.5
        shot(pg, name, full_page=True)


def test_the_fill_chart_draws_raw_dots_round_the_smoothed_line(page: Any, phone: Any, site: Seeded) -> None:
    """nrd-04's noisy camera: its raw readings are faint dots, the smoothed fill the line, which only
    rises between the drops where the filter found a collection; the wild 1.0 stays a dot."""
    hist = site.api("/api/bins/nrd-04/history?days=7", "operator")
    raw = [r["fill"] for r in hist["readings"] if r["fill"] is not None]
    assert 1.0 in raw
    smooth = [r["fill_smooth"] for r in hist["readings"]]
    assert all(v is not None for v in smooth) and max(smooth) < 0.95
    for pg, name in ((page, "cameras-smoothed"), (phone, "cameras-smoothed-phone")):
        signed_in(pg, site, "operator", "cameras/nrd-04")
        pg.wait_for_selector(".chart .smooth-line")
        assert pg.locator(".chart .reading-line").count() == 0  # every reading has a smoothed value
        assert pg.locator(".chart .reading-dots.raw circle").count() == len(raw)
        opacity = pg.eval_on_selector(
            ".chart .reading-dots.raw circle", "e => getComputedStyle(e).fillOpacity"
        )
        assert float(opacity) < 0.5
        # Within each piece of the path (between "M"s) the line never falls: SVG y grows downwards.
        d = pg.get_attribute(".chart .smooth-line", "d")
        assert d is not None
        pieces = [p for p in d.split("M") if p]
        assert len(pieces) >= 2  # the seed empties the bin once in the week shown
        for piece in pieces:
            ys = [float(pt.split(",")[1]) for pt in piece.split("L")]
            assert all(b <= a + 1e-6 for a, b in itertools.pairwise(ys))
        legend = pg.inner_text(".chart-panel .legend")
        assert "readings (raw)" in legend and "smoothed fill" in legend
        shot(pg, name, full_page=True)
