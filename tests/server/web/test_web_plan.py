"""Route plan: ask for a plan, follow the solver, see the routes drawn and listed, read it on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_support import Seeded, login, shot, signed_in


def _plan_through_the_page(page: Any, site: Seeded) -> dict[str, Any]:
    """Plan with a 2 s limit through the form; returns the finished plan from the API."""
    login(page, site, "operator")
    page.click("#nav a[data-view='plan']")
    page.wait_for_selector("#plan-btn")
    page.fill("#p-limit", "2")
    page.click("#plan-btn")
    # Progress shows while the solver runs.
    page.wait_for_selector("#plan-progress:not([hidden])")
    assert "Solving" in page.inner_text("#plan-status") or "Sending" in page.inner_text("#plan-status")
    # An earlier plan's manifests may be on the page already (other modules plan too): wait for this one.
    page.wait_for_selector("#plan-status:has-text('ready')", timeout=60_000)
    page.wait_for_selector(".manifest")
    plan = site.api("/api/plans/latest", "operator")
    assert plan["status"] == "done", plan.get("error")
    return plan


@pytest.fixture(scope="module")
def planned(browser: Any, site: Seeded) -> dict[str, Any]:
    """One plan made through the page (shared by this module's tests)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = ctx.new_page()
    try:
        plan = _plan_through_the_page(page, site)
        shot(page, "plan", full_page=True)
    finally:
        ctx.close()
    return plan


def test_plan_a_route_and_see_it_drawn_and_listed(page: Any, site: Seeded, planned: dict[str, Any]) -> None:
    """Every route of the plan is a coloured line with numbered stops and a manifest listing its bins."""
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector(".manifest")
    routes = [r for r in planned["result"]["routes"] if r["stops"]]
    # Two trucks with 90-minute shifts: the seeded full bins need both.
    assert len(routes) == 2, planned["result"]
    lines = page.locator("path.route-line")
    assert lines.count() == len(routes)
    colours = {lines.nth(i).get_attribute("stroke") for i in range(lines.count())}
    assert len(colours) == len(routes)
    for r in routes:
        bins = [s["id"] for s in r["stops"] if s["kind"] == "bin"]
        drawn = page.eval_on_selector_all(
            f".route-stop[data-truck='{r['truck']}']",
            "els => els.map(e => [e.dataset.stop, e.querySelector('text').textContent])",
        )
        assert [d[0] for d in drawn] == bins
        assert [d[1] for d in drawn] == [str(i + 1) for i in range(len(bins))]
        manifest = page.locator(f".manifest[data-truck='{r['truck']}']")
        text = manifest.inner_text()
        for b in bins:
            assert b in text
        assert "Depot" in text
        if any(s["kind"] == "disposal" for s in r["stops"]):
            assert "Disposal" in text
    # Earlier plans can be chosen; the one shown is selected.
    assert page.input_value("#p-history") == planned["id"]
    # The depot and disposal site are marked.
    assert page.locator(".place-depot").count() >= 1
    # Why bins were taken or skipped: in the lists and on the map.
    included = planned["result"]["included"]
    assert f"Why these {len(included)} bins were taken" in page.inner_text(".why")
    skipped = planned["result"]["skipped"]
    if skipped:
        page.hover(f"circle[data-bin='{skipped[0]['id']}']", force=True)
        page.wait_for_selector(".map-tooltip .plan-why-skipped")
        assert skipped[0]["reason"] in page.inner_text(".map-tooltip")
    shot(page, "plan-drawn", full_page=True)


def test_plan_exports_download(page: Any, site: Seeded, planned: dict[str, Any]) -> None:
    """CSV, GeoJSON and GPX buttons download the server's exports with the token."""
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector(".manifest")
    for label, ext in (("CSV", "csv"), ("GeoJSON", "geojson"), ("GPX", "gpx")):
        with page.expect_download() as dl:
            page.click(f".plan-tools button:text-is('{label}')")
        d = dl.value
        assert d.suggested_filename == f"binsight-plan-{planned['id']}.{ext}"
        body = Path(d.path()).read_text(encoding="utf-8")
        assert len(body) > 20
        if ext == "geojson":
            assert "FeatureCollection" in body
        if ext == "gpx":
            assert "<gpx" in body


def test_print_view_shows_manifests_without_navigation(
    page: Any, site: Seeded, planned: dict[str, Any]
) -> None:
    """In print media the navigation, form and buttons are gone; the manifests remain."""
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector(".manifest")
    page.emulate_media(media="print")
    assert page.locator(".topbar").is_hidden()
    assert page.locator(".plan-tools").is_hidden()
    assert page.locator(".plan-form-box").is_hidden()
    assert page.locator(".manifest").first.is_visible()
    shot(page, "plan-print", full_page=True)


def test_phone_manifest_is_readable(phone: Any, site: Seeded, planned: dict[str, Any]) -> None:
    """At 390x844 a driver's link opens on one truck's manifest: no sideways scrolling, large text."""
    truck = next(r["truck"] for r in planned["result"]["routes"] if r["stops"])
    signed_in(phone, site, "operator", f"plan/{truck}")
    phone.wait_for_selector(f".manifest[data-truck='{truck}']")
    assert phone.locator(".manifest").count() == 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    rows = phone.locator(f".manifest[data-truck='{truck}'] tbody tr")
    assert rows.count() == len(next(r for r in planned["result"]["routes"] if r["truck"] == truck)["stops"])
    first_bin = phone.locator(f".manifest[data-truck='{truck}'] tr.stop-bin td:nth-child(2)").first
    size = float(first_bin.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size >= 16
    box = first_bin.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    # No stop's name runs into its ETA (the disposal row did on the demo, issue #18): give one a long name.
    phone.evaluate(
        """() => { const td = document.querySelector('.manifest tr.stop-disposal td:nth-child(2)')
                          || document.querySelector('.manifest tr.stop-depot td:nth-child(2)');
                   td.textContent = 'Disposal Afvalverwerking-Westpoort-Noord'; }"""
    )
    overlaps = phone.evaluate(
        """() => [...document.querySelectorAll('.manifest tbody tr')].filter((tr) => {
          const range = document.createRange();  // the text itself, which may overflow its cell
          range.selectNodeContents(tr.children[1]);
          const a = range.getBoundingClientRect();
          const b = tr.children[2].getBoundingClientRect();
          return a.right > b.left + 0.5 && a.bottom > b.top && b.bottom > a.top;
        }).map((tr) => tr.children[1].textContent)"""
    )
    assert overlaps == []
    # The stops come before the plan picker, the exports and the map (issue #18: drivers scrolled past them).
    for other in (".plan-tools", ".map-host-plan"):
        other_box = phone.locator(other).bounding_box()
        assert other_box is not None and box["y"] < other_box["y"], other
    phone.locator(f".manifest[data-truck='{truck}']").scroll_into_view_if_needed()
    shot(phone, "phone-manifest")
    shot(phone, "phone-manifest-full", full_page=True)
