"""Alerts: a webhook POST and an MQTT message when a bin fills, overflows, empties or its camera drops.

The :class:`FleetWatcher` thread reads every device's newest fill and health from the database
every ``[alerts] check_interval_s`` and compares them with ``alert_states``, the last alerted state
of each bin. Nothing here runs on the ingest path, so a slow or dead webhook can never hold up a
reading: delivery goes through :class:`WebhookSender`, a bounded queue with retries and exponential
backoff in its own thread, every outcome counted on ``/metrics``.

One alert per state change, not per reading: a change is alerted by the process whose conditional
``UPDATE alert_states ... WHERE state = <old>`` (or first ``INSERT``) wins, so several server
processes and restarts never repeat one. Events:

- ``threshold``: fill rose to the ``full`` threshold (``[alerts] threshold``, default ``[forecast]``),
- ``overflow``: fill reached ``overflow_fill``,
- ``emptied``: a full or overflowing bin is below the threshold again (a collection),
- ``offline`` / ``online``: the camera's health changed (last will, shutdown or silence),
- ``overflowing`` / ``contaminated``: the class of the bin's latest usable reading (a model with a class
  head, :mod:`binsight.server.classes`) became one that flags the bin; back to another class is quiet.

Only the events named in ``[alerts] events`` are sent; every change still moves its row.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from prometheus_client import Counter, Gauge
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from binsight.secrets import read_secret
from binsight.server.classes import FLAGGED, latest_classes
from binsight.server.config import AlertsConfig, HealthConfig
from binsight.server.db.dialect import is_postgresql
from binsight.server.db.engine import now_ms
from binsight.server.db.models import AlertState, Device
from binsight.server.health import device_health
from binsight.server.latency import REGISTRY

__all__ = [
    "ALERT_EVENTS",
    "Alert",
    "BinState",
    "WebhookSender",
    "alert_topic",
    "detect_changes",
    "observe",
    "sign",
]

logger = logging.getLogger(__name__)

ALERT_EVENTS = ("threshold", "overflow", "emptied", "offline", "online", "overflowing", "contaminated")
CHANNELS = ("webhook", "mqtt")
OUTCOMES = ("sent", "retried", "failed", "dropped")

ALERTS = Counter(
    "binsight_alerts", "Bin state changes alerted by this process, by event.", ["event"], registry=REGISTRY
)
DELIVERIES = Counter(
    "binsight_alert_deliveries",
    "Alert deliveries by channel and outcome (retried: one failed try, tried again later; failed: "
    "gave up after the last try; dropped: the queue was full).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "binsight_alert_queue_depth", "Webhook deliveries waiting (first tries and retries).", registry=REGISTRY
)
for _name in ALERT_EVENTS:
    ALERTS.labels(_name)
for _channel, _outcome in itertools.product(CHANNELS, OUTCOMES):
    DELIVERIES.labels(_channel, _outcome)


@dataclass(frozen=True)
class BinState:
    """What the watcher sees of one bin: its fill level class, its camera, and the fill itself."""

    bin_id: str
    level: str | None  # ok / full / overflow; None: no usable fill yet
    camera: str  # online / offline
    fill: float | None
    cls: str | None = None  # overflowing / contaminated / clear (another class); None: no class reading


@dataclass(frozen=True)
class Alert:
    """One state change. ``id`` is unique, so a receiver can drop a retried delivery it already has."""

    event: str
    bin_id: str
    state: str
    previous: str | None
    fill: float | None
    ts: int
    id: str

    def payload(self) -> bytes:
        return json.dumps(self.__dict__, separators=(",", ":")).encode()


def level_of(fill: float | None, threshold: float, overflow_fill: float) -> str | None:
    if fill is None:
        return None
    return "overflow" if fill >= overflow_fill else "full" if fill >= threshold else "ok"


def observe(
    sessions: sessionmaker[Session], health: HealthConfig, threshold: float, overflow_fill: float
) -> list[BinState]:
    """Every device's state now, from the ``devices`` table (smoothed fill, health).

    The smoothed fill (:attr:`Device.shown_fill`), not the newest raw reading: one wild frame must not
    alert an overflow (bench/server_fill_smoothing.py counts how often raw readings would).
    """
    now = now_ms()
    with sessions() as s:
        devices = list(s.execute(select(Device)).scalars())
        classes = latest_classes(s)
    return [
        BinState(
            d.bin_id,
            level_of(d.shown_fill, threshold, overflow_fill),
            "online" if device_health(d, now, health).online else "offline",
            d.shown_fill,
            None if (c := classes.get(d.bin_id)) is None else (c.flag or "clear"),
        )
        for d in devices
    ]


def event_of(kind: str, previous: str | None, new: str) -> str | None:
    """The event a change of ``kind`` from ``previous`` to ``new`` is; None for a quiet change."""
    if kind == "camera":
        if previous is None:
            return "offline" if new == "offline" else None  # a new camera that works is no news
        return new  # "offline" or "online"
    if kind == "class":
        return new if new in FLAGGED else None  # "overflowing" or "contaminated"; clearing is quiet
    if new == "overflow":
        return "overflow"
    if new == "full":
        return "threshold" if previous in (None, "ok") else None  # overflow -> full: settling, quiet
    return "emptied" if previous in ("full", "overflow") else None


Change = tuple[BinState, str, str | None, str]  # the bin, kind, previous state (None: first seen), new


def _claim_first_seen(s: Session, changes: Sequence[Change], now: int) -> set[tuple[str, str]]:
    """Insert the rows of bins seen for the first time; the (bin_id, kind) this process inserted.

    One executemany (SQLAlchemy batches it into multi-row INSERTs); a statement per row took 40 s
    for 10,000 new bins on the loaded development machine. RETURNING, not rowcount: psycopg reports
    a row for an INSERT that did nothing on conflict.
    """
    if not changes:
        return set()
    insert = pg_insert if is_postgresql(s.connection()) else sqlite_insert
    table = cast(Table, AlertState.__table__)
    stmt = insert(table).on_conflict_do_nothing(index_elements=["bin_id", "kind"])
    rows = [
        {"bin_id": st.bin_id, "kind": kind, "state": new, "changed_at": now} for st, kind, _p, new in changes
    ]
    result = s.connection().execute(stmt.returning(table.c.bin_id, table.c.kind), rows)
    return {(b, k) for b, k in result}


def _claim_move(s: Session, change: Change, now: int) -> bool:
    """Move the bin's row from its previous state to the new one; True when this process moved it."""
    st, kind, previous, new = change
    result = s.execute(
        update(AlertState)
        .where(AlertState.bin_id == st.bin_id, AlertState.kind == kind, AlertState.state == previous)
        .values(state=new, changed_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def detect_changes(sessions: sessionmaker[Session], states: Sequence[BinState]) -> list[Alert]:
    """Record every state change in ``alert_states`` and return the alerts this process won."""
    now = now_ms()
    with sessions() as s, s.begin():
        known = {(a.bin_id, a.kind): a.state for a in s.execute(select(AlertState)).scalars()}
        first_seen: list[Change] = []
        moved: list[Change] = []
        for st in states:
            for kind, new in (("level", st.level), ("camera", st.camera), ("class", st.cls)):
                previous = known.get((st.bin_id, kind))
                if new is not None and new != previous:
                    (first_seen if previous is None else moved).append((st, kind, previous, new))
        inserted = _claim_first_seen(s, first_seen, now)
        won = [c for c in first_seen if (c[0].bin_id, c[1]) in inserted]
        won += [c for c in moved if _claim_move(s, c, now)]
    alerts = []
    for st, kind, previous, new in won:
        if (event := event_of(kind, previous, new)) is not None:
            alerts.append(Alert(event, st.bin_id, new, previous, st.fill, now, uuid.uuid4().hex))
    return alerts


def sign(secret: str, body: bytes) -> str:
    """``X-Binsight-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


Post = Callable[[bytes, dict[str, str]], None]


class WebhookSender:
    """POSTs alerts to ``[alerts] webhook_url`` from its own thread: bounded, retried, counted.

    :meth:`submit` never blocks: a full queue drops the alert (``outcome="dropped"``). A failed try
    (network error, timeout, any non-2xx answer) is tried again after ``backoff_s`` x 2^(tries-1),
    at most ``max_backoff_s``, up to ``max_attempts`` tries (then ``failed``). Retries wait in a
    heap by due time, so one alert backing off never holds up the next.
    """

    def __init__(
        self,
        cfg: AlertsConfig,
        *,
        post: Post | None = None,
        backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        if cfg.webhook_url is None:
            raise ValueError("WebhookSender needs [alerts] webhook_url")
        self.url = cfg.webhook_url
        self.cfg = cfg
        self.secret = read_secret("alert_secret", cfg.secret_file)
        self.post = post or self._post
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._heap: list[tuple[float, int, int, Alert]] = []  # due, order, tries so far, alert
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        QUEUE_DEPTH.set_function(lambda: len(self._heap))

    def submit(self, alert: Alert) -> bool:
        with self._cond:
            if len(self._heap) >= self.cfg.queue_size:
                DELIVERIES.labels("webhook", "dropped").inc()
                logger.warning(
                    "alert queue full (%d): dropped %s of %s", len(self._heap), alert.event, alert.bin_id
                )
                return False
            heapq.heappush(self._heap, (time.monotonic(), next(self._order), 0, alert))
            self._cond.notify()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="binsight-alert-webhook", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop delivering; alerts still waiting are not sent (held in memory only), and say so."""
        with self._cond:
            self._stop = True
            if self._heap:
                logger.warning("stopping with %d alert(s) not delivered to the webhook", len(self._heap))
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def _next(self) -> tuple[int, Alert] | None:
        """Wait for the next due delivery; None when stopping."""
        with self._cond:
            while not self._stop:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    _due, _order, tries, alert = heapq.heappop(self._heap)
                    return tries, alert
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                self._cond.wait(wait)
        return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            tries, alert = item
            self._deliver(tries + 1, alert)

    def _deliver(self, tries: int, alert: Alert) -> None:
        body = alert.payload()
        headers = {"Content-Type": "application/json", "User-Agent": "binsight-alerts"}
        if self.secret:
            headers["X-Binsight-Signature"] = sign(self.secret, body)
        try:
            self.post(body, headers)
        except Exception as exc:  # any failure of one try is retried; the thread must survive it
            if tries >= self.cfg.max_attempts:
                DELIVERIES.labels("webhook", "failed").inc()
                logger.warning(
                    "alert %s of %s not delivered after %d tries: %s", alert.event, alert.bin_id, tries, exc
                )
                return
            DELIVERIES.labels("webhook", "retried").inc()
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (tries - 1))
            with self._cond:
                heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), tries, alert))
            return
        DELIVERIES.labels("webhook", "sent").inc()

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(self.url, response.status, "not 2xx", response.headers, None)


def alert_topic(root: str, bin_id: str) -> str:
    """Where an alert is published on MQTT: next to the bin's other topics."""
    return f"{root}/{bin_id}/alert"
