"""Fixtures for the web page tests: the seeded real server and Debian's chromium (see web_support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import free_port
from web_support import CHROMIUM, CHROMIUM_ARGS, Seeded, _new_page, _Server, seed

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here drives chromium: mark them `browser` (deselect with -m "not browser")."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The seeded server, running; its base URL in ``.base_url``."""
    port = free_port()
    seeded = seed(tmp_path_factory.mktemp("web-server"), port)
    server = _Server(seeded.config_path, port)
    server.start(port)
    seeded.base_url = f"http://127.0.0.1:{port}"
    try:
        yield seeded
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless."""
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 1280x800 page; fails the test if the page logged a JavaScript error."""
    ctx, pg, errors = _new_page(browser, viewport={"width": 1280, "height": 800})
    pg.errors = errors
    yield pg
    ctx.close()
    assert not [e for e in errors if not getattr(pg, "expect_errors", False)], errors


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A 390x844 phone page (touch, 3x pixels)."""
    ctx, pg, errors = _new_page(
        browser, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    yield pg
    ctx.close()
    assert not errors, errors
