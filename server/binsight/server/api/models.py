"""Model files: the listing (``GET /api/models``) and the download devices use.

A file is served without a token only once a signed release of it was issued (devices verify the
signature and sha256); a candidate that was never promoted needs a token of any role.

The listing says where each model's metrics come from: the file's own metadata, on its own test
set, which nothing on the server measured. Two models' metrics compare only on the same data set
(``comparable_with_active``), and a file whose metrics and data set fingerprint are exactly those of
another, different file carries copied metadata: the listing warns instead of showing them as its own.
``server_check`` is what the server measured itself, both models on the same stored labels, when
it was promoted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.server.api.schemas import ModelOut
from binsight.server.auth import Principal, bearer_token, principal_for_token, require
from binsight.server.db.models import ModelRecord, ReleaseRecord, Rollout
from binsight.server.state import AppState, get_state

router = APIRouter(tags=["models"])

State = Annotated[AppState, Depends(get_state)]
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _copied_from(m: ModelRecord, others: list[ModelRecord]) -> ModelRecord | None:
    """An older, different file with exactly ``m``'s metrics and data set fingerprint."""
    if not m.metrics or not m.dataset_fingerprint:
        return None
    for o in others:
        if (
            o.created_at <= m.created_at
            and o.version != m.version
            and o.sha256 != m.sha256
            and o.metrics == m.metrics
            and o.dataset_fingerprint == m.dataset_fingerprint
        ):
            return o
    return None


def model_listing(s: Session, rows: list[ModelRecord]) -> list[ModelOut]:
    """``rows`` as the API shows them: where their metrics come from, and what the server checked."""
    everyone = list(s.execute(select(ModelRecord)).scalars())
    active = next((m for m in everyone if m.active), None)
    released = set(s.execute(select(ReleaseRecord.version).distinct()).scalars())
    checks: dict[str, dict[str, Any]] = {}
    for r in s.execute(select(Rollout).where(Rollout.kind == "promote").order_by(Rollout.id)).scalars():
        check = (r.comparison or {}).get("server_check")
        if check:
            checks[r.version] = check
    out = []
    for m in rows:
        item = ModelOut.model_validate(m, from_attributes=True)
        item.released = m.version in released
        item.server_check = checks.get(m.version)
        if m.metrics is not None:
            item.test_set = {"n": m.metrics.get("n"), "dataset_fingerprint": m.dataset_fingerprint}
        if active is not None and active.version != m.version:
            item.comparable_with_active = (
                m.dataset_fingerprint is not None and m.dataset_fingerprint == active.dataset_fingerprint
            )
        source = _copied_from(m, everyone)
        if source is not None:
            item.metrics = None
            item.warnings.append(
                f"its metadata claims the metrics and data set of {source.version}, a different file: "
                "copied metadata, not measured on this file (metrics hidden)"
            )
        out.append(item)
    return out


@router.get("/api/models", response_model=list[ModelOut])
def list_models(_who: Annotated[Principal, Depends(require("operator"))], state: State) -> list[ModelOut]:
    """Known models, newest first; ``active`` is the one devices are told to run."""
    with state.sessions() as s:
        rows = list(s.execute(select(ModelRecord).order_by(ModelRecord.created_at.desc())).scalars())
        return model_listing(s, rows)


@router.get("/models/{version}.onnx", response_class=FileResponse, tags=["models"])
def download(version: str, request: Request, state: State) -> FileResponse:
    """The model file; devices verify its signature and sha256 before using it.

    Without a token only released models (a signed release was issued) are served: an uploaded
    candidate is not public. 404 either way for a model that is not served, so none is revealed.
    """
    if not _VERSION.match(version):
        raise HTTPException(404, "no such model")
    with state.sessions() as s:
        m = s.get(ModelRecord, version)
        released = s.execute(select(ReleaseRecord.number).where(ReleaseRecord.version == version)).first()
    if m is None or (released is None and not _has_token(request, state)):
        raise HTTPException(404, f"no released model {version!r} (an unreleased one needs a token)")
    path = Path(m.path)
    if not path.is_absolute():
        path = state.config.models.dir / path
    if not path.is_file():
        raise HTTPException(410, f"model {version} is registered but its file is gone")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{version}.onnx")


def _has_token(request: Request, state: AppState) -> bool:
    token = bearer_token(request.headers.get("authorization"))
    return token is not None and principal_for_token(state.sessions, token) is not None
