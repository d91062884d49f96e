"""Model files: the listing (``GET /api/models``) and the download devices use (no token: signed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy import select

from binsight.server.api.schemas import ModelOut
from binsight.server.auth import Principal, require
from binsight.server.db.models import ModelRecord
from binsight.server.state import AppState, get_state

router = APIRouter(tags=["models"])

State = Annotated[AppState, Depends(get_state)]
_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@router.get("/api/models", response_model=list[ModelOut])
def list_models(_who: Annotated[Principal, Depends(require("operator"))], state: State) -> list[ModelOut]:
    """Known models, newest first; ``active`` is the one devices are told to run."""
    with state.sessions() as s:
        rows = s.execute(select(ModelRecord).order_by(ModelRecord.created_at.desc())).scalars()
        return [ModelOut.model_validate(m, from_attributes=True) for m in rows]


@router.get("/models/{version}.onnx", response_class=FileResponse, tags=["models"])
def download(version: str, state: State) -> FileResponse:
    """The model file; devices verify its signature and sha256 before using it."""
    if not _VERSION.match(version):
        raise HTTPException(404, "no such model")
    with state.sessions() as s:
        m = s.get(ModelRecord, version)
    if m is None:
        raise HTTPException(404, f"no model {version!r}")
    path = Path(m.path)
    if not path.is_absolute():
        path = state.config.models.dir / path
    if not path.is_file():
        raise HTTPException(410, f"model {version} is registered but its file is gone")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{version}.onnx")
