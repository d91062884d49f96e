"""The agent's MQTT link: one session at a time, the outbox drained in order, deleted on PUBACK.

Each connection attempt uses a fresh paho client (``CallbackAPIVersion.VERSION2``) with automatic
reconnects off, so that

- the outbox is the only store of unsent messages: paho's in-memory queue never resends a stale
  copy of a reading behind our back, and nothing is handed to paho while disconnected;
- a refused CONNACK ends the attempt as refused (logged with its reason, reported as
  ``last_error``, retried only after the longest backoff), and never counts as connected;
- reconnects use capped exponential backoff with jitter (:class:`~binsight.device.schedule.Backoff`).

After each CONNACK the link publishes ``online`` (retained; the last will says ``offline``),
subscribes to the bin's ``cmd`` and ``model`` topics, and sends every outbox row in id order,
``historical: true`` on readings that were already waiting when the session began
(:class:`~binsight.device.drain.OutboxDrain`). A row leaves the outbox only on a PUBACK that says
a subscriber gets it: "No matching subscribers" (MQTT 5 reason 0x10, no server subscribed, e.g.
after a broker restart while the server was away) keeps it, and the drain tries again after the
same capped back-off as reconnects (``mqtt.backoff_min_s`` .. ``mqtt.backoff_max_s``).

The session is persistent (MQTT 5 ``clean_start`` false with ``mqtt.session_expiry_s``; MQTT 3.1.1
``clean_session`` false): the broker queues commands (QoS 1) while the device is offline and
delivers them on its return. Incoming messages are acknowledged by hand: a command's PUBACK goes
out only once the agent has run it (``ack`` passed to ``on_command``), so a command the agent
received but did not run before it died is delivered again; the agent drops repeats by command id.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from binsight.device.config import MqttConfig
from binsight.device.drain import LinkCounters, OutboxDrain
from binsight.device.outbox import Outbox
from binsight.device.schedule import Backoff
from binsight.errors import ConfigError
from binsight.protocol import Topics
from binsight.secrets import read_secret

__all__ = ["Link", "LinkCounters"]

logger = logging.getLogger(__name__)

_CONNACK_TIMEOUT_S = 15.0
#: A session that lasted this long resets the reconnect backoff.
_STABLE_S = 30.0


@dataclass
class _Session:
    client: mqtt.Client
    connack: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    refused: str | None = None
    closed: threading.Event = field(default_factory=threading.Event)
    close_reason: str = ""


class Link:
    """Keeps one bin's MQTT session up and drains its outbox.

    Parameters
    ----------
    on_command
        Called from paho's thread with the raw payload of a message on ``cmd`` and a function to
        call once the command has been run (sends the PUBACK; safe from any thread, a no-op when
        that session is gone: the broker then delivers the command again). Must only queue work.
    on_release
        Called from paho's thread with the raw payload of a message on ``model``; must only queue
        work. Acknowledged when it returns.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        bin_id: str,
        outbox: Outbox,
        *,
        on_command: Callable[[bytes, Callable[[], None]], None] | None = None,
        on_release: Callable[[bytes], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.bin_id = bin_id
        self.outbox = outbox
        self.topics = Topics(cfg.root)
        self.on_command = on_command
        self.on_release = on_release
        self.client_id = cfg.client_id or bin_id
        self.counters = LinkCounters()
        self.last_error: str | None = None
        self.backoff = Backoff(cfg.backoff_min_s, cfg.backoff_max_s)
        # Secrets are read once, at start, so a missing file is an error now and not at 3 a.m.
        self._password = read_secret("mqtt_password", cfg.password_file)
        self._tls_key = read_secret("mqtt_tls_key", cfg.key_file) if cfg.tls else None
        if self._password is not None and cfg.username is None:
            raise ConfigError("mqtt: a password is configured but mqtt.username is not")
        self._ssl: ssl.SSLContext | None = None
        if cfg.tls:
            try:
                self._ssl = self._tls_context()
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(f"mqtt: TLS files unusable (ca_file, cert_file, key): {exc}") from exc
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._drain = OutboxDrain(
            self.outbox,
            self.topics,
            bin_id,
            window=cfg.inflight,
            counters=self.counters,
            problem=self._problem,
            retry=Backoff(cfg.backoff_min_s, cfg.backoff_max_s),
        )
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._connected = threading.Event()

    # ----------------------------------------------------------------- public API
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"link-{self.bin_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (a clean disconnect suppresses the will), disconnect, join the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 5.0)

    def wake(self) -> None:
        """New rows are in the outbox."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def publish_now(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        """Publish outside the outbox (stats); False when not connected."""
        session = self._session
        if session is None or not self._connected.is_set():
            return False
        info = session.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    # ----------------------------------------------------------------- session handling
    def _new_client(self) -> mqtt.Client:
        v5 = self.cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else not self.persistent,
            reconnect_on_failure=False,
        )
        client.manual_ack_set(True)  # a command is acknowledged once it has run (see _on_message)
        client.max_inflight_messages_set(self.cfg.inflight)
        client.max_queued_messages_set(0)
        client.will_set(self.topics.available(self.bin_id), "offline", qos=1, retain=True)
        if self.cfg.username is not None:
            client.username_pw_set(self.cfg.username, self._password)
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None)
        if self.cfg.cert_file is not None:
            if self._tls_key is None:
                ctx.load_cert_chain(str(self.cfg.cert_file))
            else:
                # ssl reads keys from files only: hand it a private temporary copy, removed at once.
                fd, tmp = tempfile.mkstemp(prefix="binsight-key-")
                try:
                    with os.fdopen(fd, "w") as fh:
                        fh.write(self._tls_key)
                    ctx.load_cert_chain(str(self.cfg.cert_file), tmp)
                finally:
                    os.unlink(tmp)
        return ctx

    def _on_connect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode, _props: Any) -> None:
        session = self._session
        if session is None or session.client is not client:
            return
        if rc.is_failure:
            session.refused = str(rc)
            session.connack.set()
            return  # refused is refused: not connected, nothing subscribed or published
        client.publish(self.topics.available(self.bin_id), "online", qos=1, retain=True)
        client.subscribe([(self.topics.cmd(self.bin_id), 1), (self.topics.model(self.bin_id), 1)])
        session.ok = True
        session.connack.set()

    def _on_disconnect(self, client: mqtt.Client, _ud: Any, _flags: Any, rc: ReasonCode, _props: Any) -> None:
        session = self._session
        if session is None or session.client is not client:
            return
        session.close_reason = str(rc)
        session.closed.set()
        session.connack.set()
        self._connected.clear()
        self._wake.set()

    def _on_publish(self, client: mqtt.Client, _ud: Any, mid: int, rc: ReasonCode, _props: Any) -> None:
        session = self._session
        if session is None or session.client is not client:
            return  # a late ack from an old client: its mids mean nothing to this session
        self._drain.acked(mid, rc)
        self._wake.set()

    @property
    def persistent(self) -> bool:
        return self.cfg.session_expiry_s > 0

    def _acker(self, client: mqtt.Client, mid: int, qos: int) -> Callable[[], None]:
        """PUBACK for one received message, if its session is still the current one."""

        def ack() -> None:
            session = self._session
            if qos == 0 or session is None or session.client is not client or session.closed.is_set():
                return  # that session is gone: the broker delivers the message again on the next one
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                client.ack(mid, qos)

        return ack

    def _on_message(self, client: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        ack = self._acker(client, msg.mid, msg.qos)
        parsed = self.topics.parse(msg.topic)
        if parsed is None or parsed[0] != self.bin_id or parsed[1] not in ("cmd", "model"):
            ack()
            return
        try:
            if parsed[1] == "cmd" and self.on_command is not None:
                self.on_command(bytes(msg.payload), ack)
                return  # acknowledged by the agent once the command has run
            if parsed[1] == "model" and self.on_release is not None:
                self.on_release(bytes(msg.payload))
        except Exception:
            logger.exception("%s: handler for %s failed", self.bin_id, msg.topic)
        ack()

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._one_session()
            except Exception as exc:  # the link must outlive any one bad session
                self.last_error = f"MQTT session failed: {type(exc).__name__}: {exc}"
                logger.exception("%s: MQTT session failed", self.bin_id)
                delay = self.backoff.next()
            if delay and not self._stop.is_set():
                logger.info("%s: reconnecting in %.1f s", self.bin_id, delay)
                self._sleep(delay)

    def _one_session(self) -> float:
        """Connect, drain until the session ends; returns the delay before the next attempt."""
        cfg = self.cfg
        client = self._new_client()
        session = _Session(client)
        self._session = session
        try:
            if cfg.protocol == "5":
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                if self.persistent:
                    props.SessionExpiryInterval = cfg.session_expiry_s
                client.connect(cfg.host, cfg.port, cfg.keepalive_s, clean_start=not self.persistent,
                               properties=props)  # fmt: skip
            else:
                client.connect(cfg.host, cfg.port, cfg.keepalive_s)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self.last_error = f"cannot connect to {cfg.host}:{cfg.port}: {exc}"
            logger.warning("%s: %s", self.bin_id, self.last_error)
            return self.backoff.next()
        client.loop_start()
        try:
            session.connack.wait(_CONNACK_TIMEOUT_S)
            if not session.ok and self._stop.is_set():
                return 0.0
            if not session.ok:
                if session.refused is not None:
                    self.counters.refused += 1
                    self.last_error = f"connection refused by {cfg.host}:{cfg.port}: {session.refused}"
                    self.backoff.give_up_fast()
                else:
                    self.last_error = (
                        f"no CONNACK from {cfg.host}:{cfg.port}: {session.close_reason or 'timeout'}"
                    )
                logger.warning("%s: %s", self.bin_id, self.last_error)
                client.disconnect()
                return self.backoff.next()
            connected_at = time.monotonic()
            self.counters.sessions += 1
            self._connected.set()
            logger.info("%s: connected to %s:%s (MQTT %s)", self.bin_id, cfg.host, cfg.port, cfg.protocol)
            self._drain.run(
                client, done=lambda: self._stop.is_set() or session.closed.is_set(), wake=self._wake
            )
        finally:
            self._connected.clear()
            if self._stop.is_set() and not session.closed.is_set():
                self._say_offline(client)
            else:
                client.disconnect()
            client.loop_stop()
        if self._stop.is_set():
            return 0.0
        if time.monotonic() - connected_at >= _STABLE_S:
            self.backoff.reset()  # a flapping broker keeps the delays growing; a stable one resets them
        self.last_error = f"connection to {cfg.host}:{cfg.port} lost: {session.close_reason}"
        logger.warning("%s: %s", self.bin_id, self.last_error)
        return self.backoff.next()

    def _problem(self, message: str) -> None:
        self.last_error = message

    def _say_offline(self, client: mqtt.Client) -> None:
        info = client.publish(self.topics.available(self.bin_id), "offline", qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(2.0)
        client.disconnect()
