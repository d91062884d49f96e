"""``binsight demo``: the whole system on embedded defaults, in one process.

What runs, in order (each step prints a line so a newcomer sees progress):

1. an MQTT broker: the one at 127.0.0.1:1883 if something listens there, else amqtt in-process;
2. a fill model trained on a synthetic lid-camera set (cached in the data folder after the first run);
3. a synthetic city (bins, depot, disposal site, trucks) and each bin's camera frames, rendered once;
4. the server (SQLite in the data folder, ingest, forecasts, API, web page), with the bins imported and
   an admin token created;
5. one real camera agent per bin (``SimulatedFleet``) replaying its frames, with collections emptying
   bins: first the last ``--history-h`` hours are *backfilled* on an accelerated clock (one frame, 20
   minutes of filling, every half second) up to the present, then the cameras run in real time: they
   read every ``--capture-every`` seconds (30) and each capture shows the frame of the present (a new
   frame every 20 minutes, :mod:`binsight.demo.camera`), so no reading is ever in the server's future,
   every forecast, plan and "full in ..." is about the real clock, and a canary is judged in minutes;
6. a route plan requested through the HTTP API every ``--plan-every`` seconds, once the backfill is done;
   the first finished plan of each service day is *published* (locked for the drivers, as a dispatcher
   would before the shift), and each truck's driver has a sign-in link that opens its manifest. Later
   plans of that day are only proposals: the dispatcher publishes one on the Route plan page.

``--duration S`` runs headless for S seconds and exits 1 if no plan was made (CI runs that); without it the
demo runs until Ctrl-C, then stops every part cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from binsight.demo.assets import ensure_frames, ensure_model
from binsight.demo.broker import EmbeddedBroker, broker_reachable
from binsight.demo.world import DemoCity, make_city
from binsight.errors import BinsightError

if TYPE_CHECKING:
    from binsight.device.config import DeviceConfig
    from binsight.device.simulate import SimulatedFleet
    from binsight.server.runtime import ServerRuntime

__all__ = ["run_demo"]

logger = logging.getLogger(__name__)

#: Filling time between two rendered frames (``make_city``'s step): a live camera sees a new frame this often.
FRAME_STEP_S = 20 * 60.0
#: How often a live camera captures and reads (real seconds) by default: the same frame until the next.
CAPTURE_EVERY_S = 30.0
#: The backfill sends every this many captures (one frame each) to the labelling queue: one image per 4 h.
BACKFILL_LABEL_EVERY = 12
#: Backfill: wall seconds between captures while the history is replayed, and the clock's speed-up.
BACKFILL_INTERVAL_S = 0.5
BACKFILL_SCALE = FRAME_STEP_S / BACKFILL_INTERVAL_S


class _Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.step = 0
        self.t0 = time.monotonic()

    def __call__(self, what: str) -> None:
        self.step += 1
        print(f"[{self.step}/{self.total}] {what} (t+{time.monotonic() - self.t0:.0f}s)", flush=True)


def _server_toml(
    data: Path, city: DemoCity, http_port: int, mqtt_port: int, *, protocol: str, capture_every_s: float
) -> str:
    trucks = "\n".join(
        f'[[fleet.trucks]]\nid = "{truck}"\ndepot = "depot"\ncapacity_l = {city.truck_capacity_l}\n'
        f'shift = ["06:00", "14:00"]\nbreak = {{ after_min = 240, duration_min = 30 }}\n'
        for truck in city.truck_ids
    )
    return f"""# Written by `binsight demo`: the server config of the demo (synthetic city).
database = "sqlite:///{data / "binsight.db"}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
root = "binsight-demo"
protocol = "{protocol}"

[http]
host = "127.0.0.1"
port = {http_port}

[health]
# After the backfill, each camera sends one reading every {capture_every_s:g} s (real time).
default_interval_s = {capture_every_s:g}

[models]
dir = "{data / "models"}"

[[fleet.depots]]
id = "depot"
lat = {city.depot[0]:.6f}
lon = {city.depot[1]:.6f}

