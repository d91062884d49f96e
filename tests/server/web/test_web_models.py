"""Models: metrics, the active one, the learning curve; promote and roll back offered to admins only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web_support import Seeded, shot, signed_in

# The trainer's report format (training/baselines.py): held-out metrics per training-set size; the
# test metrics carry the test set's own n (45), which must not replace the point's n.
CURVE = [{"n": n, "test": {"n": 45, "mae": mae, "rmse": mae * 1.3, "r2": 0.9}} for n, mae in
         ((20, 0.142), (40, 0.101), (80, 0.074), (160, 0.061))]  # fmt: skip
SHOTS = Path("/tmp/shots-a")
BASELINES = {"mean": {"mae": 0.231}}


@pytest.fixture(scope="module")
def models(site: Seeded) -> list[str]:
    """Two rows in the server's models table: an active one with a learning curve, an older one."""
    from sqlalchemy import select

    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.models import Bin, DeviceEvent, ModelRecord, Rollout

    engine = make_engine(load_server_config(site.config_path).database)
    versions = ["20261128T101500Z-aaaa1111", "20261129T221500Z-3fa2c1d0"]
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            s.add(
                ModelRecord(
                    version=versions[0],
                    created_at=1_795_860_000_000,
                    path="a.onnx",
                    sha256="a" * 64,
                    size=1,
                    precision="fp32",
                    metrics={"n": 120, "mae": 0.081, "rmse": 0.104, "r2": 0.86},
                    report={},
                    active=False,
                )
            )
            s.add(
                ModelRecord(
                    version=versions[1],
                    created_at=1_795_990_000_000,
                    path="b.onnx",
                    sha256="b" * 64,
                    size=1,
                    precision="int8",
                    metrics={"n": 160, "mae": 0.061, "rmse": 0.083, "r2": 0.91},
                    report={
                        "learning_curve": CURVE,
                        "baselines": BASELINES,
                        "comparison": {
                            "metric": "mae",
                            "n": 48,
                            "test_bins": ["ctr-02", "nrd-03"],
                            "candidate": {
                                "version": versions[1],
                                "mae": 0.061,
                                "per_site": {"noord": {"mae": 0.058}},
                            },
                            "active": {
                                "version": versions[0],
                                "mae": 0.081,
                                "per_site": {"noord": {"mae": 0.079}},
                            },
                        },
                    },
                    active=True,
                )
            )
            # Both reached every bin: a rollback from the active one goes back to the older one.
            for i, v in enumerate(versions):
                at = 1_795_990_000_000 + i * 1000
                s.add(Rollout(kind="promote", version=v, previous=versions[0] if i else None, state="all",
                              canary_bins=[], forced=False, created_by="admin", started_at=at,
                              updated_at=at, all_at=at))  # fmt: skip
            refusing = s.execute(select(Bin.id).order_by(Bin.id)).scalars().first()
            s.add(DeviceEvent(bin_id=refusing, ts=1_795_990_100_000, received_at=1_795_990_100_000,
                              kind="model", state="retrying", ref=versions[1],
                              detail="no trusted public key configured ([updates] public_key)"))  # fmt: skip
    finally:
        engine.dispose()
    return versions


