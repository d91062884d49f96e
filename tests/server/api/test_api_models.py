"""/api/models lists the models table; /models/<version>.onnx serves the file without a token."""

from __future__ import annotations

import hashlib

from server_helpers import Api

from binsight.server.db.models import ModelRecord


def test_models_listing_and_download(api: Api) -> None:
    """A registered model is listed with its metrics and downloadable byte for byte; others are 404."""
    cfg = api.client.app.state.binsight.config  # type: ignore[attr-defined]
    cfg.models.dir.mkdir(parents=True, exist_ok=True)
    data = b"onnx-bytes" * 100
    (cfg.models.dir / "v1.onnx").write_bytes(data)
    with api.sessions() as s, s.begin():
        s.add(
            ModelRecord(
                version="v1",
                created_at=1,
                path="v1.onnx",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                precision="fp32",
                metrics={"mae": 0.05},
                active=True,
            )
        )
        s.add(ModelRecord(version="v0", created_at=0, path="/nowhere/v0.onnx", sha256="0" * 64, size=1))
    listed = api.get("/api/models", "operator").json()
    assert [m["version"] for m in listed] == ["v1", "v0"]
    assert listed[0]["metrics"] == {"mae": 0.05} and listed[0]["active"] is True
    r = api.client.get("/models/v1.onnx")
    assert r.status_code == 200 and r.content == data
    assert api.client.get("/models/v0.onnx").status_code == 410
    assert api.client.get("/models/v9.onnx").status_code == 404
    assert api.client.get("/models/..%2Fetc.onnx").status_code == 404