[[fleet.disposal_sites]]
id = "transfer-station"
lat = {city.disposal[0]:.6f}
lon = {city.disposal[1]:.6f}
service_min = 20

{trucks}
[fleet]
plan_time_limit_s = 5
service_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
"""


def _register_model(server: ServerRuntime, model: Path) -> None:
    """List the demo's model on the Models page as the active one (the cameras start on it)."""
    from binsight.modelfile import read_model_info
    from binsight.server.db.models import ModelRecord
    from binsight.server.rollout.errors import RolloutError
    from binsight.server.rollout.registry import register_model

    version = read_model_info(model).model_version
    report_file = model.parent / "report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    try:
        register_model(server.sessions, server.config.models.dir, model, report)
    except RolloutError as exc:
        if exc.status != 409:  # 409: registered by an earlier run of the demo on this data folder
            raise
    with server.sessions.begin() as session:
        record = session.get(ModelRecord, version)
        if record is not None and not record.active:
            record.active = True
            record.activated_at = int(time.time() * 1000)
    from binsight.demo.trust import mark_initial_model_healthy

    mark_initial_model_healthy(server.sessions, version)


def _post_json(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def _plan(base: str, token: str, stop: threading.Event, time_limit_s: float) -> dict[str, Any] | None:
    """Ask the server for a plan and wait for it; None when it failed or the demo is stopping."""
    started = _post_json(f"{base}/api/plans", token, {"time_limit_s": time_limit_s})
    while not stop.wait(0.5):
        plan = _post_json(f"{base}/api/plans/{started['id']}", token)
        if plan["status"] == "done":
            return plan
        if plan["status"] == "failed":
            logger.warning("plan %s failed: %s", plan["id"], plan.get("error"))
            return None
    return None


def _quiet_libraries(verbose: bool) -> None:
    """The demo prints its own progress; per-connection and per-migration INFO lines would bury it."""
    if verbose:
        return
    for name in (
        "alembic",
        "binsight.device",
        "binsight.training",
        "binsight.server.ingest",
        "amqtt",
        "transitions",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_demo(args: argparse.Namespace) -> int:
    """Run every part (see the module docstring); 0, or 1 when one of the server's threads died.

    Raises
    ------
    BinsightError
        With ``--duration``, no route plan was made in that time.
    """
    _quiet_libraries(bool(getattr(args, "verbose", 0)))
    capture_every_s = _capture_every(args)  # a bad option fails before minutes of training and rendering
    data = Path(args.data).resolve()
    data.mkdir(parents=True, exist_ok=True)
    say = _Progress(total=6)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    city = make_city(args.bins)

    with ExitStack() as stack:
        protocol = _start_broker(stack, args.mqtt_port, say)
        say("fill model: training on a synthetic lid-camera set (cached after the first run)")
        model = ensure_model(data / "model")
        say(f"synthetic city: {len(city.bins)} bins, {city.trucks} trucks; rendering camera frames")
        folders = ensure_frames(city, data / "frames")
        say("server: database, ingest, forecasts, API, web page")
        server, token = _start_server(stack, data, city, args, protocol=protocol, model=model)
        drivers = _driver_tokens(server, city)
        history_s = args.history_h * 3600.0
        say(
            f"cameras: {len(city.bins)} agents (real agent code) backfill the last {args.history_h:g} h "
            f"in ~{history_s / BACKFILL_SCALE:.0f}s, then read every {capture_every_s:g} s in real time "
            f"(a new frame, {FRAME_STEP_S / 60:.0f} min of filling, every {FRAME_STEP_S / 60:.0f} min)"
        )
        mqtt = {"host": "127.0.0.1", "port": args.mqtt_port, "root": "binsight-demo", "protocol": protocol}
        template = _camera_template(city, folders, model, mqtt, _camera_updates(data, server.http_url))
        cameras = _Cameras(
            template, folders, data / "devices", history_s, stop, capture_every_s=capture_every_s
        )
        cameras.start()
        stack.callback(cameras.close)
        say(
            f"route plans: the first after the backfill (at least {args.first_plan_after:.0f}s), "
            f"then every {args.plan_every:.0f}s"
        )
        _print_welcome(server.http_url, token, drivers, args.duration)
        planner = _PlanLoop(server.http_url, token, args, stop, cameras.live)
        planner.start()
        # As `binsight server run` does: the server's watchdog runs until the demo stops or a thread dies.
        code = server.watch(stop)
        stop.set()
        planner.join()
        print("stopping...", flush=True)

    if code == 0 and args.duration is not None and planner.plans == 0:
        raise BinsightError(f"no route plan was made in {args.duration:.0f}s")
    return code


def _start_broker(stack: ExitStack, port: int, say: _Progress) -> str:
    """The broker at 127.0.0.1:``port`` if one listens, else amqtt in-process; the MQTT protocol to use."""
    if broker_reachable("127.0.0.1", port):
        say(f"MQTT broker: using the one at 127.0.0.1:{port}")
        return "5"
    broker = EmbeddedBroker("127.0.0.1", port)
    broker.start()
    stack.callback(broker.stop)
    say(f"MQTT broker: embedded amqtt on 127.0.0.1:{port}")
    return "3.1.1"  # amqtt speaks 3.1.1 only


def _start_server(
    stack: ExitStack, data: Path, city: DemoCity, args: argparse.Namespace, *, protocol: str, model: Path
) -> tuple[ServerRuntime, str]:
    """The server from its config file, as ``binsight server run`` builds it; bins, model and an admin
    token in its database. Returns the started runtime and the token."""
    from binsight.demo.trust import ensure_release_key, rollout_toml
    from binsight.server.auth import create_token
    from binsight.server.bins_import import import_bins, read_bins
    from binsight.server.config import load_server_config
    from binsight.server.runtime import ServerRuntime

    conf_path = data / "server.toml"
    key, _ = ensure_release_key(data)  # promotions sign with it; the cameras trust its public half
    every = _capture_every(args)
    toml = _server_toml(
        data, city, args.port, args.mqtt_port, protocol=protocol, capture_every_s=every
    ) + rollout_toml(key, every)
    conf_path.write_text(toml)
    server = ServerRuntime(load_server_config(conf_path))
    server.start()
    stack.callback(server.stop)
    with server.sessions.begin() as session:
        import_bins(session, read_bins(city.write_bins_csv(data / "bins.csv")))
        token = create_token(session, "admin", name="demo admin")
    _register_model(server, model)
    _announce_now(server)
    return server, token


def _announce_now(server: ServerRuntime) -> None:
    """Retain this demo's release of its model on every bin's model topic before a camera subscribes.

    An earlier demo on the same broker (another data folder, so another key) left its own release
    retained there: cameras that met it first would refuse it ("signature does not match") and show
    that refusal on the Models page until the monitor's first round replaced it.
    """
    from binsight.server.rollout.errors import RolloutError

    if server.broker is None or not server.broker.connected.wait(10.0):
        return  # the monitor announces it once the broker is there
    try:
        server.rollout.tick()
    except RolloutError as exc:
        logger.warning("the demo's model was not announced yet: %s", exc)


def _capture_every(args: argparse.Namespace) -> float:
    """``--capture-every``: seconds between a live camera's captures (the demo's default without it)."""
    given = getattr(args, "capture_every", None)
    every = CAPTURE_EVERY_S if given is None else float(given)
    if not 1.0 <= every <= FRAME_STEP_S:
        raise BinsightError(f"--capture-every must be 1 .. {FRAME_STEP_S:.0f} s, got {every:g}")
    return every


def _camera_updates(data: Path, server_url: str) -> dict[str, Any]:
    """The cameras' ``[updates]``: trust the demo key; relative release URLs are on the demo server;
    a shadow soak as long as the demo's canaries are judged (:data:`~binsight.demo.trust.SHADOW_CAPTURES`)."""
    from binsight.demo.trust import SHADOW_CAPTURES, ensure_release_key

    return {
        "public_key": ensure_release_key(data)[1],
        "base_url": server_url,
        "shadow_captures": SHADOW_CAPTURES,
    }


def _driver_tokens(server: ServerRuntime, city: DemoCity) -> dict[str, str]:
    """A ``driver`` token per truck (by truck id): signing in with one opens that truck's manifest."""
    from binsight.server.auth import create_token

    with server.sessions.begin() as session:
        return {
            truck: create_token(session, "driver", name=f"demo driver {truck}", truck=truck)
            for truck in city.truck_ids
        }


def _camera_template(
    city: DemoCity, folders: dict[str, Path], model: Path, mqtt: dict[str, Any], updates: dict[str, Any]
) -> DeviceConfig:
    """The agents' configuration; ``updates`` is their ``[updates]`` (the demo key's public half, the
    server's URL for relative release URLs)."""
    from binsight.device.config import DeviceConfig

    first = city.bins[0].bin_id
    return DeviceConfig.model_validate(
        {
            "bin_id": first,
            "model": str(model),
            "camera": {"source": str(folders[first]), "burst": 1, "jitter": 0.0},
            "mqtt": mqtt,
            "stats": {"interval_s": 10.0},
            "labelling": {"every_n": BACKFILL_LABEL_EVERY},
            "watchdog": {"enabled": False},
            "updates": updates,
        }
    )


class _Cameras(threading.Thread):
    """One real agent per bin: the history backfilled on an accelerated clock, then real time.

    Every capture shows the frame of its clock's time (:class:`~binsight.demo.camera.TimedFrames`:
    frame k from ``history_s`` ago + k * :data:`FRAME_STEP_S` on). The backfill's clock starts
    ``history_s`` in the past and runs :data:`BACKFILL_SCALE` times faster than wall time, about one
    frame per capture; its fleet is stopped a frame before that clock reaches the present, and a
    second fleet goes on on the wall clock, capturing every ``capture_every_s``: the same frame until
    the next one is due. ``live`` is set then.
    """

    def __init__(
        self,
        template: DeviceConfig,
        folders: dict[str, Path],
        state_dir: Path,
        history_s: float,
        stop: threading.Event,
        *,
        capture_every_s: float = CAPTURE_EVERY_S,
    ) -> None:
        super().__init__(name="binsight-demo-cameras", daemon=True)
        self.template, self.folders, self.state_dir = template, folders, state_dir
        self.history_s, self.stop, self.capture_every_s = history_s, stop, capture_every_s
        self.live = threading.Event()
        self.fleet: SimulatedFleet | None = None  # the live one, once ``live`` is set

    def close(self) -> None:
        """Stop the cameras (each agent says ``offline``) and wait for them."""
        self.stop.set()
        self.join()

    def live_template(self) -> DeviceConfig:
        """The live cameras' config: about one labelling image per frame, not one per capture of it."""
        every_n = max(1, round(BACKFILL_LABEL_EVERY * FRAME_STEP_S / self.capture_every_s))
        labelling = self.template.labelling.model_copy(update={"every_n": every_n})
        return self.template.model_copy(update={"labelling": labelling})

    def run(self) -> None:
        from binsight.demo.camera import TimedFrames
        from binsight.device.clock import Clock
        from binsight.device.simulate import SimulatedFleet

        # The one demo clock: frame k of every bin shows its fill at start + k * FRAME_STEP_S.
        start_ms = int((time.time() - self.history_s) * 1000)

        def camera(_bin: str, folder: Path, clock: Clock) -> TimedFrames:
            return TimedFrames(folder, start_ms, FRAME_STEP_S, clock)

        if self.history_s > 0:
            t0 = time.monotonic()
            backfill = SimulatedFleet(
                self.folders,
                template=self.template,
                state_dir=self.state_dir,
                interval_s=BACKFILL_INTERVAL_S,
                time_scale=BACKFILL_SCALE,
                start_ms=start_ms,
                source=camera,
            )
            backfill.start()
            # The backfill clock gains (scale - 1) s per wall second; stop a frame short of now.
            catch_up_s = max(0.0, self.history_s - FRAME_STEP_S) / (BACKFILL_SCALE - 1.0)
            self.stop.wait(max(0.0, catch_up_s - (time.monotonic() - t0)))
            backfill.stop()
        if self.stop.is_set():
            return
        fleet = SimulatedFleet(
            self.folders,
            template=self.live_template(),
            state_dir=self.state_dir,
            interval_s=self.capture_every_s,
            source=camera,
        )
        fleet.start()
        self.fleet = fleet
        self.live.set()
        self.stop.wait()
        fleet.stop()


def _print_welcome(base: str, token: str, drivers: dict[str, str], duration: float | None) -> None:
    print(f"\nbinsight demo is running: {base}/  (synthetic data)")
    print(f"admin token: {token}")
    print(f"one-click sign-in: {base}/#token={token}")
    for truck, driver in drivers.items():
        print(f"driver of {truck} (opens its manifest of the published plan): {base}/#token={driver}")
    print("Ctrl-C stops it.\n" if duration is None else f"running for {duration:.0f}s\n", flush=True)


class _PlanLoop(threading.Thread):
    """Asks for a route plan every ``--plan-every`` seconds; sets ``stop`` once ``--duration`` is over."""

    def __init__(
        self,
        base: str,
        token: str,
        args: argparse.Namespace,
        stop: threading.Event,
        ready: threading.Event,
    ) -> None:
        super().__init__(name="binsight-demo-plans", daemon=True)
        self.base, self.token, self.args, self.stop, self.ready = base, token, args, stop, ready
        self.plans = 0
        #: Service days that have a published plan (the demo's own or a dispatcher's).
        self.published_days: set[str] = set()

    def run(self) -> None:
        t0 = time.monotonic()
        next_plan = t0 + self.args.first_plan_after
        while not self.stop.wait(0.5):
            now = time.monotonic()
            if self.args.duration is not None and now - t0 >= self.args.duration:
                self.stop.set()
                return
            if now >= next_plan and self.ready.is_set():
                next_plan = now + self.args.plan_every
                self._one_plan()

    def _one_plan(self) -> None:
        try:
            plan = _plan(self.base, self.token, self.stop, time_limit_s=5.0)
        except (urllib.error.URLError, OSError, KeyError) as exc:
            logger.warning("plan request failed: %s", exc)
            return
        if plan is None:
            return
        self.plans += 1
        result = plan.get("result") or {}
        routes = result.get("routes", [])
        stops = sum(sum(1 for s in r.get("stops", []) if s.get("kind") == "bin") for r in routes)
        skipped = result.get("skipped", [])
        print(
            f"plan {plan['id']}: {len(routes)} routes, {stops} bins collected, {len(skipped)} skipped"
            + "".join(f"\n  skipped {n}: {why}" for why, n in _reasons(skipped)),
            flush=True,
        )
        _publish_first_of_day(self, plan)


def _publish_first_of_day(loop: _PlanLoop, plan: dict[str, Any]) -> None:
    """Publish ``plan`` when nothing is published for its day yet (never over a dispatcher's choice)."""
    day = plan.get("service_day")
    if not day or day in loop.published_days:
        return
    try:
        _post_json(f"{loop.base}/api/manifests?date={day}", loop.token)
        loop.published_days.add(day)  # someone published this day already: leave it
        return
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            logger.warning("could not check the published plan for %s: %s", day, exc)
            return
    except (urllib.error.URLError, OSError) as exc:
        logger.warning("could not check the published plan for %s: %s", day, exc)
        return
    try:
        _post_json(f"{loop.base}/api/plans/{plan['id']}/publish", loop.token, {})
    except (urllib.error.URLError, OSError) as exc:
        logger.warning("could not publish plan %s: %s", plan["id"], exc)
        return
    loop.published_days.add(day)
    print(f"published plan {plan['id']} for {day}: the drivers' manifests show it", flush=True)


def _reasons(skipped: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The plan's reasons for skipping bins, most common first (dates and fills folded together)."""
    counts: dict[str, int] = {}
    for s in skipped:
        why = re.sub(r"[0-9][0-9.-]*", "N", str(s.get("reason", "")).split(" (")[0].split(":")[0])
        counts[why] = counts.get(why, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])
