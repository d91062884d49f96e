"""/api/models lists the models table and says where metrics come from; /models/<version>.onnx serves
a released model's file without a token, an unreleased one only with a token."""

from __future__ import annotations

import hashlib

from server_helpers import Api

from binsight.server.db.models import ModelRecord, ReleaseRecord


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
        for v in ("v1", "v0"):
            s.add(ReleaseRecord(version=v, sha256="0" * 64, size=1, issued_at=1))
    listed = api.get("/api/models", "operator").json()
    assert [m["version"] for m in listed] == ["v1", "v0"]
    assert listed[0]["metrics"] == {"mae": 0.05} and listed[0]["active"] is True
    r = api.client.get("/models/v1.onnx")
    assert r.status_code == 200 and r.content == data
    assert api.client.get("/models/v0.onnx").status_code == 410
    assert api.client.get("/models/v9.onnx").status_code == 404
    assert api.client.get("/models/..%2Fetc.onnx").status_code == 404


def test_an_unreleased_model_needs_a_token(api: Api) -> None:
    """A candidate uploaded but never promoted (no release) is not public: 404 without a token, the
    file with a token of any role; an unknown token is no token."""
    cfg = api.client.app.state.binsight.config  # type: ignore[attr-defined]
    cfg.models.dir.mkdir(parents=True, exist_ok=True)
    data = b"candidate" * 50
    (cfg.models.dir / "cand.onnx").write_bytes(data)
    with api.sessions() as s, s.begin():
        s.add(
            ModelRecord(
                version="cand",
                created_at=5,
                path="cand.onnx",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        )
    r = api.client.get("/models/cand.onnx")
    assert r.status_code == 404 and "unreleased" in r.json()["detail"]
    bogus = api.client.get("/models/cand.onnx", headers={"Authorization": "Bearer bst_nope"})
    assert bogus.status_code == 404
    r = api.client.get("/models/cand.onnx", headers=api.h("labeller"))
    assert r.status_code == 200 and r.content == data
    assert api.get("/api/models", "operator").json()[0]["released"] is False


def test_copied_metadata_and_test_sets_are_shown(api: Api) -> None:
    """A different file claiming another model's metrics and data set has them hidden with a warning;
    metrics on another data set than the active model's are marked not comparable."""
    same = {"n": 12, "mae": 0.058}
    with api.sessions() as s, s.begin():
        s.add(ModelRecord(version="orig", created_at=1, path="o.onnx", sha256="a" * 64, size=1,
                          metrics=same, dataset_fingerprint="f" * 64, active=True))  # fmt: skip
        s.add(ModelRecord(version="random", created_at=2, path="r.onnx", sha256="b" * 64, size=1,
                          metrics=dict(same), dataset_fingerprint="f" * 64))  # fmt: skip
        s.add(ModelRecord(version="other", created_at=3, path="x.onnx", sha256="c" * 64, size=1,
                          metrics={"n": 40, "mae": 0.04}, dataset_fingerprint="e" * 64))  # fmt: skip
    listed = {m["version"]: m for m in api.get("/api/models", "operator").json()}
    assert listed["orig"]["metrics"] == same and not listed["orig"]["warnings"]
    assert listed["random"]["metrics"] is None and "copied metadata" in listed["random"]["warnings"][0]
    assert listed["other"]["comparable_with_active"] is False
    assert listed["other"]["test_set"] == {"n": 40, "dataset_fingerprint": "e" * 64}
