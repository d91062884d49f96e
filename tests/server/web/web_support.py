"""Helpers for the web page tests, against the real server: a seeded SQLite database,
an API-only ``ServerRuntime``, and Debian's chromium driven by Playwright.

Seeding goes through the server's own code paths: bins with ``binsight server bins import``, tokens
with :func:`binsight.server.auth.create_token`, and readings, stats, availability and labelling images
as MQTT payloads through the ingest's :func:`parse` and :func:`write_batch`. Images are lid-camera
frames from the training side's synthetic renderer.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from netutil import wait_port

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "artifacts" / "screenshots"

HOUR_MS = 3_600_000

# Two sites in Amsterdam; fill at "now" and the hourly fill rate of each bin's current cycle.
BINS: list[dict[str, Any]] = [
    {"bin_id": "nrd-01", "lat": 52.3850, "lon": 4.8990, "site": "noord", "fill": 0.93, "rate": 0.012},
    {"bin_id": "nrd-02", "lat": 52.3895, "lon": 4.9105, "site": "noord", "fill": 0.86, "rate": 0.010},
    {"bin_id": "nrd-03", "lat": 52.3920, "lon": 4.8890, "site": "noord", "fill": 0.41, "rate": 0.004},
    # nrd-04's camera is noisy (sd 0.04) and once reads a wild 1.0: raw dots round a smoothed line.
    {
        "bin_id": "nrd-04",
        "lat": 52.3812,
        "lon": 4.9210,
        "site": "noord",
        "fill": 0.72,
        "rate": 0.011,
        "noise": 0.04,
    },
    {"bin_id": "nrd-05", "lat": 52.3960, "lon": 4.9020, "site": "noord", "fill": 0.18, "rate": 0.003},
    {"bin_id": "nrd-06", "lat": 52.3871, "lon": 4.8805, "site": "noord", "fill": 0.97, "rate": 0.015},
    {"bin_id": "ctr-01", "lat": 52.3702, "lon": 4.8952, "site": "centrum", "fill": 0.88, "rate": 0.014},
    {"bin_id": "ctr-02", "lat": 52.3731, "lon": 4.8870, "site": "centrum", "fill": 0.55, "rate": 0.008},
    {"bin_id": "ctr-03", "lat": 52.3668, "lon": 4.9011, "site": "centrum", "fill": 0.82, "rate": 0.012},
    {"bin_id": "ctr-04", "lat": 52.3645, "lon": 4.8898, "site": "centrum", "fill": 0.30, "rate": 0.005},
    {"bin_id": "ctr-05", "lat": 52.3759, "lon": 4.9066, "site": "centrum", "fill": 0.66, "rate": 0.009},
    {"bin_id": "ctr-06", "lat": 52.3688, "lon": 4.8795, "site": "centrum", "fill": 0.90, "rate": 0.016},
]
OFFLINE = {"nrd-05", "ctr-04"}
#: The class head's class (and its probability) on these bins' latest reading; the first two flag.
CLASSES = {"nrd-06": ("overflowing", 0.86), "ctr-03": ("contaminated", 0.74), "ctr-01": ("clean", 0.93)}
FLAGGED = {"nrd-06", "ctr-03"}
#: A street per site for the seeded bins' addresses (test data: the house numbers are made up).
STREETS = {"noord": "Buiksloterweg", "centrum": "Damrak"}


def address(b: dict[str, Any]) -> str:
    """The seeded address of bin ``b``: "Damrak 12, Amsterdam"."""
    return f"{STREETS[b['site']]} {int(b['bin_id'][-2:]) * 6}, Amsterdam"


IMAGES = [
    ("nrd-01", 0.93, "unsure"),
    ("ctr-02", 0.55, "unsure"),
    ("ctr-05", 0.66, "periodic"),
    ("nrd-03", 0.41, "periodic"),
    ("ctr-01", 0.88, "periodic"),
    ("nrd-06", 0.97, "periodic"),
    # Enough for every labelling test of the session to find images waiting (they label and skip as
    # one labeller, in file order).
    ("nrd-02", 0.22, "periodic"),
    ("ctr-03", 0.74, "periodic"),
    ("nrd-04", 0.35, "unsure"),
    ("ctr-04", 0.58, "periodic"),
    ("nrd-05", 0.81, "periodic"),
    ("ctr-02", 0.12, "periodic"),
]

SERVER_TOML = """\
database = "sqlite:///binsight.db"
[mqtt]
host = "127.0.0.1"
port = 1
[http]
host = "127.0.0.1"
port = {port}
[[fleet.depots]]
id = "depot"
lat = 52.3780
lon = 4.9000
[[fleet.disposal_sites]]
id = "tip-west"
lat = 52.3900
lon = 4.8700
service_min = 15
[[fleet.trucks]]
id = "truck-1"
depot = "depot"
capacity_l = 3000
shift = ["06:00", "07:30"]
[[fleet.trucks]]
id = "truck-2"
depot = "depot"
capacity_l = 3000
shift = ["06:00", "07:30"]
"""


@dataclass
class Seeded:
    """What the tests know about the seeded server."""

    workdir: Path
    config_path: Path
    tokens: dict[str, str]
    bins: list[dict[str, Any]] = field(default_factory=lambda: BINS)
    base_url: str = ""

    def api(self, path: str, role: str = "admin", method: str = "GET", body: Any = None) -> Any:
        import httpx

        r = httpx.request(
            method,
            self.base_url + path,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
            json=body,
            timeout=30,
        )
        r.raise_for_status()
        return r.json()


def _binsight(*args: str) -> subprocess.Popen[str]:
    """Start ``binsight ARGS`` (the real CLI, in its own process); the caller waits with :func:`_done`."""
    return subprocess.Popen(
        [sys.executable, "-m", "binsight", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _done(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"{' '.join(map(str, proc.args))} failed:\n{out}\n{err}"
    return out


def _seed_messages(now: int) -> list[tuple[str, bytes]]:
    """(topic, payload) pairs as the cameras would publish them."""
    import cv2

    from binsight.protocol import LabelImage, Reading, Stats, Topics
    from binsight.training.synth import render_frame

    topics = Topics()
    msgs: list[tuple[str, bytes]] = []
    for i, b in enumerate(BINS):
        bin_id = b["bin_id"]
        # Five days of two-hourly readings rising at the bin's rate; each time a cycle started the
        # bin was emptied (a sharp drop of 0.9), so fast bins show collections.
        rng = np.random.default_rng(i)
        for seq, h in enumerate(range(120, -1, -2)):
            ts = now - h * HOUR_MS - 5 * 60_000
            fill = b["fill"] - b["rate"] * h
            while fill < 0.02:
                fill += 0.9
            if b.get("noise") and h:  # the newest reading stays the bin's "fill"
                fill = 1.0 if h == 20 else min(1.0, max(0.0, fill + float(rng.normal(0.0, b["noise"]))))
            label, label_prob = CLASSES[bin_id] if h == 0 and bin_id in CLASSES else (None, None)
            reading = Reading(
                bin_id=bin_id, seq=seq, ts=ts, fill=round(fill, 4), quality="ok", model="m-seed",
                label=label, label_prob=label_prob,
            )  # fmt: skip
            msgs.append((topics.reading(bin_id), reading.model_dump_json().encode()))
        stats = Stats(
            bin_id=bin_id,
            ts=now - 60_000,
            uptime_s=3600.0 * (10 + i),
            outbox_depth=i % 3,
            dropped=0,
            model="m-seed",
            interval_s=7200.0,
            last_infer_ms=38.5 + i,
            last_error="camera timeout after 5 s" if bin_id in OFFLINE else None,
        )
        msgs.append((topics.stats(bin_id), stats.model_dump_json().encode()))
        msgs.append((topics.available(bin_id), b"offline" if bin_id in OFFLINE else b"online"))
    for k, (bin_id, fill, reason) in enumerate(IMAGES):
        index = next(i for i, b in enumerate(BINS) if b["bin_id"] == bin_id)
        frame = render_frame(index, fill, seed=7, size=(360, 480))
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        img = LabelImage(
            bin_id=bin_id,
            seq=1000 + k,
            ts=now - (k + 1) * 600_000,
            reason=reason,  # type: ignore[arg-type]
            fill=fill - 0.1 if reason == "unsure" else fill,
            model="m-seed",
            jpeg_b64=base64.b64encode(jpeg.tobytes()).decode(),
        )
        msgs.append((topics.image(bin_id), img.model_dump_json().encode()))
    return msgs


def seed(workdir: Path, port: int) -> Seeded:
    """Build a server.toml, import bins with the CLI, create tokens and ingest readings and images."""
    from binsight.protocol import Topics
    from binsight.server.auth import create_token
    from binsight.server.config import load_server_config
    from binsight.server.db.engine import make_engine, make_sessionmaker, now_ms
    from binsight.server.ingest.messages import Reject, parse
    from binsight.server.ingest.store import BinRegistry, write_batch

    workdir.mkdir(parents=True, exist_ok=True)
    cfg_path = workdir / "server.toml"
    cfg_path.write_text(SERVER_TOML.format(port=port))
    csv = workdir / "bins.csv"
    csv.write_text(
        "bin_id,lat,lon,capacity_l,site,name,address\n"
        + "".join(
            f"{b['bin_id']},{b['lat']},{b['lon']},1100,{b['site']},{b['site']} {b['bin_id'][-2:]},"
            f'"{address(b)}"\n'
            for b in BINS
        )
    )
    importing = _binsight("server", "bins", "import", str(csv), "--config", str(cfg_path))
    # Render the camera frames and build the payloads while the CLI imports the bins.
    now = now_ms()
    messages = _seed_messages(now)
    _done(importing)

    cfg = load_server_config(cfg_path)
    engine = make_engine(cfg.database)
    sessions = make_sessionmaker(engine)
    tokens: dict[str, str] = {}
    with sessions() as s, s.begin():
        tokens["admin"] = create_token(s, "admin", "ada")
        tokens["operator"] = create_token(s, "operator", "olga")
        tokens["labeller"] = create_token(s, "labeller", "lena")
        tokens["driver"] = create_token(s, "driver", "dan", truck="truck-1")

    topics = Topics()
    items = [parse(topics, t, p, now, 86_400_000) for t, p in messages]
    bad = [i for i in items if isinstance(i, Reject)]
    assert not bad, f"seed messages rejected: {bad[:3]}"
    with sessions() as s, s.begin():
        write_batch(s, items, BinRegistry(), False, now)
    engine.dispose()
    return Seeded(workdir=workdir, config_path=cfg_path, tokens=tokens)


class _Server:
    """An API-only ServerRuntime (no broker) on the seeded config, serving HTTP in a thread."""

    def __init__(self, config_path: Path, port: int) -> None:
        from binsight.server.config import load_server_config
        from binsight.server.runtime import ServerRuntime

        self.runtime = ServerRuntime(load_server_config(config_path), mqtt=False)
        assert self.runtime.config.http.port == port, "the seeded config names the port"

    def start(self, port: int) -> None:
        self.runtime.start()
        wait_port(port, timeout=30)

    def stop(self) -> None:
        self.runtime.stop()


class PageErrors(list[str]):
    """JavaScript errors a page raised; a test fails on any."""


def _new_page(browser: Any, **context_args: Any) -> tuple[Any, Any, PageErrors]:
    ctx = browser.new_context(locale="en-US", **context_args)
    page = ctx.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # Browser network logs ("Failed to load resource") are not script errors: an API 404 such as
    # "no plan yet" is expected. A missing asset is an error, caught by the response hook.
    page.on(
        "console",
        lambda m: (
            errors.append(f"console.{m.type}: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if (r.status >= 500 or (r.status >= 400 and "/static/" in r.url))
            else None
        ),
    )
    page.set_default_timeout(15_000)
    return ctx, page, errors


def login(page: Any, site: Seeded, role: str) -> None:
    """Sign in through the form, as a person would."""
    page.goto(site.base_url + "/")
    page.fill("#token", site.tokens[role])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#nav a")


def signed_in(page: Any, site: Seeded, role: str, view: str = "map") -> None:
    """Open ``#/view`` already signed in (the token placed in this tab's sessionStorage, as the form
    does), for tests about what comes after the form; the form itself is tested in test_web_login."""
    page.goto(site.base_url + "/static/icons/favicon.svg")
    page.evaluate("t => sessionStorage.setItem('binsight.token', t)", site.tokens[role])
    page.goto(f"{site.base_url}/#/{view}")
    page.wait_for_selector("#nav a")


def shot(page: Any, name: str, full_page: bool = False) -> Path:
    """Save a screenshot under artifacts/screenshots/ (look at them: readable is part of passing)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_until(fn: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def finished_plan(site: Seeded) -> dict[str, Any]:
    """The latest plan once finished, planning one (2 s limit) when there is none: a test that needs a
    plan must not leave one running, or the next test's plan waits behind it."""
    import httpx

    r = httpx.get(
        site.base_url + "/api/plans/latest", headers={"Authorization": f"Bearer {site.tokens['operator']}"}
    )
    if r.status_code != 200:
        site.api("/api/plans", "operator", method="POST", body={"time_limit_s": 2})

    def done() -> dict[str, Any] | None:
        plan = site.api("/api/plans/latest", "operator")
        return dict(plan) if plan["status"] != "running" else None

    plan = wait_until(done, timeout=60, what="a finished plan")
    assert plan["status"] == "done", plan.get("error")
    return dict(plan)
