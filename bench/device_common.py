"""Shared by the bench/device_*.py scripts: a model to run, images, a private Mosquitto."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "device"))

from device_support import build_model, scene, write_images  # noqa: E402


def model_or_tiny(path: str | None, tmp: Path) -> tuple[Path, str]:
    """The model to benchmark, and a description for the report."""
    if path:
        size = Path(path).stat().st_size / 1e6
        # Absolute: the agent resolves a relative model path against its config file's folder.
        return Path(path).resolve(), f"{path} ({size:.1f} MB)"
    tiny = build_model(tmp / "tiny.onnx", "tiny-bench")
    return tiny, f"the tests' tiny mean-brightness model ({tiny.stat().st_size} bytes): NOT a real backbone"


def images(tmp: Path, n: int = 20, size: tuple[int, int] = (480, 640)) -> Path:
    return write_images(tmp / "imgs", [scene(60 + (i * 7) % 140, seed=i, size=size) for i in range(n)])


class Broker:
    """A private Mosquitto on a free port, configured like the tests' (no silent queue limit)."""

    def __init__(self, tmp: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        conf = tmp / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            f"max_inflight_messages 1000\npersistence false\n{user}"
        )
        if shutil.which("mosquitto") is None:
            raise SystemExit("mosquitto is not installed")
        quiet = subprocess.DEVNULL
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=quiet, stderr=quiet)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("private mosquitto did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def tempdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="binsight-bench-"))


def percentiles(values: list[float]) -> str:
    import statistics

    v = sorted(values)
    q = statistics.quantiles(v, n=100) if len(v) > 2 else v * 100
    return f"p50 {q[49]:.1f}  p95 {q[94]:.1f}  max {v[-1]:.1f}  (n={len(v)})"
