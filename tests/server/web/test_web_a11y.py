"""Accessibility basics on every page: names for controls, one h1, keyboard reachability."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, login, signed_in

UNNAMED = """() => {
  const name = (el) => {
    if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
    if (el.labels && el.labels.length) return [...el.labels].map((l) => l.textContent).join(' ');
    const by = el.getAttribute('aria-labelledby');
    if (by) return document.getElementById(by)?.textContent;
    if (el.tagName === 'IMG') return el.getAttribute('alt') ?? null;
    return el.textContent;
  };
  const visible = (el) => el.offsetParent !== null || el.getClientRects().length > 0;
  return [...document.querySelectorAll('input, select, button, a[href], img')]
    .filter(visible)
    .filter((el) => !(el.tagName === 'IMG' && el.getAttribute('alt') === '' && el.closest('a')))
    .filter((el) => !(name(el) || '').trim())
    .map((el) => el.outerHTML.slice(0, 120));
}"""


READY = {"map": "[data-bin]", "plan": "#plan-status:not(:empty)", "manifest": "#manifest-none",
         "cameras": "[data-device]", "label": "#l-total", "models": "#view .table-wrap"}  # fmt: skip


def test_every_control_has_a_name_and_each_page_one_h1(page: Any, site: Seeded) -> None:
    """On every page, inputs, buttons, links and images have accessible names, and there is one h1."""
    login(page, site, "admin")
    for view, ready in READY.items():
        page.goto(f"{site.base_url}/#/{view}")
        page.wait_for_selector(ready)
        assert page.evaluate(UNNAMED) == [], view
        assert page.locator("h1:visible").count() == 1, view


def test_keyboard_reaches_the_skip_link_then_the_pages(page: Any, site: Seeded) -> None:
    """Tab starts at "Skip to content", then the brand and the page links, in reading order."""
    signed_in(page, site, "operator", "map")
    page.reload()  # a fresh page: focus starts at the top of the document
    page.wait_for_selector("[data-bin]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    seen = []
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert seen == ["binsight", "Map", "Route plan", "Manifests", "Cameras", "Models"]


def test_refreshing_the_bin_list_keeps_keyboard_focus(page: Any, site: Seeded) -> None:
    """The map's list is rebuilt on every refresh; a keyboard user's focus stays on the same bin."""
    login(page, site, "operator")
    page.wait_for_selector("[data-bin-row='ctr-02'] button")
    page.focus("[data-bin-row='ctr-02'] button")
    # A refresh re-renders the list, as the periodic reload does.
    page.evaluate("document.querySelector('#f-offline').dispatchEvent(new Event('change'))")
    assert page.evaluate("document.activeElement.closest('[data-bin-row]')?.dataset.binRow") == "ctr-02"
