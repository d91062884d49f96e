"""Savings: the manager's report, its figures as the API gives them, and the CSV download."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, login, shot, signed_in


def test_savings_page_shows_the_report(page: Any, phone: Any, site: Seeded) -> None:
    """Operators see the report in plain words and a table; labellers are not offered the page."""
    login(page, site, "operator")
    page.click("#nav a[data-view='savings']")
    page.wait_for_selector("#view table caption")
    frm, to = page.input_value("#s-from"), page.input_value("#s-to")
    rep = site.api(f"/api/reports/savings?from={frm}&to={to}", "operator")
    text = page.inner_text("#view")
    assert rep["summary"][0] in text
    assert f"{rep['bins']} bins with readings" in text
    assert "How full bins were when lifted" in text and "Fixed schedule (replayed)" in text
    assert "Fixed schedule km (replayed)" in text and all(line in text for line in rep["summary"])
    with page.expect_download() as dl:
        page.click("button:text-is('Download CSV')")
    assert dl.value.suggested_filename == f"binsight-savings-{frm}-{to}.csv"
    shot(page, "savings", full_page=True)

    signed_in(phone, site, "admin", "savings")
    phone.wait_for_selector("#view table caption")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(phone, "savings-phone", full_page=True)


def test_labellers_have_no_savings_page(page: Any, site: Seeded) -> None:
    login(page, site, "labeller")
    assert page.locator("#nav a[data-view='savings']").count() == 0
