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
    pages = ["Map", "Route plan", "Manifests", "Cameras", "Models", "Savings"]
    assert page.locator("#nav a").all_inner_texts() == pages
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
    assert page.locator("#nav a").all_inner_texts() == [
        "Map",
        "Route plan",
        "Manifests",
        "Cameras",
        "Labelling",
        "Models",
        "Savings",
    ]


def test_sign_in_link_takes_the_token_out_of_the_address(page: Any, site: Seeded) -> None:
    """/#token=... signs in and leaves neither the address nor the history holding the token."""
    page.goto(site.base_url + "/#token=" + site.tokens["admin"])
    page.wait_for_selector("#nav a")
    assert site.tokens["admin"] not in page.url
    # The new tab's about:blank and this page: the token's entry was replaced, not added to.
    assert page.evaluate("history.length") == 2
    assert page.inner_text("#who-name") == "ada (admin)"
    page.go_back()
    assert page.url == "about:blank"


def test_revoked_token_ends_the_session(page: Any, site: Seeded) -> None:
    """When the server stops accepting the token, the next call signs out with a message."""
    from sqlalchemy import update

    from binsight.server.auth import create_token, hash_token
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import ApiToken

    engine = make_engine(load_server_config(site.config_path).database)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as s, s.begin():
            token = create_token(s, "operator", "temp")
        page.goto(site.base_url + "/")
        page.fill("#token", token)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("[data-bin]")
        with sessions() as s, s.begin():
            s.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked_at=1))
    finally:
        engine.dispose()
    page.click("#nav a[data-view='cameras']")
    page.wait_for_selector("#login:not([hidden])")
    assert "session ended" in page.inner_text("#login-error")
    assert page.evaluate("sessionStorage.getItem('binsight.token')") is None
