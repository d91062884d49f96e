"""Publishing a plan, and a driver's manifest of the published plan on a phone (issue #18)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from web_support import Seeded, address, login, shot, signed_in, wait_until

PHONE_HEIGHT = 844


def _plan(site: Seeded, trucks: list[str]) -> dict[str, Any]:
    started = site.api(
        "/api/plans", "operator", "POST", {"time_limit_s": 2, "trucks": trucks, "threshold": 1.0}
    )
    for _ in range(200):
        plan = site.api(f"/api/plans/{started['id']}", "operator")
        if plan["status"] != "running":
            assert plan["status"] == "done", plan["error"]
            return plan
        time.sleep(0.2)
    raise AssertionError("plan did not finish")


@pytest.fixture(scope="module")
def published(site: Seeded) -> dict[str, Any]:
    """A truck-1-only plan, published through the API; then a newer plan nobody published."""
    plan = _plan(site, ["truck-1"])
    site.api(f"/api/plans/{plan['id']}/publish", "operator", "POST")
    newer = _plan(site, ["truck-1", "truck-2"])
    return {"plan": plan, "newer": newer}


def test_publish_from_the_plan_page(page: Any, site: Seeded, published: dict[str, Any]) -> None:
    """The plan page names the plan's real day, shows it unpublished, and publishes it on a click."""
    newer = published["newer"]
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector("#plan-publish")
    # The plan picker fills after the plan itself (its own request): wait for this plan in it.
    page.wait_for_selector(f"#p-history option[value='{newer['id']}']", state="attached")
    day = newer["service_day"]
    assert "next day" not in page.inner_text("#p-history")
    assert f"for {day}" in page.inner_text("#p-history")
    assert "PUBLISHED" in page.inner_text("#p-history")  # the earlier plan, published
    title = page.inner_text("#plan-title")
    assert title.startswith("Plan for ") and "next service day" not in title and day[:4] in title
    assert "Not published" in page.inner_text(".plan-publish")
    shot(page, "plan-unpublished")
    page.click("#plan-publish")
    page.wait_for_selector("#plan-published")
    assert "olga" in page.inner_text("#plan-published")
    assert site.api(f"/api/plans/{newer['id']}", "operator")["published_at"]
    assert site.api(f"/api/plans/{published['plan']['id']}", "operator")["published_at"] is None
    shot(page, "plan-published")
    # Put the truck-1-only plan back for the driver tests.
    page.click("#plan-unpublish")
    page.wait_for_selector("#plan-publish")
    site.api(f"/api/plans/{published['plan']['id']}/publish", "operator", "POST")


def test_truck_without_route_is_said_so(page: Any, site: Seeded, published: dict[str, Any]) -> None:
    """#/plan/truck-2 on a plan without truck-2 says so and shows no other truck's manifest."""
    signed_in(page, site, "operator", "plan/truck-2")
    page.wait_for_selector("#p-history option", state="attached")
    page.select_option("#p-history", published["plan"]["id"])
    page.wait_for_selector("#plan-truck-none:has-text('its trucks: truck-1')")
    assert "truck-2 has no route in this plan" in page.inner_text("#plan-truck-none")
    assert page.locator(".manifest").count() == 0
    shot(page, "plan-truck-none")


def test_driver_signs_in_to_the_published_manifest(
    phone: Any, site: Seeded, published: dict[str, Any]
) -> None:
    """A driver's token opens truck-1's published manifest: stop 1 in the first screen, names, navigate."""
    plan = published["plan"]
    login(phone, site, "driver")
    phone.wait_for_selector(".stops")
    assert phone.url.endswith("#/manifest")
    assert phone.locator("#nav a").all_inner_texts() == ["Manifests"]
    route = next(r for r in plan["result"]["routes"] if r["truck"] == "truck-1")
    bins = [s["id"] for s in route["stops"] if s["kind"] == "bin"]
    assert phone.eval_on_selector_all(".stop-bin", "els => els.map(e => e.dataset.stop)") == bins
    assert "truck-1" in phone.inner_text("#manifest-title")
    first = phone.locator(".stop-bin").first
    box = first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE_HEIGHT, box  # no scrolling to stop 1
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    name = first.locator(".stop-name").inner_text()
    assert name and name != bins[0]  # the bin's name, its id below
    assert bins[0] in first.locator(".stop-sub").inner_text()
    # The street address under the name, and the navigate link pins it (geo: URI with the label).
    seeded = next(b for b in site.bins if b["bin_id"] == bins[0])
    assert first.locator(".stop-address").inner_text() == address(seeded)
    href = first.locator(".stop-nav").get_attribute("href")
    assert (
        href.startswith(f"geo:{seeded['lat']:.6f},{seeded['lon']:.6f}?q=") and quote(address(seeded)) in href
    )
    # No card's name runs into its ETA (the disposal row was the one that did), however long.
    phone.evaluate(
        """() => { document.querySelector('.stop-disposal .stop-name, .stop-depot .stop-name')
                     .textContent = 'Disposal (tip) Afvalverwerking-Westpoort-Noord'; }"""
    )
    overlaps = phone.evaluate(
        """() => [...document.querySelectorAll('.stop')].filter((li) => {
          const range = document.createRange();  // the text itself, which may overflow its box
          range.selectNodeContents(li.querySelector('.stop-name'));
          const a = range.getBoundingClientRect();
          const b = li.querySelector('.stop-eta').getBoundingClientRect();
          return a.right > b.left + 0.5 && a.bottom > b.top && b.bottom > a.top;
        }).map((li) => li.dataset.stop)"""
    )
    assert overlaps == []
    shot(phone, "driver-manifest")

    first.locator(".stop-btn-done").click()
    phone.wait_for_selector(f".stop[data-stop='{bins[0]}'] .stop-report-done")
    assert "by dan" in phone.inner_text(f".stop[data-stop='{bins[0]}'] .stop-report")
    reports = wait_until(
        lambda: site.api(f"/api/stop-reports?plan_id={plan['id']}", "operator"), what="stop report stored"
    )
    assert [(r["bin_id"], r["status"], r["by"]) for r in reports][-1] == (bins[0], "done", "dan")
    shot(phone, "driver-manifest-done", full_page=True)


