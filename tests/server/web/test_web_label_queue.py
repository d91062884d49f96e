"""Issue #18, labelling: the true queue size and progress, going back to fix a label, zoom, and the
site's labelled examples nearest empty and nearest full (desktop and phone)."""

from __future__ import annotations

from typing import Any

from web_support import Seeded, shot, signed_in

SHOTS = "/tmp/shots-c"


def _add_images(site: Seeded, n: int, bin_id: str = "ctr-03") -> None:
    """Ingest ``n`` more camera images (as the cameras send them), so these tests never empty the
    queue the other labelling tests use."""
    import base64

    import cv2

    from binsight.protocol import LabelImage, Topics
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker, now_ms
    from binsight.server.ingest.messages import parse
    from binsight.server.ingest.store import BinRegistry, write_batch
    from binsight.training.synth import render_frame

    topics = Topics()
    now = now_ms()
    items = []
    for k in range(n):
        frame = render_frame(8, 0.2 + 0.1 * k, seed=11 + k, size=(360, 480))
        ok, jpeg = cv2.imencode(".jpg", frame)
        assert ok
        img = LabelImage(
            bin_id=bin_id,
            seq=now % 1_000_000 + k,
            ts=now - k * 1000,
            reason="unsure",
            fill=0.5,
            model="m-seed",
            jpeg_b64=base64.b64encode(jpeg.tobytes()).decode(),
        )
        items.append(parse(topics, topics.image(bin_id), img.model_dump_json().encode(), now, 86_400_000))
    engine = make_engine(load_server_config(site.config_path).database)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            write_batch(s, items, BinRegistry(), False, now)
    finally:
        engine.dispose()


def _image_shown(page: Any, not_id: str | None = None) -> str:
    page.wait_for_function(
        "old => { const img = document.querySelector('#l-image');"
        " return img && img.dataset.imageId && img.dataset.imageId !== old"
        " && img.complete && img.naturalWidth > 0; }",
        arg=not_id,
    )
    return str(page.get_attribute("#l-image", "data-image-id"))


def test_queue_size_back_and_relabel(page: Any, site: Seeded) -> None:
    """The count is the server's true queue size; B goes back and a second save replaces the label."""
    _add_images(site, 3)
    waiting = site.api("/api/labels/queue/size", "labeller")["waiting"]
    assert waiting == len(site.api("/api/labels/queue?limit=500", "labeller"))
    signed_in(page, site, "labeller", "label")
    first = _image_shown(page)
    page.wait_for_function(f"document.querySelector('#l-count').textContent.startsWith('{waiting} image')")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    second = _image_shown(page, first)
    page.wait_for_function(
        f"document.querySelector('#l-count').textContent.startsWith('{waiting - 1} image')"
    )
    assert page.get_attribute("#l-progress", "value") == "1"
    # Back: the first image again, with the fill it was given; saving replaces that label.
    page.keyboard.press("b")
    assert _image_shown(page, second) == first
    assert page.inner_text("#l-fill-out") == "30%"
    assert "saving again replaces it" in page.inner_text("#l-revisit")
    page.keyboard.press("6")
    page.keyboard.press("Enter")
    assert _image_shown(page, first) == second
    assert not page.locator("#l-revisit").is_visible()
    assert "1 labelled this session" in page.inner_text("#l-count")
    assert _counted_fill(site, int(first)) == 0.6


def _counted_fill(site: Seeded, image_id: int) -> float | None:
    """The fill of the image's label that counts (the newest)."""
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.labels import counted_labels

    engine = make_engine(load_server_config(site.config_path).database)
    try:
        with make_sessionmaker(engine)() as s:
            return next(c.fill for c in counted_labels(s) if c.image_id == image_id)
    finally:
        engine.dispose()


def _bin_of(site: Seeded, image_id: int) -> str:
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import Image

    engine = make_engine(load_server_config(site.config_path).database)
    try:
        with make_sessionmaker(engine)() as s:
            image = s.get(Image, image_id)
            assert image is not None
            return image.bin_id
    finally:
        engine.dispose()


def test_zoom_and_reference_images(page: Any, site: Seeded) -> None:
    """Z zooms the image; the site's labelled examples nearest empty and nearest full show beside it."""
    _add_images(site, 3)
    signed_in(page, site, "labeller", "label")
    first = _image_shown(page)
    bin_id = _bin_of(site, int(first))
    # Label two images of the site so it has examples: the next ones in the queue.
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    second = _image_shown(page, first)
    page.keyboard.press("F")
    page.keyboard.press("Enter")
    _image_shown(page, second)
    refs = site.api(f"/api/labels/references?bin_id={bin_id}", "labeller")
    assert refs["empty"] is not None and refs["empty"]["fill"] <= 0.1
    page.keyboard.press("z")
    assert page.get_attribute(".label-image-box", "data-zoom") == "2"
    assert "scale(2)" in (page.get_attribute("#l-image", "style") or "")
    page.keyboard.press("z")
    page.keyboard.press("z")
    assert page.get_attribute(".label-image-box", "data-zoom") == "1"
    page.wait_for_selector("#l-refs figure img")
    shot(page, "label-refs", full_page=True)
    page.screenshot(path=f"{SHOTS}/label-refs.png", full_page=True)


def test_labelling_on_a_phone(phone: Any, site: Seeded) -> None:
    """At 390 px the image, the count and the buttons fit the width."""
    _add_images(site, 1)
    signed_in(phone, site, "labeller", "label")
    _image_shown(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.locator("#l-prev").is_visible() and phone.locator("#l-zoom").is_visible()
    phone.screenshot(path=f"{SHOTS}/phone-label.png", full_page=True)
