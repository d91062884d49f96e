"""The map: every seeded bin, coloured by fill, with details, filters and a scale bar."""

from __future__ import annotations

from typing import Any

from web_support import CLASSES, FLAGGED, OFFLINE, Seeded, login, shot


def test_map_shows_the_seeded_bins_with_details(page: Any, site: Seeded) -> None:
    """Each seeded bin is one marker; hovering one tells its fill, forecast, reading age and device state."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    ids = sorted(page.eval_on_selector_all("svg [data-bin]", "els => els.map(e => e.dataset.bin)"))
    assert ids == sorted(b["bin_id"] for b in site.bins)
    # Colour follows fill: the fullest and emptiest seeded bins differ.
    full = page.get_attribute("circle[data-bin='nrd-06']", "fill")
    empty = page.get_attribute("circle[data-bin='nrd-05']", "fill")
    assert full != empty
    # Offline bins are crossed out, not only coloured.
    crossed = sorted(page.eval_on_selector_all(".bin-offline", "els => els.map(e => e.dataset.bin)"))
    assert crossed == sorted(OFFLINE)
    assert page.get_attribute(".bin-cross", "d").count("M") == len(OFFLINE)

    page.hover("circle[data-bin='nrd-01']")
    tip = page.locator(".map-tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert "nrd-01" in text and "93%" in text
    assert "Last reading" in text and "ago" in text
    assert "online" in text
    shot(page, "map-hover")

    page.click("circle[data-bin='nrd-05']")
    details = page.inner_text(".details")
    assert "nrd-05" in details and "offline" in details

    scale = page.inner_text(".map-scale")
    assert scale.endswith(" m") or scale.endswith(" km")
    shot(page, "map", full_page=True)


def test_map_filters(page: Any, site: Seeded) -> None:
    """Site, minimum fill and offline filters narrow both the map and the list."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    count = lambda: page.locator("svg [data-bin]").count()  # noqa: E731
    page.select_option("#f-site", "centrum")
    assert count() == sum(b["site"] == "centrum" for b in site.bins)
    page.select_option("#f-site", "")
    page.fill("#f-fill", "85")
    assert count() == sum(b["fill"] >= 0.85 for b in site.bins)
    assert page.locator("[data-bin-row]").count() == count()
    page.fill("#f-fill", "0")
    page.check("#f-offline")
    assert sorted(
        page.eval_on_selector_all("svg [data-bin]", "els => els.map(e => e.dataset.bin)")
    ) == sorted(OFFLINE)


def test_map_works_offline_without_tiles(page: Any, site: Seeded) -> None:
    """Tiles are off by default and nothing is fetched from outside the server."""
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(site.base_url) else None)
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    assert page.locator(".layer-tiles image").count() == 0
    assert outside == []


def test_map_on_a_phone(phone: Any, site: Seeded) -> None:
    """At 390x844 the map, filters and bin list fit the width; nothing scrolls sideways."""
    login(phone, site, "labeller")
    phone.wait_for_selector("[data-bin]")
    assert phone.locator("svg [data-bin]").count() == len(site.bins)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    box = phone.locator(".map").bounding_box()
    assert box is not None and box["width"] <= 390 and box["height"] >= 300
    shot(phone, "phone-map", full_page=True)


def test_street_tiles_from_a_configured_template(page: Any, site: Seeded) -> None:
    """Tiles come from the URL template (here the server itself) and are remembered per browser."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    page.click(".tiles summary")
    template = site.base_url + "/static/icons/favicon.svg?z={z}&x={x}&y={y}"
    page.fill("#tile-url", template)
    page.check("#tile-on")
    page.wait_for_selector(".layer-tiles image")
    hrefs = page.eval_on_selector_all(".layer-tiles image", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all(h.startswith(site.base_url + "/static/icons/favicon.svg?z=") for h in hrefs)
    assert "configured tile server" in page.inner_text(".map-attribution")
    page.reload()
    page.wait_for_selector(".layer-tiles image")  # remembered
    page.click(".tiles summary")
    page.uncheck("#tile-on")
    assert page.locator(".layer-tiles image").count() == 0


def test_map_pans_and_zooms(page: Any, site: Seeded) -> None:
    """Dragging moves the bins with the pointer; the wheel and the + key zoom, and the scale bar follows."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    dot = "circle[data-bin='ctr-01']"
    x0 = float(page.get_attribute(dot, "cx"))
    box = page.locator(".map-svg").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + 100, box["y"] + 60, steps=5)
    page.mouse.up()
    assert abs(float(page.get_attribute(dot, "cx")) - (x0 + 50)) < 1.5
    metres = float(page.get_attribute(".map-scale", "data-meters"))
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.wheel(0, -300)
    page.wait_for_function(f"Number(document.querySelector('.map-scale').dataset.meters) < {metres}")
    zoomed = float(page.get_attribute(".map-scale", "data-meters"))
    page.focus(".map-svg")
    page.keyboard.press("-")
    page.keyboard.press("-")
    page.wait_for_function(f"Number(document.querySelector('.map-scale').dataset.meters) > {zoomed}")


def _flag_check(page: Any, site: Seeded, name: str) -> None:
    login(page, site, "operator")
    page.wait_for_selector("[data-bin]")
    flagged = page.eval_on_selector_all(
        "circle[data-flag]", "els => els.map(e => [e.dataset.bin, e.dataset.flag])"
    )
    assert sorted(map(tuple, flagged)) == sorted((b, CLASSES[b][0]) for b in FLAGGED)
    # One warning triangle per flagged marker (shape, not only colour); the legend names it.
    assert page.get_attribute(".bin-flag", "d").count("M") == len(FLAGGED)
    assert "overflowing or contaminated" in page.inner_text(".legend")
    assert f"{len(FLAGGED)} overflowing or contaminated" in page.inner_text(".summary")
    # The list marks the flagged rows.
    rows = page.eval_on_selector_all("[data-bin-row] .class-flag", "els => els.map(e => e.dataset.flag)")
    assert sorted(rows) == sorted(CLASSES[b][0] for b in FLAGGED)
    shot(page, name, full_page=True)


def test_map_flags_overflowing_and_contaminated_bins(page: Any, site: Seeded) -> None:
    """Bins whose latest reading's class is overflowing or contaminated carry a flag on the map, in the
    list and in their details (with the class's probability); a clean bin does not."""
    _flag_check(page, site, "map-flags")
    page.click("circle[data-bin='ctr-03']")
    details = page.inner_text(".details")
    assert "contaminated (74%)" in details and "⚠ contaminated" in details
    page.click("circle[data-bin='ctr-01']")
    details = page.inner_text(".details")
    assert "clean (93%)" in details and "⚠" not in details
    assert not page.errors


def test_map_flags_on_a_phone(phone: Any, site: Seeded) -> None:
    """The same flags at 390x844."""
    _flag_check(phone, site, "map-flags-phone")
