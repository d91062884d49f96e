"""Oversized and unauthenticated HTTP bodies against a real server (uvicorn on a free port, started by
ServerRuntime), with the server's resident memory measured while they arrive.

Before the body limits, one unauthenticated 200 MB POST took the server from 123 MB to 740 MB and three
in parallel to 1.5 GB (508 MB kept afterwards): FastAPI read each body whole before the route's token
check ran. Now the middleware refuses them from the headers, so memory stays flat, and every refusal is
counted on /metrics (``binsight_http_rejected_total{reason}``): "rejected" below is what that says.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from netutil import free_port

from binsight.server import http_limits
from binsight.server.auth import create_token
from binsight.server.config import config_from_dict
from binsight.server.runtime import ServerRuntime

sys.path.insert(0, str(Path(__file__).parents[1] / "server" / "rollout"))
from retrain_support import tiny_model

MB = 1 << 20
#: The model upload limit in these tests: small, so that an oversized upload is quick to send.
UPLOAD_LIMIT = 8 * MB
LIMIT_TEXT = "8 MiB (8388608 bytes)"
#: "Without the RSS growing by more than a few MB" (it grew by 600 MB per request before).
MAX_RSS_GROWTH_MB = 8.0


@dataclass
class Server:
    runtime: ServerRuntime
    url: str
    admin: str
    models_dir: Path
    spool_dir: Path

    def rejected(self, reason: str) -> int:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        found = re.search(rf'^binsight_http_rejected_total{{reason="{reason}"}} (\d+)\.0$', text, re.M)
        assert found, text
        return int(found.group(1))


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """An API-only server on a free port; model uploads capped at UPLOAD_LIMIT; Starlette's upload
    spool (``tempfile``'s directory) in ``tmp_path/spool`` so that a file left behind is seen."""
    monkeypatch.setattr(http_limits, "MAX_MODEL_UPLOAD_BYTES", UPLOAD_LIMIT)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    cfg = config_from_dict(
        {
            "database": f"sqlite:///{tmp_path / 'server.db'}",
            "http": {"host": "127.0.0.1", "port": free_port()},
            "models": {"dir": str(tmp_path / "models")},
        }
    )
    runtime = ServerRuntime(cfg, mqtt=False)
    runtime.start()
    with runtime.sessions() as s, s.begin():
        admin = create_token(s, "admin", "admin-test")
    try:
        yield Server(runtime, runtime.http_url, admin, cfg.models.dir, spool)
    finally:
        runtime.stop()


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakRss:
    """The process's (the server's: it runs in this process) largest resident size while in the block."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self.peak = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _stream(total: int, chunk: bytes = b"x" * (64 * 1024)) -> Iterator[bytes]:
    """``total`` bytes, one reused 64 KiB chunk at a time: the client never holds the body."""
    for _ in range(total // len(chunk)):
        yield chunk


def _multipart(total: int, boundary: str = "binsight-test") -> Iterator[bytes]:
    """A multipart upload whose ``file`` part is ``total`` bytes, streamed (chunked, no length)."""
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.onnx"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from _stream(total)
    yield f"\r\n--{boundary}--\r\n".encode()


def test_unauthenticated_200mb_posts_refused_unread(server: Server, fault_counts: Any) -> None:
    """One 200 MB POST without a token, then three at once: each is 401 from the headers alone (on a
    JSON route and on the upload route), counted, and the server's memory grows by less than a few MB."""
    url = f"{server.url}/api/devices/bin-1/commands"
    targets = [url, f"{server.url}/api/models", f"{server.url}/api/images/1/label"]
    # The clients run in this process too: made, and warmed up on their threads, before the baseline.
    clients = [httpx.Client(timeout=60) for _ in targets]
    pool = ThreadPoolExecutor(len(clients))
    warm = pool.map(lambda c, u: c.post(u, content=b"{}").status_code, clients, targets)
    assert list(warm) == [401, 401, 401]
    before = server.rejected("unauthenticated")
    with PeakRss() as one:
        baseline = one.peak
        r = clients[0].post(url, content=_stream(200 * MB))
    assert r.status_code == 401 and r.json()["detail"] == "missing bearer token"
    with PeakRss() as three:
        answers = list(pool.map(lambda c, u: c.post(u, content=_stream(200 * MB)), clients, targets))
    assert [a.status_code for a in answers] == [401, 401, 401], [a.text for a in answers]
    pool.shutdown()
    for client in clients:
        client.close()
    fault_counts.sent = 4
    fault_counts.rejected = server.rejected("unauthenticated") - before
    growth = max(one.peak, three.peak) - baseline
    print(
        f"RSS {baseline:.1f} MB; peak +{one.peak - baseline:.1f} (one), +{three.peak - baseline:.1f} (three)"
    )
    assert growth < MAX_RSS_GROWTH_MB, f"server RSS grew by {growth:.1f} MB for refused bodies"


def test_model_uploads_over_the_limit_413_and_leave_no_file(
    server: Server, fault_counts: Any, tmp_path: Path
) -> None:
    """An admin's upload over the route's limit is 413 naming the limit, declared (refused from the
    Content-Length) or streamed (refused when the count passes it), and leaves no temp file, neither
    the upload spool nor in the models folder; a normal upload still registers the model."""
    url = f"{server.url}/api/models"
    auth = {"Authorization": f"Bearer {server.admin}"}
    before = server.rejected("too_large")

    client = httpx.Client(timeout=60)
    declared = client.post(url, headers=auth, files={"file": ("big.onnx", b"x" * (UPLOAD_LIMIT + MB))})
    chunked_headers = {**auth, "Content-Type": "multipart/form-data; boundary=binsight-test"}
    with PeakRss() as rss:
        baseline = rss.peak
        streamed = client.post(url, headers=chunked_headers, content=_multipart(3 * UPLOAD_LIMIT))
    for r in (declared, streamed):
        assert r.status_code == 413, r.text
        assert r.json()["detail"] == f"request body too large: POST /api/models takes at most {LIMIT_TEXT}"
    assert rss.peak - baseline < MAX_RSS_GROWTH_MB + UPLOAD_LIMIT / MB  # spooled past 1 MB, not held
    assert list(server.spool_dir.iterdir()) == []
    assert not server.models_dir.exists() or list(server.models_dir.iterdir()) == []

    model = tiny_model(tmp_path / "m.onnx", "v1", a=1.0, b=0.0)
    ok = client.post(url, headers=auth, files={"file": ("m.onnx", model.read_bytes())})
    assert ok.status_code == 201 and ok.json()["version"] == "v1", ok.text
    assert sorted(p.name for p in server.models_dir.iterdir()) == ["v1.onnx"]
    assert list(server.spool_dir.iterdir()) == []
    client.close()

    fault_counts.sent = 3
    fault_counts.stored = 1
    fault_counts.rejected = server.rejected("too_large") - before
