"""The rollout API without a broker: roles, bad uploads, refusals that change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from retrain_support import tiny_model

from binsight.server.auth import create_token
from binsight.server.config import config_from_dict
from binsight.server.runtime import ServerRuntime


@pytest.fixture(params=["with-key", "no-key"])
def client(request: pytest.FixtureRequest, tmp_path: Path, signing_key: tuple[Path, str]) -> Iterator[Any]:
    rollout = {"signing_key": str(signing_key[0])} if request.param == "with-key" else {}
    cfg = config_from_dict(
        {
            "database": f"sqlite:///{tmp_path / 'a.db'}",
            "models": {"dir": str(tmp_path / "models")},
            "rollout": rollout,
        }
    )
    runtime = ServerRuntime(cfg, mqtt=False)  # API only: no broker, so announcements are refused
    runtime.start(listen=False)  # the rollout monitor runs, as in a server
    try:
        with TestClient(runtime.app) as c:
            with runtime.sessions() as s, s.begin():
                c.tokens = {r: create_token(s, r) for r in ("admin", "operator", "labeller")}
            c.param = request.param
            yield c
    finally:
        runtime.stop()


def _h(c: Any, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {c.tokens[role]}"}


def test_upload_promote_refusals_leave_state_unchanged(client: Any, tmp_path: Path) -> None:
    """Junk and duplicates are refused; promotion without a key or a broker is 503 and records nothing."""
    c = client
    model = tiny_model(tmp_path / "m.onnx", "v1", a=1.0, b=0.0)
    r = c.post("/api/models", files={"file": ("x.onnx", b"not onnx at all")}, headers=_h(c, "admin"))
    assert r.status_code == 422 and r.json()["detail"].startswith("x.onnx: "), r.json()
    models_dir = str(tmp_path / "models")
    assert ".upload-" not in r.json()["detail"] and models_dir not in r.json()["detail"]
    (tmp_path / "models" / "v7.onnx").write_bytes(b"left over")
    r = c.post(
        "/api/models",
        files={"file": ("v7.onnx", tiny_model(tmp_path / "v7.onnx", "v7", a=1.0, b=0.0).read_bytes())},
        headers=_h(c, "admin"),
    )
    assert r.status_code == 409 and "v7.onnx" in r.json()["detail"], r.json()
    assert models_dir not in r.json()["detail"] and ".upload-" not in r.json()["detail"]
    r = c.post(
        "/api/models",
        files={"file": ("m.onnx", model.read_bytes())},
        data={"report": "{"},
        headers=_h(c, "admin"),
    )
    assert r.status_code == 422 and "report is not JSON" in r.json()["detail"]
    r = c.post("/api/models", files={"file": ("m.onnx", model.read_bytes())}, headers=_h(c, "operator"))
    assert r.status_code == 403
    r = c.post("/api/models", files={"file": ("m.onnx", model.read_bytes())}, headers=_h(c, "admin"))
    assert r.status_code == 201 and r.json()["version"] == "v1" and r.json()["active"] is False
    r = c.post("/api/models", files={"file": ("m.onnx", model.read_bytes())}, headers=_h(c, "admin"))
    assert r.status_code == 409
    assert c.post("/api/models/v1/promote", json={}, headers=_h(c, "operator")).status_code == 403
    assert c.post("/api/models/v9/promote", json={}, headers=_h(c, "admin")).status_code == 404
    assert c.post("/api/models/v1/promote", json={"nope": 1}, headers=_h(c, "admin")).status_code == 422
    r = c.post("/api/models/v1/promote", json={}, headers=_h(c, "admin"))
    assert r.status_code == 503
    assert ("no MQTT connection" if c.param == "with-key" else "no model signing key") in r.json()["detail"]
    state = c.get("/api/rollout", headers=_h(c, "operator")).json()
    assert state["active"] is None and state["rollout"] is None
    assert c.post("/api/models/rollback", headers=_h(c, "admin")).status_code == 409
    assert c.get("/api/drift", headers=_h(c, "operator")).json() == []
    assert c.get("/api/coverage", headers=_h(c, "operator")).json() == []
    assert c.get("/api/rollout", headers=_h(c, "labeller")).status_code == 403
