"""Labelling a class beside the fill: a button per class and Shift+1..9, stored with the label
(desktop and phone)."""

from __future__ import annotations

from typing import Any

from test_web_label_queue import _add_images, _image_shown
from web_support import Seeded, shot, signed_in


def _stored(site: Seeded, image_id: int) -> Any:
    from sqlalchemy import select

    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import Label

    engine = make_engine(load_server_config(site.config_path).database)
    try:
        with make_sessionmaker(engine)() as s:
            return (
                s.execute(select(Label).where(Label.image_id == image_id).order_by(Label.id.desc()))
                .scalars()
                .first()
            )
    finally:
        engine.dispose()


def test_class_buttons_and_keys(page: Any, site: Seeded) -> None:
    """The class buttons list the usual classes; Shift+3 picks the third, pressing it again clears it;
    Enter saves fill and class together, and the next image starts with no class."""
    _add_images(site, 2, bin_id="nrd-02")
    assert site.api("/api/labels/classes", "labeller")["classes"] == [
        "clean",
        "overflowing",
        "contaminated",
        "blocked",
    ]
    signed_in(page, site, "labeller", "label")
    image_id = int(_image_shown(page))
    buttons = page.eval_on_selector_all("#l-classes [data-class]", "els => els.map(e => e.dataset.class)")
    assert buttons == ["clean", "overflowing", "contaminated", "blocked"]
    page.keyboard.press("8")
    page.keyboard.press("Shift+Digit3")
    assert page.get_attribute("[data-class='contaminated']", "aria-pressed") == "true"
    page.keyboard.press("Shift+Digit3")
    assert page.get_attribute("[data-class='contaminated']", "aria-pressed") == "false"
    page.keyboard.press("Shift+Digit2")
    assert page.eval_on_selector_all("[aria-pressed='true']", "els => els.map(e => e.dataset.class)") == [
        "overflowing"
    ]
    shot(page, "label-classes")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#flash').textContent.includes('overflowing')")
    row = _stored(site, image_id)
    assert row.fill is not None and abs(row.fill - 0.8) < 1e-6 and row.label == "overflowing"
    _image_shown(page, str(image_id))
    assert page.eval_on_selector_all("[aria-pressed='true']", "els => els.length") == 0
    assert not page.errors


def test_class_button_on_a_phone(phone: Any, site: Seeded) -> None:
    """At 390x844 the class buttons wrap beside the slider; a tap picks one, Save stores it."""
    _add_images(site, 1, bin_id="nrd-04")
    signed_in(phone, site, "labeller", "label")
    image_id = int(_image_shown(phone))
    phone.tap("[data-class='contaminated']")
    assert phone.get_attribute("[data-class='contaminated']", "aria-pressed") == "true"
    box = phone.locator("#l-classes").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    shot(phone, "label-classes-phone", full_page=True)
    phone.tap("#l-save")
    phone.wait_for_function("document.querySelector('#flash').textContent.includes('contaminated')")
    assert _stored(site, image_id).label == "contaminated"
