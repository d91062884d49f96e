"""ServerRuntime: ingest and HTTP in one process; commands reach a device and its answer comes back;
the watchdog stops the process when one of its threads dies and tells systemd (sd_notify)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from mqtt_helpers import command_answer, wait_for
from netutil import free_port
from paho.mqtt.enums import CallbackAPIVersion

from binsight.protocol import Topics
from binsight.server.auth import create_token
from binsight.server.config import ServerConfig
from binsight.server.ingest.messages import parse
from binsight.server.ingest.writer import Queued
from binsight.server.runtime import ServerRuntime


@pytest.mark.broker
def test_runtime_commands_and_last_will(mosquitto: object, make_config: Callable[..., ServerConfig]) -> None:
    """A command posted to the API reaches the device over MQTT, its event marks it done; a dropped
    connection's last will shows the device offline with the reason; /healthz reports MQTT connected."""
    port = mosquitto.port  # type: ignore[attr-defined]
    rt = ServerRuntime(make_config(mqtt={"port": port, "client_id": "srv-rt"}))
    rt.start()
    try:
        with rt.sessions() as s, s.begin():
            token = create_token(s, "operator", "op")
        http = httpx.Client(base_url=rt.http_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        wait_for(lambda: http.get("/healthz").json()["mqtt"] is True, 10, "MQTT connected")

        got: list[dict[str, object]] = []
        dev = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id="dev-1", protocol=mqtt.MQTTv5
        )
        dev.will_set("binsight/dev-1/available", "offline", qos=1, retain=True)
        dev.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
        dev.connect("127.0.0.1", port, keepalive=5)
        dev.subscribe("binsight/dev-1/cmd", qos=1)
        dev.loop_start()
        dev.publish("binsight/dev-1/available", "online", qos=1, retain=True).wait_for_publish(5)
        reading = {
            "bin_id": "dev-1",
            "seq": 0,
            "ts": int(time.time() * 1000),
            "fill": 0.3,
            "quality": "ok",
            "model": "m1",
        }
        dev.publish("binsight/dev-1/reading", json.dumps(reading), qos=1).wait_for_publish(5)
        wait_for(
            lambda: any(d["bin_id"] == "dev-1" and d["online"] for d in http.get("/api/devices").json()),
            10,
            "device online",
        )

        r = http.post("/api/devices/dev-1/commands", json={"action": "set_interval", "interval_s": 60})
        assert r.status_code == 202
        cmd_id = r.json()["id"]
        wait_for(lambda: bool(got), 10, "command at the device")
        assert got[0] == {"id": cmd_id, "action": "set_interval", "interval_s": 60.0, "reason": "command"}
        dev.publish("binsight/dev-1/event", command_answer("dev-1", cmd_id), qos=1).wait_for_publish(5)
        wait_for(
            lambda: any(e["ref"] == cmd_id for e in http.get("/api/devices/dev-1/events").json()), 10, "event"
        )

        # Drop the TCP connection without DISCONNECT: the broker publishes the last will.
        dev.loop_stop()
        dev.socket().close()  # type: ignore[union-attr]
        wait_for(lambda: not http.get("/api/devices").json()[0]["online"], 20, "offline by last will")
        assert "last will" in http.get("/api/devices").json()[0]["reason"]
        assert "binsight_devices_online 0.0\n" in http.get("/metrics").text
    finally:
        rt.stop()


class NotifySocket:
    """The datagram socket systemd listens on (``NOTIFY_SOCKET``), bound in ``tmp_path``."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(20)

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def pending(self) -> list[bytes]:
        """The datagrams already waiting, without blocking."""
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recv(4096))
        except BlockingIOError:
            return got
        finally:
            self.sock.settimeout(20)

    def until(self, last: bytes) -> list[bytes]:
        """Every datagram up to ``last`` (not included)."""
        got = []
        while (m := self.recv()) != last:
            got.append(m)
        return got


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    """systemd's side of sd_notify, with ``WatchdogSec=0.3s``: the runtime pings every 0.1 s."""
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "300000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield sock
    sock.sock.close()