def test_dispatcher_sees_the_drivers_reports(page: Any, site: Seeded, published: dict[str, Any]) -> None:
    """On the published plan, the plan page shows what the driver reported at each stop."""
    plan = published["plan"]
    reports = site.api(f"/api/stop-reports?plan_id={plan['id']}", "operator")
    assert reports, "the driver test reports a stop first"
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector("#p-history option", state="attached")
    page.select_option("#p-history", plan["id"])
    row = page.locator(
        f".manifest[data-truck='truck-1'] tr[data-stop='{reports[-1]['bin_id']}'][data-report='done']"
    )
    row.wait_for()
    assert "done" in row.inner_text() and "by dan" in row.inner_text()
    shot(page, "plan-reports")


def test_driver_cannot_open_the_plan(page: Any, site: Seeded, published: dict[str, Any]) -> None:
    """The plan page is not offered to a driver, and its API refuses the driver's token."""
    signed_in(page, site, "driver", "plan")
    page.wait_for_selector(".stops")
    assert page.locator("#plan-btn").count() == 0
    page.expect_errors = True
    status = page.evaluate(
        """t => fetch('/api/plans/latest', {headers: {Authorization: 'Bearer ' + t}}).then(r => r.status)""",
        site.tokens["driver"],
    )
    assert status == 403
    shot(page, "driver-desktop")


def test_move_a_bin_to_another_truck(page: Any, site: Seeded, published: dict[str, Any]) -> None:
    """The dispatcher moves a bin to truck-2; the re-timed plan shows it there, saved as a new plan."""
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector("#p-move-bin")
    # The plan picker fills once the plan list is back (later than the move form on a slow machine).
    page.wait_for_function("document.querySelector('#p-history')?.value")
    shown = page.input_value("#p-history")
    plan = site.api(f"/api/plans/{shown}", "operator")
    moving = next(
        s["id"]
        for r in plan["result"]["routes"]
        if r["truck"] == "truck-1"
        for s in r["stops"]
        if s["kind"] == "bin"
    )
    page.fill("#p-move-bin", moving)
    page.select_option("#p-move-truck", "truck-2")
    page.click("#p-move-btn")
    # A move that breaks the 90-minute shift or the capacity is refused with the reason first.
    page.wait_for_selector(f".manifest[data-truck='truck-2'] td:text-is('{moving}'), #p-move-anyway")
    if page.locator("#p-move-anyway").count():
        assert "would break a limit" in page.inner_text("#p-move-result")
        shot(page, "plan-move-refused")
        page.click("#p-move-anyway")
        page.wait_for_selector("#plan-violations")
    page.wait_for_selector(f".manifest[data-truck='truck-2'] td:text-is('{moving}')")
    assert page.locator(f".manifest[data-truck='truck-1'] td:text-is('{moving}')").count() == 0
    latest = site.api("/api/plans/latest", "operator")
    assert latest["request"]["edit_of"] == shown and page.input_value("#p-history") == latest["id"]
    shot(page, "plan-moved", full_page=True)


def test_driver_is_told_of_a_newly_published_plan(
    phone: Any, site: Seeded, published: dict[str, Any]
) -> None:
    """When the dispatcher publishes another plan, the driver's page says so on its next look."""
    first, newer = published["plan"], published["newer"]
    site.api(f"/api/plans/{first['id']}/publish", "operator", "POST")
    signed_in(phone, site, "driver", "manifest")
    phone.wait_for_selector(".stops")
    assert phone.inner_text("#manifest-status") == ""
    site.api(f"/api/plans/{newer['id']}/publish", "operator", "POST")
    try:
        phone.click("#m-refresh")
        phone.wait_for_selector("#manifest-status:has-text('published a new plan')")
        routes = [r for r in newer["result"]["routes"] if r["truck"] == "truck-1"]
        bins = [s["id"] for r in routes for s in r["stops"] if s["kind"] == "bin"]
        assert phone.eval_on_selector_all(".stop-bin", "els => els.map(e => e.dataset.stop)") == bins
        if not bins:  # the newer plan leaves truck-1 at the depot: the page says so
            assert "truck-1 has no route" in phone.inner_text("#manifest-none")
        shot(phone, "driver-new-plan")
    finally:
        site.api(f"/api/plans/{first['id']}/publish", "operator", "POST")
