"""Alerts: one per state change, signed, delivered by a bounded retrying queue that never blocks.

The webhook receiver is a real local HTTP server (``http.server`` on a free port); the MQTT side is
in test_alerts_mqtt.py against a real Mosquitto.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from server_helpers import item, now_ms, reading
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.alerts import Alert, WebhookSender
from binsight.server.config import ServerConfig
from binsight.server.db.models import Device
from binsight.server.fleet_watch import FleetWatcher
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.latency import REGISTRY

SECRET = "s3cret-for-tests"


class Receiver:
    """A local webhook endpoint: records each POST; answers ``fail_first`` of them with 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.posts: list[tuple[dict[str, Any], dict[str, str], bytes]] = []
        self.fail_left = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    failing = outer.fail_left > 0
                    outer.fail_left -= 1
                    if not failing:
                        outer.posts.append((json.loads(body), dict(self.headers), body))
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(p["bin_id"], p["event"]) for p, _h, _b in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


STEP = 600_000  # readings 10 minutes apart, as the device default


def store(sessions: sessionmaker[Session], bin_id: str, seq: int, fill: float) -> None:
    """One reading, timed by its seq (ten minutes apart, in the past) so the smoothing sees them in order."""
    ts = now_ms() - (1000 - seq) * STEP
    with sessions() as s, s.begin():
        write_batch(
            s, [item("reading", bin_id, reading(bin_id, seq, fill, ts=ts))], BinRegistry(), False, now_ms()
        )


def alerts_config(make_config: Callable[..., ServerConfig], db_url: str, url: str, **kw: Any) -> ServerConfig:
    alerts = {"enabled": True, "webhook_url": url, "mqtt": False, **kw}
    return make_config(database=db_url, alerts=alerts, forecast={"threshold": 0.8})


def value(channel: str, outcome: str) -> float:
    labels = {"channel": channel, "outcome": outcome}
    return REGISTRY.get_sample_value("binsight_alert_deliveries_total", labels) or 0.0


