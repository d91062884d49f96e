"""Issue #18, route maps: every stop number stays visible (named to run after test_web_plan, which
expects to make the first plan)."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, finished_plan, shot, signed_in

SHOTS = "/tmp/shots-c"


def _min_stop_gap(pg: Any) -> float:
    return float(
        pg.evaluate(
            """() => { const c = [...document.querySelectorAll('.route-stop circle')]
              .map(e => [Number(e.getAttribute('cx')), Number(e.getAttribute('cy'))]);
            let m = Infinity;
            for (let i = 0; i < c.length; i++) for (let j = i + 1; j < c.length; j++)
              m = Math.min(m, Math.hypot(c[i][0] - c[j][0], c[i][1] - c[j][1]));
            return m; }"""
        )
    )


def test_every_stop_number_stays_visible(page: Any, phone: Any, site: Seeded) -> None:
    """On the plan's map no stop badge covers another, zoomed out on a phone too."""
    plan = finished_plan(site)
    stops = sum(1 for r in plan["result"]["routes"] for s in r["stops"] if s["kind"] == "bin")
    for pg, name in ((page, "plan-stops"), (phone, "phone-plan-stops")):
        signed_in(pg, site, "operator", "plan")
        pg.wait_for_selector(".route-stop")
        assert pg.locator(".route-stop").count() == stops
        pg.focus(".map-svg")
        pg.keyboard.press("-")
        pg.wait_for_timeout(300)
        assert _min_stop_gap(pg) >= 18.5
        shot(pg, name)
        pg.screenshot(path=f"{SHOTS}/{name}.png")