class Serving:
    """``ServerRuntime.serve`` in a thread, as ``binsight server run`` runs it; ``code`` once it returned."""

    def __init__(self, runtime: ServerRuntime) -> None:
        self.runtime = runtime
        self.stop = threading.Event()
        self.codes: list[int] = []
        self.thread = threading.Thread(target=lambda: self.codes.append(runtime.serve(self.stop)))
        self.thread.start()

    def code(self) -> int:
        self.thread.join(30)
        assert self.codes, "serve() did not return"
        return self.codes[0]


@pytest.fixture
def serving(make_config: Callable[..., ServerConfig]) -> Iterator[Callable[[], Serving]]:
    """Start a full runtime (ingest, retention, rollout monitor, HTTP) whose broker is not there:
    paho's network thread keeps trying, so every thread runs."""
    started: list[Serving] = []

    def start() -> Serving:
        cfg = make_config(mqtt={"port": free_port(), "client_id": "srv-watchdog"})
        started.append(Serving(ServerRuntime(cfg)))
        return started[-1]

    yield start
    for s in started:
        s.stop.set()
        s.thread.join(30)


def test_serve_tells_systemd_ready_watchdog_and_stopping(
    notify: NotifySocket, serving: Callable[[], Serving]
) -> None:
    """READY=1 once serving, WATCHDOG=1 pings at a third of WatchdogSec, STOPPING=1 on stop, exit 0."""
    s = serving()
    assert notify.recv().startswith(b"READY=1\nSTATUS=serving on http://127.0.0.1:")
    pings = []
    while len(pings) < 5:
        assert notify.recv() == b"WATCHDOG=1"
        pings.append(time.monotonic())
    assert max(b - a for a, b in itertools.pairwise(pings)) < 0.3
    assert set(s.runtime.threads()) == {
        "ingest writer",
        "MQTT loop",
        "retention",
        "rollout monitor",
        "HTTP server",
    }
    s.stop.set()
    assert set(notify.until(b"STOPPING=1")) <= {b"WATCHDOG=1"}
    assert s.code() == 0


class _Fatal(BaseException):
    """What nothing in the writer catches (it carries on after any Exception): a thread-ending bug."""


def _crash_the_writer(rt: ServerRuntime) -> None:
    """A message whose acknowledgement raises what the writer does not catch: its thread dies of it."""

    def ack() -> None:
        raise _Fatal("ack failed")

    item = parse(Topics(), "binsight/bin-x/reading", b"{broken", int(time.time() * 1000), 1000)
    assert rt.broker is not None
    rt.broker.inbox.put(Queued(item, ack))


def _end_http(rt: ServerRuntime) -> None:
    """uvicorn returns (as after a fatal error in its loop): the HTTP thread ends."""
    assert rt._server is not None
    rt._server.should_exit = True


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize(("name", "kill"), [("ingest writer", _crash_the_writer), ("HTTP server", _end_http)])
def test_a_dead_thread_stops_the_pings_and_exits_non_zero(
    notify: NotifySocket,
    serving: Callable[[], Serving],
    caplog: pytest.LogCaptureFixture,
    name: str,
    kill: Callable[[ServerRuntime], None],
) -> None:
    """When one of the server's threads dies: no more WATCHDOG=1, the log names it, STOPPING=1, exit 1."""
    s = serving()
    assert notify.recv().startswith(b"READY=1")
    assert notify.recv() == b"WATCHDOG=1"
    alive = s.runtime.threads()[name]
    kill(s.runtime)
    wait_for(lambda: not alive(), 10, f"the {name} thread to die")
    # Pings sent while the thread still lived may wait unread (a loaded machine sends several between
    # the kill and the test seeing the thread dead): read those, then at most the ping of a check that
    # ran just before the death may follow, and STOPPING=1 must come.
    if b"STOPPING=1" not in notify.pending():
        assert notify.until(b"STOPPING=1").count(b"WATCHDOG=1") <= 1
    assert s.code() == 1
    assert f"the server's {name} thread died" in caplog.text
