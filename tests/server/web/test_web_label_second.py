"""Issue #19, label quality on the labelling page: an image served for a second label says so, and
shows neither the first label nor the model's guess (desktop and phone).

Which images are second opinions is the server's (tests/server/rollout/test_label_quality.py); here
the server's own queue answer has its first image marked as one, so the page's side is tested alone.
"""

from __future__ import annotations

import json
from typing import Any

from web_support import Seeded, shot, signed_in


def _first_is_second_opinion(page: Any) -> None:
    marked: list[int] = []

    def mark(route: Any) -> None:
        response = route.fetch()
        items = response.json()
        assert items, "the seeded site has images waiting"
        if not marked:  # the first answer only: a later fetch of the queue is an ordinary one
            items[0]["second_opinion"] = True
            items[0]["predicted_fill"] = 0.83
            marked.append(1)
        route.fulfill(response=response, body=json.dumps(items))

    page.route("**/api/labels/queue?*", mark)


def _check(page: Any, site: Seeded, name: str) -> None:
    _first_is_second_opinion(page)
    signed_in(page, site, "labeller", "label")
    page.wait_for_selector("#l-second", state="visible")
    assert "someone else labelled this image" in page.inner_text("#l-second")
    meta = page.inner_text("#l-meta")
    assert "sent for a second label" in meta and "model says" not in meta
    assert page.input_value("#l-fill") == "50"  # not the model's 85%: no anchor
    shot(page, f"label-second-opinion-{name}")
    # The next image is an ordinary one again: no banner, the model's guess shown.
    page.keyboard.press("s")
    page.wait_for_selector("#l-second", state="hidden")


def test_a_second_opinion_image_says_so(page: Any, site: Seeded) -> None:
    """Desktop: the banner, no guess, the slider at 50%; gone on the next image."""
    _check(page, site, "desktop")


def test_a_second_opinion_image_says_so_on_a_phone(phone: Any, site: Seeded) -> None:
    """Phone: the same, the banner above the slider."""
    _check(phone, site, "phone")