def test_one_alert_per_state_change_signed(
    sessions: sessionmaker[Session],
    make_config: Callable[..., ServerConfig],
    db_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """Readings that stay full alert once; overflow, emptied and the camera going offline each once;
    each POST carries an HMAC-SHA256 of its body under the configured secret. Levels follow the
    smoothed fill: a change shows once two readings agree on it."""
    (tmp_path / "secret").write_text(SECRET + "\n")
    cfg = alerts_config(
        make_config,
        db_url,
        receiver.url,
        secret_file=str(tmp_path / "secret"),
        events=["threshold", "overflow", "emptied", "offline", "online"],
    )
    watcher = FleetWatcher(cfg, sessions, None)
    watcher.sender.start()  # type: ignore[union-attr]
    try:
        store(sessions, "b1", 1, 0.5)
        assert watcher.run_once() == []  # ok, camera online: nothing to say
        for seq, fill in ((2, 0.85), (3, 0.86), (4, 0.9)):
            store(sessions, "b1", seq, fill)
            watcher.run_once()
        for seq in range(5, 11):  # the camera reads a full bin (its end of scale) for an hour
            store(sessions, "b1", seq, 1.0)
            watcher.run_once()
        watcher.run_once()  # no change: nothing
        for seq in (11, 12):
            store(sessions, "b1", seq, 0.1)
            watcher.run_once()
        with sessions() as s, s.begin():
            s.execute(update(Device).where(Device.bin_id == "b1").values(available="offline"))
        watcher.run_once()
        expected = [("b1", "threshold"), ("b1", "overflow"), ("b1", "emptied"), ("b1", "offline")]
        wait_for(lambda: len(receiver.events()) == len(expected))
        time.sleep(0.2)
        assert receiver.events() == expected
        for _payload, headers, body in receiver.posts:
            mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Binsight-Signature"] == f"sha256={mac}"
            assert headers["Content-Type"] == "application/json"
        first = receiver.posts[0][0]
        # The smoothed fill: the two readings that agreed on the jump, 0.85 and 0.86.
        assert (first["state"], first["previous"], first["fill"]) == ("full", "ok", 0.855)
    finally:
        watcher.stop()


def test_one_wild_frame_does_not_alert_an_overflow(
    sessions: sessionmaker[Session], make_config: Callable[..., ServerConfig], db_url: str, receiver: Receiver
) -> None:
    """A bin at 0.5 whose camera reads 1.0 once (glare, a bag on the lens) raises no alert: alerts
    follow the smoothed fill, which holds a lone reading back; the raw reading is kept as it came."""
    cfg = alerts_config(make_config, db_url, receiver.url, events=["threshold", "overflow", "emptied"])
    watcher = FleetWatcher(cfg, sessions, None)
    watcher.sender.start()  # type: ignore[union-attr]
    try:
        for seq in range(1, 7):
            store(sessions, "spike", seq, 0.5)
        watcher.run_once()
        store(sessions, "spike", 7, 1.0)
        assert watcher.run_once() == []
        store(sessions, "spike", 8, 0.5)
        assert watcher.run_once() == []
        with sessions() as s:
            d = s.get(Device, "spike")
            assert d is not None and d.fill_smooth is not None and d.fill_smooth < 0.55
        time.sleep(0.2)
        assert receiver.events() == []
    finally:
        watcher.stop()


def test_two_processes_alert_a_change_once(
    sessions: sessionmaker[Session], make_config: Callable[..., ServerConfig], db_url: str, receiver: Receiver
) -> None:
    """Two watchers over one database (two server processes): each change is alerted by one of them."""
    cfg = alerts_config(make_config, db_url, receiver.url)
    a, b = FleetWatcher(cfg, sessions, None), FleetWatcher(cfg, sessions, None)
    for w in (a, b):
        w.sender.start()  # type: ignore[union-attr]
    try:
        for n in range(5):
            store(sessions, f"two-{n}", 1, 0.9)
        results: list[int] = []
        threads = [threading.Thread(target=lambda w=w: results.append(len(w.run_once()))) for w in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(results) == 5
        wait_for(lambda: len(receiver.events()) == 5)
        assert sorted(receiver.events()) == [(f"two-{n}", "threshold") for n in range(5)]
    finally:
        a.stop()
        b.stop()


def test_retries_with_backoff_then_delivers(make_config: Callable[..., ServerConfig], db_url: str) -> None:
    """A receiver answering 503 twice gets the alert on the third try; two retries are counted."""
    receiver = Receiver(fail_first=2)
    cfg = alerts_config(make_config, db_url, receiver.url)
    sender = WebhookSender(cfg.alerts, backoff_s=0.05)
    retried, sent = value("webhook", "retried"), value("webhook", "sent")
    sender.start()
    try:
        sender.submit(Alert("threshold", "r1", "full", "ok", 0.9, now_ms(), "id-1"))
        wait_for(lambda: receiver.events() == [("r1", "threshold")])
        assert value("webhook", "retried") == retried + 2 and value("webhook", "sent") == sent + 1
    finally:
        sender.stop()
        receiver.close()


def test_a_dead_webhook_never_blocks_and_is_counted(
    make_config: Callable[..., ServerConfig], db_url: str
) -> None:
    """Nothing listens at the URL: submitting 200 alerts takes no time, the queue keeps its bound
    (the rest dropped, counted) and each kept alert fails after max_attempts tries."""
    cfg = alerts_config(
        make_config, db_url, "http://127.0.0.1:9/dead", queue_size=10, max_attempts=2, timeout_s=0.5
    )
    sender = WebhookSender(cfg.alerts, backoff_s=0.01)
    dropped, failed = value("webhook", "dropped"), value("webhook", "failed")
    t0 = time.monotonic()
    kept = sum(
        sender.submit(Alert("overflow", f"d{n}", "overflow", "ok", 1.0, now_ms(), f"x{n}"))
        for n in range(200)
    )
    assert time.monotonic() - t0 < 0.5
    assert kept == 10 and value("webhook", "dropped") == dropped + 190
    sender.start()
    try:
        wait_for(lambda: value("webhook", "failed") == failed + 10, timeout=30)
        assert sender.pending() == 0 and sender.alive
    finally:
        sender.stop()


def test_class_head_alerts_contaminated_and_overflowing_once(
    sessions: sessionmaker[Session], make_config: Callable[..., ServerConfig], db_url: str, receiver: Receiver
) -> None:
    """A bin whose latest usable reading turns ``contaminated`` alerts once (state: the class); back to
    ``clean`` is quiet; ``overflowing`` later alerts again; readings without a class never alert."""
    cfg = alerts_config(make_config, db_url, receiver.url, events=["contaminated", "overflowing"])
    watcher = FleetWatcher(cfg, sessions, None)
    watcher.sender.start()  # type: ignore[union-attr]

    def put(bin_id: str, seq: int, label: str | None) -> None:
        extra = {} if label is None else {"label": label, "label_prob": 0.8}
        with sessions() as s, s.begin():
            msg = reading(bin_id, seq, 0.4, **extra)
            write_batch(s, [item("reading", bin_id, msg)], BinRegistry(), False, now_ms())

    try:
        put("b1", 1, "clean")
        put("b2", 1, None)
        watcher.run_once()
        for seq, label in ((2, "contaminated"), (3, "contaminated"), (4, "clean"), (5, "overflowing")):
            put("b1", seq, label)
            put("b2", seq, None)
            watcher.run_once()
        expected = [("b1", "contaminated"), ("b1", "overflowing")]
        wait_for(lambda: len(receiver.events()) == len(expected))
        time.sleep(0.2)
        assert receiver.events() == expected
        first = receiver.posts[0][0]
        assert (first["state"], first["previous"]) == ("contaminated", "clear")
    finally:
        watcher.stop()
