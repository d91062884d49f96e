"""Issue #18, offline (a progressive web app; named to run after test_web_plan, which expects to
make the first plan): a service worker keeps the page and the last bins and plans, so a phone that
loses its connection still shows them, and the page says the data is saved, not live."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, finished_plan, shot, signed_in

SHOTS = "/tmp/shots-c"


def _go_offline_and_reload(pg: Any, site: Seeded, view: str, ready: str) -> None:
    signed_in(pg, site, "operator", view)
    pg.wait_for_selector(ready)
    pg.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    # Once the worker controls the page, what the page fetches is saved: load it once more online.
    pg.reload()
    pg.wait_for_selector(ready)
    assert not pg.locator("#offline-note").is_visible()
    pg.context.set_offline(True)
    pg.reload()
    pg.wait_for_selector(ready)


def test_map_offline_on_a_phone(phone: Any, site: Seeded) -> None:
    """Offline, the reloaded page still shows the bins and says they are saved data."""
    _go_offline_and_reload(phone, site, "map", "[data-bin]")
    note = phone.locator("#offline-note")
    note.wait_for(state="visible")
    assert "No connection" in note.inner_text()
    assert phone.locator("svg [data-bin]").count() == len(site.bins)
    shot(phone, "phone-offline-map")
    phone.screenshot(path=f"{SHOTS}/phone-offline-map.png")
    phone.context.set_offline(False)


def test_plan_offline(page: Any, site: Seeded) -> None:
    """The last fetched plan answers offline too (the worker saves /api/plans reads)."""
    finished_plan(site)
    _go_offline_and_reload(page, site, "plan", "#plan-status:not(:empty)")
    page.locator("#offline-note").wait_for(state="visible")
    page.screenshot(path=f"{SHOTS}/plan-offline.png")
    page.context.set_offline(False)
