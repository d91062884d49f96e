"""Device fixtures: tiny models, test images, MQTT collectors, a broker whose persistence works."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from device_support import Collector, build_model, reconfigure_broker, scene, write_images


@pytest.fixture(scope="session")
def model_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("models") / "v1.onnx", "v1")


@pytest.fixture(scope="session")
def model_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("models") / "v2.onnx", "v2", invert=True)


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 10 usable textured images with rising brightness (fill ~0.3 .. ~0.7)."""
    folder = tmp_path_factory.mktemp("scenes")
    return write_images(folder, [scene(80 + 10 * i, seed=i) for i in range(10)])


@pytest.fixture
def collector_factory() -> Iterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(port: int, persistent: bool = False) -> Collector:
        c = Collector(port, persistent=persistent)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def durable_mosquitto(mosquitto: Any) -> Any:
    """The private Mosquitto, restarted so that its persistence works: durable sessions survive.

    As root, Mosquitto drops to the ``mosquitto`` user, which cannot write its database under
    pytest's 0700 temp folder ("Error saving in-memory database"), so sessions die with a restart.
    """
    if os.geteuid() == 0:
        reconfigure_broker(mosquitto, "")
    return mosquitto


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on a free port serving a folder: ``(folder, base_url)``."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
