"""Labelling by keyboard: three images labelled, each stored with who and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from web_support import Seeded, login, shot, signed_in


def test_label_three_images_by_keyboard(page: Any, site: Seeded) -> None:
    """Digits, F and arrows set the fill, Enter saves, U marks unusable; the labels land in the database."""
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import Label

    before = site.api("/api/labels/stats", "labeller")["total"]
    queue = site.api("/api/labels/queue?limit=10", "labeller")
    assert len(queue) >= 4
    # Unsure images come first.
    assert queue[0]["reason"] == "unsure"

    login(page, site, "labeller")
    page.click("#nav a[data-view='label']")
    done: list[int] = []
    keys = [["7", "ArrowRight"], ["F", "ArrowLeft", "ArrowLeft"], ["2"]]  # 75%, 90%, 20%
    expected = [0.75, 0.90, 0.20]
    for i, presses in enumerate(keys):
        page.wait_for_function(
            "ids => { const img = document.querySelector('#l-image');"
            " return img && img.dataset.imageId && !ids.includes(Number(img.dataset.imageId))"
            " && img.complete && img.naturalWidth > 0; }",
            arg=done,
        )
        image_id = int(page.get_attribute("#l-image", "data-image-id"))
        if i == 0:
            shot(page, "label")
        for k in presses:
            page.keyboard.press(k)
        assert page.inner_text("#l-fill-out") == f"{round(expected[i] * 100)}%"
        page.keyboard.press("Enter")
        done.append(image_id)
    # U marks the fourth unusable.
    page.wait_for_function(
        "ids => { const img = document.querySelector('#l-image');"
        " return img && img.dataset.imageId && !ids.includes(Number(img.dataset.imageId)); }",
        arg=done,
    )
    unusable_id = int(page.get_attribute("#l-image", "data-image-id"))
    page.keyboard.press("u")
    page.wait_for_function("document.querySelector('#flash').textContent.includes('unusable')")
    # Unusable images are not counted as labels.
    page.wait_for_function(f"document.querySelector('#l-total').textContent.startsWith('{before + 3} ')")
    shot(page, "label-after", full_page=True)

    assert site.api("/api/labels/stats", "labeller")["total"] == before + 3
    cfg = load_server_config(site.config_path)
    engine = make_engine(cfg.database)
    try:
        with make_sessionmaker(engine)() as s:
            rows = {
                lab.image_id: lab
                for lab in s.execute(select(Label).where(Label.image_id.in_([*done, unusable_id]))).scalars()
            }
    finally:
        engine.dispose()
    for image_id, fill in zip(done, expected, strict=True):
        assert rows[image_id].fill is not None and abs(rows[image_id].fill - fill) < 1e-6
        assert rows[image_id].who == "lena"
        assert rows[image_id].created_at > 0
    assert rows[unusable_id].unusable and rows[unusable_id].fill is None


def test_skip_moves_on_without_a_label(page: Any, site: Seeded) -> None:
    """S skips an image: the next one shows and the labelled total does not change."""
    before = site.api("/api/labels/stats", "labeller")["total"]
    signed_in(page, site, "labeller", "label")
    page.wait_for_function("document.querySelector('#l-image')?.dataset.imageId")
    first = page.get_attribute("#l-image", "data-image-id")
    page.keyboard.press("s")
    page.wait_for_function(f"document.querySelector('#l-image')?.dataset.imageId !== '{first}'")
    assert site.api("/api/labels/stats", "labeller")["total"] == before
