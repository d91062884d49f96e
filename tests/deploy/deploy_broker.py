"""A Mosquitto started with the shipped deploy/mosquitto config, and MQTT clients that log in to it.

(A plain module, not conftest: test modules import from it by its unique name.)

The shipped files are used as they are; rendering only moves the two path prefixes they name
(``/etc/mosquitto/binsight/`` and ``/var/lib/mosquitto/``) into a temp folder and gives the plain
listener a free port (and, for the TLS test, uncomments the shipped TLS example on another port).
Accounts are made with the shipped ``add-device.sh`` / ``add-server.sh``.
"""

from __future__ import annotations

import os
import pwd
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netutil import free_port, wait_port
from paho.mqtt.client import CallbackAPIVersion, Client, MQTTMessage
from paho.mqtt.enums import MQTTProtocolVersion

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "mosquitto"
ETC = "/etc/mosquitto/binsight/"
DATA = "/var/lib/mosquitto/"
CERTS = "/etc/mosquitto/certs/"
TIMEOUT = 5.0


def tls_block(listeners_conf: str) -> list[str]:
    """The commented TLS example of the shipped listeners file, uncommented."""
    lines = listeners_conf.splitlines()
    start = lines.index("#listener 8883")
    block = []
    for line in lines[start:]:
        if not line.startswith("#") or line.startswith("# "):
            break
        block.append(line[1:])
    return block


@dataclass
class DeployBroker:
    """Mosquitto running the shipped config in ``root``; accounts via the shipped scripts."""

    root: Path
    port: int = field(default_factory=free_port)
    cert_dir: Path | None = None
    tls_port: int | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def log(self) -> Path:
        return self.root / "mosquitto.log"

    def render(self) -> None:
        """Write mosquitto.conf, the ACL and the listeners into ``root`` (paths and ports only)."""
        data = self.root / "data"
        (self.etc / "listeners.d").mkdir(parents=True)
        data.mkdir()
        conf = (DEPLOY / "mosquitto.conf").read_text()
        assert ETC in conf and DATA in conf, "shipped mosquitto.conf no longer names the expected paths"
        conf = conf.replace(ETC, f"{self.etc}/").replace(DATA, f"{data}/")
        (self.root / "mosquitto.conf").write_text(conf)
        shutil.copy(DEPLOY / "acl", self.etc / "acl")
        listeners = (DEPLOY / "listeners.d" / "listeners.conf").read_text()
        rendered, n = re.subn(r"(?m)^listener 1883$", f"listener {self.port} 127.0.0.1", listeners)
        assert n == 1, "shipped listeners.conf no longer has one plain `listener 1883`"
        if self.cert_dir is not None:
            self.tls_port = free_port()
            block = "\n".join(tls_block(listeners))
            block = block.replace("listener 8883", f"listener {self.tls_port} 127.0.0.1")
            rendered += "\n" + block.replace(CERTS, f"{self.cert_dir}/") + "\n"
        (self.etc / "listeners.d" / "listeners.conf").write_text(rendered)
        if os.geteuid() == 0:
            # Started as root, Mosquitto drops to the "mosquitto" user before it opens these.
            try:
                uid = pwd.getpwnam("mosquitto").pw_uid
            except KeyError:
                return
            os.chown(data, uid, -1)

    def _script(self, script: str, name: str) -> str:
        out = self.root / "credentials"
        subprocess.run(
            [str(DEPLOY / script), "-p", str(self.etc / "passwd"), "-o", str(out), name],
            env={**os.environ, "BINSIGHT_MQTT_ACL": str(self.etc / "acl")},
            check=True,
            capture_output=True,
        )
        password = (out / name / "mqtt_password").read_text()
        self.passwords[name] = password
        return password

    def add_device(self, bin_id: str) -> str:
        return self._script("add-device.sh", bin_id)

    def add_server(self, name: str = "binsight-server") -> str:
        return self._script("add-server.sh", name)

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.root / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_port(self.port, timeout=5)
            if self.tls_port is not None:
                wait_port(self.tls_port, timeout=5)
        except TimeoutError:
            self.stop()
            raise AssertionError(f"mosquitto did not start:\n{self.log.read_text()}") from None

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads the password file and ACL (what `systemctl reload` does)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Session:
    """One connected paho-mqtt 2.x client whose received messages queue up in ``messages``."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str = "",
        will: tuple[str, str] | None = None,
        ca_file: Path | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        # No automatic reconnect: a test session that lost its connection stays down (two sessions
        # of one account would keep taking the client id from each other).
        self.client = Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, reconnect_on_failure=False
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.messages: queue.Queue[MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.subscribed = threading.Event()
        self.reason: Any = None
        self.granted: list[Any] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.acks: dict[int, Any] = {}
        self.port = port

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.reason = reason
        if reason.is_failure:
            # Refused: stop here rather than let paho retry.
            client.disconnect()
            self.disconnected.set()
            return
        self.connected.set()

    def _on_disconnect(self, client: Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if self.reason is None:
            self.reason = reason
        self.disconnected.set()

    def _on_subscribe(self, client: Client, userdata: Any, mid: int, granted: Any, props: Any) -> None:
        self.granted = list(granted)
        self.subscribed.set()

    def _on_publish(self, client: Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self.acks[mid] = reason

    def connect(self) -> bool:
        """True when the broker accepted the connection, False when it refused or hung up."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.connected.is_set():
                return True
            if self.disconnected.is_set():
                return False
            time.sleep(0.01)
        raise TimeoutError("no CONNACK")

    def subscribe(self, topic: str) -> list[Any]:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(TIMEOUT), f"no SUBACK for {topic}"
        return self.granted

    def publish(self, topic: str, payload: str, retain: bool = False) -> Any:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)
        return self.acks[info.mid]

    def received(self, timeout: float = TIMEOUT) -> MQTTMessage:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
