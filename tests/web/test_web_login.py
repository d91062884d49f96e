"""Signing in with a token, and what each role is offered."""

from __future__ import annotations

from typing import Any

import httpx
from web_support import Seeded, login, shot


def test_login_with_token_shows_name_role_and_pages(page: Any, site: Seeded) -> None:
    """A good token signs in; the header names the person and role; the token stays in this tab only."""
    page.goto(site.base_url + "/")
    page.wait_for_selector("#login:not([hidden])")
    shot(page, "login")
    page.fill("#token", site.tokens["operator"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#nav a")
    assert page.inner_text("#who-name") == "olga (operator)"
    assert page.locator("#nav a").all_inner_texts() == ["Map", "Route plan", "Fleet", "Models"]
    assert page.evaluate("sessionStorage.getItem('binsight.token')") == site.tokens["operator"]
    assert page.evaluate("localStorage.getItem('binsight.token')") is None
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('binsight.token')") is None


def test_bad_token_is_refused_with_a_message(page: Any, site: Seeded) -> None:
    """A wrong token is not accepted and the page says so; nothing else is shown."""
    page.expect_errors = True  # the browser logs the 401 response itself
    page.goto(site.base_url + "/")
    page.fill("#token", "bst_not-a-real-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("document.querySelector('#login-error').textContent.length > 0")
    assert "not accepted" in page.inner_text("#login-error")
    assert page.locator("#nav").is_hidden()


def test_labeller_cannot_reach_the_plan_button(page: Any, site: Seeded) -> None:
    """A labeller sees Map and Labelling only; #/plan sends them back and no plan button exists."""
    login(page, site, "labeller")
    assert page.locator("#nav a").all_inner_texts() == ["Map", "Labelling"]
    page.goto(site.base_url + "/#/plan")
    page.wait_for_function("location.hash === '#/map'")
    page.wait_for_selector("[data-bin]")
    assert page.locator("#plan-btn").count() == 0
    assert "cannot open that page" in page.inner_text("#flash")
    shot(page, "labeller-no-plan")
    # And the API refuses it anyway.
    r = httpx.post(
        site.base_url + "/api/plans", json={}, headers={"Authorization": f"Bearer {site.tokens['labeller']}"}
    )
    assert r.status_code == 403


def test_admin_is_offered_every_page(page: Any, site: Seeded) -> None:
    """An admin sees all five pages."""
    login(page, site, "admin")
    assert page.locator("#nav a").all_inner_texts() == ["Map", "Route plan", "Fleet", "Labelling", "Models"]