def test_models_page_shows_metrics_curve_and_admin_actions(
    page: Any, site: Seeded, models: list[str]
) -> None:
    """The list shows both models and the active one; its learning curve is drawn; admins may promote."""
    signed_in(page, site, "admin", "models")
    page.wait_for_selector(f"[data-model='{models[1]}']")
    active = page.inner_text(f"[data-model='{models[1]}']")
    assert "active" in active and "MAE 0.061" in active and "int8" in active
    older = page.locator(f"[data-model='{models[0]}']")
    assert "MAE 0.081" in older.inner_text()
    assert older.locator("button", has_text="Promote").count() == 1
    assert page.inner_text("#m-rollback") == f"Roll back to {models[0]}"
    assert "claimed by the file, on its own test set of 160" in active
    # The active model's learning curve: one dot per point, at as many x positions as label counts
    # (not all at the test set's n), and the mean-fill baseline as a dashed line.
    assert page.locator(".chart .series-dot").count() == len(CURVE)
    xs = {page.locator(".chart .series-dot").nth(i).get_attribute("cx") for i in range(len(CURVE))}
    assert len(xs) == len(CURVE), xs
    assert page.locator(".chart .series-baseline").count() == 1
    # The camera that refused a release, with its reason.
    assert "no trusted public key" in page.inner_text("#m-refusals")
    # Label quality: the panel is there (agreement, gold, per labeller) whatever the seeded labels are.
    page.wait_for_selector("section[aria-label='Label quality'] h2")
    assert "labelled by two" in page.inner_text("#m-agreement")
    assert "baseline: mean (0.231)" in page.inner_text("#view")
    # How it compared with the model that was active, overall and per site.
    detail = page.inner_text("section[aria-label='Model details']")
    assert "48 held-out labels" in detail and "noord" in detail and "0.058" in detail and "0.079" in detail
    shot(page, "models", full_page=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "models-desktop.png"), full_page=True)


def test_models_page_on_a_phone(phone: Any, site: Seeded, models: list[str]) -> None:
    """At 390x844 the list, the refusals and the roll-back button are there and nothing overflows."""
    signed_in(phone, site, "admin", "models")
    phone.wait_for_selector(f"[data-model='{models[1]}']")
    phone.wait_for_selector("#m-refusals")
    assert phone.is_visible("#m-rollback")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, width
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SHOTS / "models-phone.png"), full_page=True)


def test_roll_back_is_not_offered_without_a_model_to_go_back_to(
    page: Any, site: Seeded, models: list[str]
) -> None:
    """The server names no rollback target (a single model, or back at the oldest): no button, no 409."""

    def no_target(route: Any) -> None:
        route.fulfill(json={**route.fetch().json(), "rollback_to": None})

    page.route("**/api/rollout", no_target)
    signed_in(page, site, "admin", "models")
    page.wait_for_selector(f"[data-model='{models[1]}']")
    page.wait_for_selector("#m-refusals")
    assert page.locator("#m-rollback").count() == 0


def test_operator_sees_models_without_promote(page: Any, site: Seeded, models: list[str]) -> None:
    """An operator reads the models but is offered neither promote nor roll back."""
    signed_in(page, site, "operator", "models")
    page.wait_for_selector(f"[data-model='{models[0]}']")
    assert page.locator("button", has_text="Promote").count() == 0
    assert page.locator("#m-rollback").count() == 0


def test_promote_and_rollback_send_the_contract_requests(page: Any, site: Seeded, models: list[str]) -> None:
    """Promote asks for a reason and posts it; roll back asks to confirm and posts. (The server's side of
    promotion is the retraining issue's; this checks the page's half of docs/contracts.md.)"""
    page.expect_errors = True  # the server may refuse these seeded models (no real files behind them)
    signed_in(page, site, "admin", "models")
    page.wait_for_selector(f"[data-model='{models[0]}'] button")

    def on_dialog(d: Any) -> None:
        if d.type == "prompt":
            d.accept("canary looked fine")
        else:
            d.dismiss()  # "force it anyway?": no

    page.on("dialog", on_dialog)
    with page.expect_request(lambda r: r.method == "POST" and "/promote" in r.url) as req:
        page.click(f"[data-model='{models[0]}'] button:text-is('Promote')")
    assert req.value.url.endswith(f"/api/models/{models[0]}/promote")
    assert req.value.post_data_json == {"reason": "canary looked fine"}
    assert req.value.headers["authorization"] == f"Bearer {site.tokens['admin']}"
    # These seeded models carry no held-out comparison, so the server's gate refuses; the page says why.
    page.wait_for_selector("#flash:not([hidden])")
    assert "comparison" in page.inner_text("#flash") or "Promot" in page.inner_text("#flash")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/models/rollback")) as rb:
        page.click("#m-rollback")
    assert rb.value.post_data_json == {"reason": "canary looked fine"}
