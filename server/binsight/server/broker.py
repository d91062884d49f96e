"""The server's one connection to the MQTT broker: ingest's subscriptions, and every publish.

Readings, stats, events and images come in on it (queued in :attr:`BrokerConnection.inbox` for the
ingest writer, which acknowledges them after they are committed); device commands
(:meth:`~BrokerConnection.publish_command`, called only by
:func:`binsight.server.device_commands.send_device_command`) and retained model announcements
(:meth:`~BrokerConnection.publish_retained`) go out on it. One client id, one broker account.

* ``clean_start=False`` and a session expiry interval: the broker queues our messages while the
  server is down or restarting, and redelivers what we had not acknowledged.
* ``manual_ack``: a message is acknowledged by the :class:`BatchWriter` after its batch committed.
* ``$share/<group>/...``: several servers in one group split readings, stats, events and images.
  Availability is retained, and brokers do not send retained messages on shared subscriptions,
  so every server subscribes to it directly (updating availability twice is harmless).
* Every CONNACK, session present or not, is followed by a SUBSCRIBE to all of them: Mosquitto
  restores a persistent session from its database after a restart but not the session's shared
  subscriptions, so a resumed session may have none. Until it subscribes, agents get PUBACK
  "No matching subscribers" and keep their readings (docs/device.md, "Store and forward").
  :attr:`~BrokerConnection.connects` and :attr:`~BrokerConnection.subscribes` count both, and a
  topic the broker refuses (SUBACK failure) is logged as an error naming it.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from binsight.protocol import Command, Topics
from binsight.secrets import read_secret
from binsight.server.config import IngestConfig, MqttConfig
from binsight.server.db.engine import now_ms
from binsight.server.ingest.fastclient import BufferedClient
from binsight.server.ingest.messages import parse
from binsight.server.ingest.writer import Queued
from binsight.server.rollout.errors import RolloutError

__all__ = ["BrokerConnection"]

logger = logging.getLogger(__name__)


class BrokerConnection:
    """Subscribes, validates each message and queues it for the writer; publishes commands and releases.

    Parameters
    ----------
    mqtt_cfg
        The ``[mqtt]`` section: broker, account, protocol, session expiry.
    ingest_cfg
        The ``[ingest]`` section: shared-subscription group, inbox size, clock tolerance.
    """

    def __init__(self, mqtt_cfg: MqttConfig, ingest_cfg: IngestConfig) -> None:
        self.cfg = mqtt_cfg
        self.ingest_cfg = ingest_cfg
        #: Parsed messages waiting for the ingest writer; full means the broker holds the rest.
        self.inbox: queue.Queue[Queued] = queue.Queue(maxsize=ingest_cfg.queue_size)
        self.topics = Topics(mqtt_cfg.root)
        self.connected = threading.Event()
        self.paused = threading.Event()
        #: CONNACKs accepted, and SUBSCRIBEs granted in full (one per CONNACK when all is well).
        self.connects = 0
        self.subscribes = 0
        self._subscribing: dict[int, list[str]] = {}  # SUBSCRIBE mid -> its topics, until the SUBACK
        self._generation = 0
        self._gen_lock = threading.Lock()
        self.v5 = mqtt_cfg.protocol == "5"
        if self.v5:
            self.client = BufferedClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=mqtt_cfg.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            self.client = BufferedClient(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=mqtt_cfg.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,  # the 3.1.1 persistent session
                manual_ack=True,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Outgoing (commands) in flight at once; incoming is bounded by the broker's limit.
        self.client.max_inflight_messages_set(100)
        password = read_secret("mqtt_password", mqtt_cfg.password_file)
        if mqtt_cfg.username is not None:
            self.client.username_pw_set(mqtt_cfg.username, password)
        if mqtt_cfg.tls:
            self.client.tls_set(
                ca_certs=str(mqtt_cfg.ca_file) if mqtt_cfg.ca_file else None, cert_reqs=ssl.CERT_REQUIRED
            )

    def subscriptions(self) -> list[str]:
        group = self.ingest_cfg.shared_group
        shared = [self.topics.wildcard(k) for k in ("reading", "stats", "event", "image")]
        if group and self.v5:
            shared = [f"$share/{group}/{t}" for t in shared]
        return [*shared, self.topics.wildcard("available")]

    def start(self) -> None:
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.cfg.session_expiry_s
            self.client.connect_async(
                self.cfg.host,
                self.cfg.port,
                keepalive=self.cfg.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            if self.ingest_cfg.shared_group:
                logger.info("MQTT 3.1.1: no shared subscription; run one server per broker")
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def pause(self) -> None:
        """Take no more messages (left unacknowledged, the broker redelivers them after a restart)."""
        self.paused.set()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    @property
    def loop_alive(self) -> bool:
        """Whether paho's network thread runs (it reconnects by itself; dead, nothing comes or goes)."""
        thread = self.client._thread
        return thread is not None and thread.is_alive()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            logger.error("MQTT broker %s:%s refused the connection: %s", self.cfg.host, self.cfg.port, reason)
            return
        with self._gen_lock:
            self._generation += 1
        self.connects += 1
        # Also when the session is present: the broker may have restored it without its subscriptions.
        topics = self.subscriptions()
        self._subscribing.clear()  # a SUBSCRIBE of a lost connection gets no SUBACK
        _rc, mid = client.subscribe([(t, 1) for t in topics])
        if mid is not None:
            self._subscribing[mid] = topics
        self.connected.set()
        logger.info(
            "connected to MQTT %s:%s as %s (session present: %s); subscribing to %d topics",
            self.cfg.host,
            self.cfg.port,
            self.cfg.client_id,
            flags.session_present,
            len(topics),
        )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, granted: list[ReasonCode], _props: Any
    ) -> None:
        topics = self._subscribing.pop(mid, [])
        refused = [f"{t} ({rc})" for t, rc in zip(topics, granted, strict=False) if rc.is_failure]
        if refused:
            logger.error("MQTT broker refused the subscriptions %s: nothing arrives on them", refused)
            return
        self.subscribes += 1
        logger.info("subscribed to %s (SUBSCRIBE number %d)", ", ".join(topics), self.subscribes)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        self.connected.clear()
        if reason.value != 0:
            logger.warning("MQTT connection lost (%s); reconnecting", reason)

    def _ack_for(self, msg: mqtt.MQTTMessage) -> Any:
        if msg.qos == 0:
            return None
        generation, mid, qos = self._generation, msg.mid, msg.qos
        client = self.client

        def ack() -> None:
            # An ack belongs to the connection that delivered the message; after a reconnect the
            # broker redelivers it (with the same packet id) and that copy gets its own ack.
            if generation == self._generation:
                client.ack(mid, qos)

        return ack

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.paused.is_set():
            return  # shutting down: left unacknowledged, the broker redelivers it after the restart
        now = now_ms()
        item = parse(
            self.topics,
            msg.topic,
            bytes(msg.payload),
            now,
            int(self.ingest_cfg.max_future_s * 1000),
            retained=msg.retain,
        )
        # Blocking here (queue full) is the backpressure: the broker holds the rest for us.
        self.inbox.put(Queued(item, self._ack_for(msg)))

    #: MQTT 5 message expiry per command action, in seconds (None: none; the device's session
    #: expiry, 7 days by default, still bounds it). A device that is offline gets its commands from
    #: the broker when it comes back (persistent session), unless they expired: "capture now" or
    #: "send stats" hours later is not what was asked; a labelling image request (coverage) is
    #: still useful within the hour; an interval change applies whenever the device returns.
    COMMAND_EXPIRY_S: ClassVar[dict[str, int | None]] = {
        "capture": 15 * 60,
        "send_stats": 5 * 60,
        "send_image": 60 * 60,
        "set_interval": None,
    }

    def publish_command(self, bin_id: str, command: Command) -> None:
        """Publish ``command`` to the device's ``cmd`` topic (QoS 1); ConnectionError if not connected.

        Call :func:`binsight.server.device_commands.send_device_command`, which records the command
        first, so the device's answer always finds its row. The broker keeps it for an offline
        device (persistent session) until it expires after ``COMMAND_EXPIRY_S[command.action]``.
        Expiry needs MQTT 5 on this connection (with 3.1.1 a command waits as long as the device's
        session).
        """
        if not self.connected.is_set():
            raise ConnectionError("not connected to the MQTT broker")
        expiry_s = self.COMMAND_EXPIRY_S.get(command.action)
        props = None
        if self.v5 and expiry_s is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = max(1, int(expiry_s))
        info = self.client.publish(
            self.topics.cmd(bin_id), command.model_dump_json(exclude_none=True), qos=1, properties=props
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")

    def set_will(self, topic: str, payload: bytes) -> None:
        """The broker retains ``payload`` on ``topic`` if this connection drops (call before start)."""
        self.client.will_set(topic, payload, qos=1, retain=True)

    def publish_nowait(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Queue ``payload`` on ``topic`` (QoS 1) and return at once; False when not connected or refused.

        For alerts and Home Assistant states: the caller counts a False, it never waits on the broker.
        """
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=1, retain=retain).rc == mqtt.MQTT_ERR_SUCCESS

    def publish_retained(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
        """Retain ``payload`` on ``topic`` (QoS 1) and wait for the broker's ack.

        Raises
        ------
        RolloutError
            (503) not connected, the publish failed, or no ack within ``timeout_s``.
        """
        if not self.connected.is_set():
            raise RolloutError("not connected to the MQTT broker: nothing announced", 503)
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RolloutError(f"announcement on {topic} failed: {mqtt.error_string(info.rc)}", 503)
        info.wait_for_publish(timeout_s)
        if not info.is_published():
            raise RolloutError(f"the broker did not acknowledge the announcement on {topic}", 503)
