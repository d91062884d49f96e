"""The dispatcher moves a bin onto a truck that cannot take it: the page names the limit and how far
over, and saves the move only when asked (issue #18). At desktop (1366x900) and phone (390x844) sizes."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from web_support import Seeded, _new_page, shot, signed_in, wait_until

SIZES = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture(params=sorted(SIZES))
def sized(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Any]]:
    """A page at each size; fails the test on a JavaScript error."""
    ctx, pg, errors = _new_page(browser, **SIZES[request.param])
    yield request.param, pg
    ctx.close()
    assert not errors, errors


def _short_shift_plan(site: Seeded) -> dict[str, Any]:
    """A finished two-truck plan whose stored problem gives truck-2 a shift of 06:00-06:05."""
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import Plan

    started = site.api(
        "/api/plans",
        "operator",
        "POST",
        {"time_limit_s": 2, "trucks": ["truck-1", "truck-2"], "threshold": 0.8},
    )
    for _ in range(200):
        plan = site.api(f"/api/plans/{started['id']}", "operator")
        if plan["status"] != "running":
            break
        time.sleep(0.2)
    assert plan["status"] == "done", plan
    cfg = load_server_config(site.config_path)
    engine = make_engine(cfg.database)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            row = s.get(Plan, plan["id"])
            assert row is not None and row.problem is not None
            trucks = [
                {**t, "shift": ["06:00", "06:05"]} if t["id"] == "truck-2" else t
                for t in row.problem["trucks"]
            ]
            row.problem = {**row.problem, "trucks": trucks}
    finally:
        engine.dispose()
    return plan


def test_a_move_past_the_shift_end_is_refused_with_the_minutes_over(
    sized: tuple[str, Any], site: Seeded
) -> None:
    """The refusal lists the broken limit in words with the minutes over; "Move anyway" states the
    cost and saves the move, whose plan then lists the breach in words (HH:MM, not seconds)."""
    size, page = sized
    plan = _short_shift_plan(site)
    moving = next(
        s["id"]
        for r in plan["result"]["routes"]
        for s in r["stops"]
        if s["kind"] == "bin" and r["truck"] == "truck-1"
    )
    signed_in(page, site, "operator", "plan")
    page.wait_for_selector(f"#p-history option[value='{plan['id']}']", state="attached")
    if page.input_value("#p-history") != plan["id"]:
        page.select_option("#p-history", plan["id"])
    page.wait_for_selector("#p-move-bin")
    page.fill("#p-move-bin", moving)
    page.select_option("#p-move-truck", "truck-2")
    page.click("#p-move-btn")
    item = page.locator("#p-move-breaches li[data-limit='shift_end']")
    item.wait_for()
    text = item.inner_text()
    # "58 min" or "1 h 12 min": the same words in the list and on the button.
    found = re.fullmatch(
        r"truck-2 is back at the depot at \d\d:\d\d, ((?:\d+ h )?\d+ min) after its shift ends at 06:05", text
    )
    assert found, text
    anyway = page.inner_text("#p-move-anyway")
    assert f"{found.group(1)} past the shift end" in anyway, anyway
    assert site.api("/api/plans/latest", "operator")["id"] == plan["id"]  # nothing saved yet
    page.locator("#p-move-result").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    shot(page, f"plan-move-refused-{size}")

    page.click("#p-move-anyway")
    page.wait_for_selector("#plan-violations")
    violations = page.inner_text("#plan-violations")
    assert text in violations and not re.search(r"\d{5}", violations), violations
    latest = site.api("/api/plans/latest", "operator")
    assert latest["request"]["edit_of"] == plan["id"] and latest["result"]["breaches"]
    page.wait_for_selector(f".manifest[data-truck='truck-2'] tr[data-stop='{moving}']")
    # The dispatcher's manifest names each bin stop, with its street address.
    cell = page.locator(f".manifest[data-truck='truck-2'] tr[data-stop='{moving}'] td").nth(1).inner_text()
    assert "Amsterdam" in cell, cell
    shot(page, f"plan-move-anyway-{size}", full_page=True)


def _finished(site: Seeded, trucks: list[str]) -> dict[str, Any]:
    started = site.api(
        "/api/plans", "operator", "POST", {"time_limit_s": 2, "trucks": trucks, "threshold": 0.8}
    )
    for _ in range(200):
        plan = site.api(f"/api/plans/{started['id']}", "operator")
        if plan["status"] != "running":
            assert plan["status"] == "done", plan
            return dict(plan)
        time.sleep(0.2)
    raise AssertionError("plan did not finish")


def test_plan_page_points_to_the_plan_drivers_follow(sized: tuple[str, Any], site: Seeded) -> None:
    """On a newer, unpublished plan of the same day, the page says which plan drivers follow and shows
    it on a click (the demo re-plans every minute, so it soon leaves the last 20 plans)."""
    size, page = sized
    published = _finished(site, ["truck-1"])
    site.api(f"/api/plans/{published['id']}/publish", "operator", "POST")
    try:
        newer = _finished(site, ["truck-1", "truck-2"])
        assert newer["service_day"] == published["service_day"]
        signed_in(page, site, "operator", "plan")
        page.wait_for_selector("#plan-show-published")
        page.wait_for_function("id => document.querySelector('#p-history').value === id", arg=newer["id"])
        note = page.inner_text("#plan-unpublished")
        assert note.startswith("Not published: drivers follow the plan published") and "olga" in note, note
        assert "instead" in page.inner_text("#plan-publish")
        shot(page, f"plan-points-to-published-{size}")
        page.click("#plan-show-published")
        page.wait_for_selector("#plan-published")
        page.wait_for_function("id => document.querySelector('#p-history').value === id", arg=published["id"])
    finally:
        site.api(f"/api/plans/{published['id']}/unpublish", "operator", "POST")


def test_driver_sign_in_link_opens_the_manifest(phone: Any, site: Seeded) -> None:
    """The driver's one-click link (what the demo prints) lands on its truck's manifest, no error."""
    plan = _finished(site, ["truck-1"])
    site.api(f"/api/plans/{plan['id']}/publish", "operator", "POST")
    try:
        phone.goto(site.base_url + "/#token=" + site.tokens["driver"])
        phone.wait_for_selector(".stops, #manifest-none")
        assert phone.url.endswith("#/manifest") and site.tokens["driver"] not in phone.url
        assert phone.locator("#flash.flash-error:visible").count() == 0
        first = phone.locator(".stop").first
        assert first.locator(".stop-eta-label").inner_text().strip() == "Leave"  # the depot: a departure
        shot(phone, "driver-sign-in-link")
    finally:
        site.api(f"/api/plans/{plan['id']}/unpublish", "operator", "POST")


def test_a_bins_history_shows_what_the_drivers_reported(sized: tuple[str, Any], site: Seeded) -> None:
    """A driver's "overflowing" report appears under the bin's fill history on the Cameras page."""
    size, page = sized
    plan = _finished(site, ["truck-1"])
    site.api(f"/api/plans/{plan['id']}/publish", "operator", "POST")
    try:
        stop = next(s["id"] for r in plan["result"]["routes"] for s in r["stops"] if s["kind"] == "bin")
        site.api(
            f"/api/manifests/truck-1/stops/{stop}",
            "driver",
            "POST",
            {"status": "overflowing", "note": f"bags ({size})"},
        )
        signed_in(page, site, "operator", f"cameras/{stop}")
        row = page.locator(".driver-reports li", has_text=f"bags ({size})")
        row.wait_for()
        text = row.inner_text()
        assert "overflowing" in text and "dan (truck-1)" in text, text
        row.scroll_into_view_if_needed()
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
        shot(page, f"history-driver-reports-{size}")
    finally:
        site.api(f"/api/plans/{plan['id']}/unpublish", "operator", "POST")


def test_map_lists_what_needs_attention(sized: tuple[str, Any], site: Seeded) -> None:
    """Beside the map: the drivers' blocked / overflowing reports of the last day and the cameras
    offline, each with where the bin is; a click selects the bin."""
    size, page = sized
    plan = _finished(site, ["truck-1"])
    site.api(f"/api/plans/{plan['id']}/publish", "operator", "POST")
    try:
        stops = [s["id"] for r in plan["result"]["routes"] for s in r["stops"] if s["kind"] == "bin"]
        site.api(
            f"/api/manifests/truck-1/stops/{stops[-1]}", "driver", "POST", {"status": "blocked", "note": size}
        )
        signed_in(page, site, "operator", "map")
        reported = page.locator(f"[data-attention='reported'] li:has(button:text-is('{stops[-1]}'))")
        reported.wait_for()
        assert "blocked" in reported.inner_text() and size in reported.inner_text()
        assert "Amsterdam" in reported.locator(".urgent-where").inner_text()
        offline = page.eval_on_selector_all(
            "[data-attention='offline'] li button", "els => els.map(e => e.textContent)"
        )
        assert sorted(offline) == sorted(
            b["bin_id"] for b in site.bins if b["bin_id"] in {"nrd-05", "ctr-04"}
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
        shot(page, f"map-attention-{size}")
        reported.locator("button").click()
        page.wait_for_selector(f"#bin-details h3:has-text('{stops[-1]}')")
    finally:
        site.api(f"/api/plans/{plan['id']}/unpublish", "operator", "POST")


def test_a_report_made_offline_is_sent_when_the_connection_is_back(phone: Any, site: Seeded) -> None:
    """No connection: the driver's report waits on the phone (said on the card, kept over a reload) and
    reaches the server once the phone is online again."""
    plan = _finished(site, ["truck-1"])
    site.api(f"/api/plans/{plan['id']}/publish", "operator", "POST")
    try:
        signed_in(phone, site, "driver", "manifest")
        phone.wait_for_selector(".stop-bin")
        card = phone.locator(".stop-bin").first
        bin_id = card.get_attribute("data-stop")
        phone.context.set_offline(True)
        phone.once("dialog", lambda d: d.accept("gate locked"))
        card.locator(".stop-btn-blocked").click()
        card.locator(".stop-report-pending").wait_for()
        assert "sent when the connection is back" in card.locator(".stop-report-pending").inner_text()
        shot(phone, "driver-offline-report")
        assert not [
            r
            for r in site.api(f"/api/stop-reports?plan_id={plan['id']}", "operator")
            if r["bin_id"] == bin_id
        ]
        time.sleep(1.5)
        made_before_online = int(time.time() * 1000)
        phone.context.set_offline(False)
        sent = wait_until(
            lambda: [
                r
                for r in site.api(f"/api/stop-reports?plan_id={plan['id']}", "operator")
                if r["bin_id"] == bin_id
            ],
            what="the waiting report sent",
        )
        assert [(r["status"], r["note"], r["by"]) for r in sent] == [("blocked", "gate locked", "dan")]
        assert sent[0]["ts"] < made_before_online  # stamped when the driver tapped, not when it arrived
        phone.wait_for_selector(f".stop[data-stop='{bin_id}'] .stop-report-blocked:not(.stop-report-pending)")
        assert phone.evaluate("localStorage.getItem('binsight.pendingReports')") is None
    finally:
        site.api(f"/api/plans/{plan['id']}/unpublish", "operator", "POST")
