"""The thread that watches every bin's state for alerts and Home Assistant (``server run``).

Every ``[alerts] check_interval_s`` it reads the devices' newest fill and health from the database
once, then (when enabled) records state changes and sends their alerts (:mod:`binsight.server.alerts`)
and publishes Home Assistant discovery and states (:mod:`binsight.server.homeassistant`). It never
runs on the ingest path; a failing round (database away, broker away) is logged and the next round
tries again, so the thread lives as long as the server.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from binsight.server.alerts import (
    ALERTS,
    DELIVERIES,
    Alert,
    BinState,
    WebhookSender,
    alert_topic,
    detect_changes,
    observe,
)
from binsight.server.broker import BrokerConnection
from binsight.server.config import ServerConfig
from binsight.server.homeassistant import Discovery

__all__ = ["FleetWatcher"]

logger = logging.getLogger(__name__)


class FleetWatcher:
    """Alerts and Home Assistant over one poll of the devices; :attr:`wanted` is False when both are off."""

    def __init__(
        self,
        config: ServerConfig,
        sessions: sessionmaker[Session],
        broker: BrokerConnection | None,
        sender: WebhookSender | None = None,
    ) -> None:
        self.config, self.sessions, self.broker = config, sessions, broker
        alerts = config.alerts
        self.threshold = alerts.threshold if alerts.threshold is not None else config.forecast.threshold
        if alerts.enabled and sender is None and alerts.webhook_url is not None:
            sender = WebhookSender(alerts)
        self.sender = sender
        ha = config.homeassistant
        self.discovery = Discovery(ha, config.mqtt.root) if ha.enabled and broker is not None else None
        if self.discovery is not None and broker is not None:
            broker.set_will(self.discovery.status_topic, b"offline")
        self.wanted = alerts.enabled or self.discovery is not None
        self._announced: set[str] = set()
        self._published: dict[str, bytes] = {}
        self._connects_seen = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.wanted:
            return
        if self.sender is not None:
            self.sender.start()
        self._thread = threading.Thread(target=self._run, name="binsight-fleet-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.sender is not None:
            self.sender.stop()
        if self.discovery is not None and self.broker is not None:
            self.broker.publish_nowait(self.discovery.status_topic, b"offline", retain=True)

    @property
    def alive(self) -> bool:
        threads_ok = self._thread is not None and self._thread.is_alive()
        return threads_ok and (self.sender is None or self.sender.alive)

    def _run(self) -> None:
        interval = self.config.alerts.check_interval_s
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # one bad round (database or broker away) must not end the watching
                logger.exception("fleet watch round failed; next in %.0f s", interval)
            self._stop.wait(interval)

    def run_once(self) -> list[Alert]:
        """One round: observe, alert, publish. Returns the alerts sent (tests call this directly)."""
        states = observe(self.sessions, self.config.health, self.threshold, self.config.alerts.overflow_fill)
        sent: list[Alert] = []
        if self.config.alerts.enabled:
            wanted = set(self.config.alerts.events)
            sent = [a for a in detect_changes(self.sessions, states) if a.event in wanted]
            for alert in sent:
                self._send(alert)
        if self.discovery is not None:
            self._home_assistant(states)
        return sent

    def _send(self, alert: Alert) -> None:
        ALERTS.labels(alert.event).inc()
        logger.info("alert: %s %s (%s -> %s)", alert.bin_id, alert.event, alert.previous, alert.state)
        if self.sender is not None:
            self.sender.submit(alert)
        if self.config.alerts.mqtt and self.broker is not None:
            topic = alert_topic(self.config.mqtt.root, alert.bin_id)
            ok = self.broker.publish_nowait(topic, alert.payload())
            DELIVERIES.labels("mqtt", "sent" if ok else "failed").inc()

    def _home_assistant(self, states: list[BinState]) -> None:
        """Status at each new connection, configs of bins not yet announced, states that changed."""
        assert self.discovery is not None and self.broker is not None
        broker, discovery = self.broker, self.discovery
        if not broker.connected.is_set():
            return
        connects = broker.connects
        if connects != self._connects_seen and broker.publish_nowait(
            discovery.status_topic, b"online", retain=True
        ):
            self._connects_seen = connects
        for st in states:
            if st.bin_id not in self._announced and all(
                broker.publish_nowait(topic, payload, retain=True)
                for topic, payload in discovery.configs(st.bin_id)
            ):
                self._announced.add(st.bin_id)
        for topic, payload in discovery.changed(states, self._published):
            if not broker.publish_nowait(topic, payload, retain=True):
                self._published.clear()  # not sent: publish every state again next round
                return
