"""Request bodies: a limit per route (413 naming it), and a token checked before a body is read.

These run through the ASGI app; tests/faults/test_http_bodies.py sends the large bodies over real HTTP
and measures the server's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import Api

from binsight.server.http_limits import HTTP_REJECTS, MAX_BODY_BYTES


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Body limits do not depend on the backend: SQLite only."""
    return f"sqlite:///{tmp_path / 'bodies.db'}"


def _chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    while total > 0:
        yield b" " * min(size, total)
        total -= size


def test_json_body_over_the_limit_is_413(api: Api) -> None:
    """A JSON route takes 64 KiB: a larger body is 413 naming the limit, whether its length is declared
    or it comes chunked; a body just under it reaches the route (here: 422, not JSON it knows)."""
    before = HTTP_REJECTS.snapshot()["too_large"]
    r = api.post("/api/devices/d1/commands", content=b" " * (MAX_BODY_BYTES + 1))
    assert r.status_code == 413
    assert r.json()["detail"] == (
        "request body too large: POST /api/devices/d1/commands takes at most 64 KiB (65536 bytes)"
    )
    r = api.post("/api/devices/d1/commands", content=_chunks(MAX_BODY_BYTES + 1))
    assert r.status_code == 413 and "64 KiB" in r.json()["detail"]
    assert HTTP_REJECTS.snapshot()["too_large"] == before + 2
    r = api.post("/api/devices/d1/commands", content=b'{"action": "explode"}' + b" " * 60_000)
    assert r.status_code == 422


def test_body_without_a_valid_token_is_401_unread(api: Api) -> None:
    """No token, an unknown one, another scheme: 401 from the middleware (counted), before the route
    (or FastAPI, which reads a body before it resolves dependencies) reads it; a labeller gets through."""
    before = HTTP_REJECTS.snapshot()["unauthenticated"]
    for headers in ({}, {"Authorization": "Bearer bst_unknown"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = api.client.post("/api/images/1/label", content=b'{"fill": 0.5}', headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
    assert HTTP_REJECTS.snapshot()["unauthenticated"] == before + 3
    assert api.post("/api/images/1/label", "labeller", json={"fill": 0.5}).status_code == 404


def test_model_upload_role_checked_before_the_body(api: Api) -> None:
    """An upload takes far more than a JSON body, so the route's role (admin) is checked first: an
    operator's upload is 403 without being read; the admin's goes through to the model checks."""
    before = HTTP_REJECTS.snapshot()["forbidden"]
    files = {"file": ("m.onnx", b"x" * (MAX_BODY_BYTES * 2))}
    r = api.post("/api/models", "operator", files=files)
    assert r.status_code == 403 and "needs admin" in r.json()["detail"]
    assert HTTP_REJECTS.snapshot()["forbidden"] == before + 1
    r = api.post("/api/models", "admin", files=files)
    assert r.status_code == 422 and r.json()["detail"].startswith("m.onnx: not an ONNX model"), r.text
