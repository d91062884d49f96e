"""Model registration, promotion (gated), rollback, rollout state, drift and coverage sampling.

``POST /api/models`` (admin, multipart: ``file`` = the ONNX model, ``report`` = its training report
JSON), ``POST /api/models/{version}/promote`` ``{force?, reason?}`` (admin; 409 when the gate refuses),
``POST /api/models/rollback`` (admin), ``GET /api/rollout``, ``GET /api/drift``,
``GET /api/coverage`` and ``POST /api/coverage``, ``GET /api/labels/quality`` (operator). See
docs/retraining.md.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from binsight.server.api.models import model_listing
from binsight.server.api.schemas import ModelOut
from binsight.server.auth import Principal, require
from binsight.server.db.engine import now_ms
from binsight.server.rollout.coverage import coverage_plan
from binsight.server.rollout.drift import drift_report
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.label_quality import label_quality
from binsight.server.rollout.registry import register_model
from binsight.server.rollout.service import RolloutService
from binsight.server.state import AppState, get_state

logger = logging.getLogger(__name__)

router = APIRouter(tags=["rollout"])

Admin = Annotated[Principal, Depends(require("admin"))]
Operator = Annotated[Principal, Depends(require("operator"))]
State = Annotated[AppState, Depends(get_state)]


def rollout_service(request: Request) -> RolloutService:
    return get_state(request).rollout


Rollouts = Annotated[RolloutService, Depends(rollout_service)]


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = False
    reason: str | None = Field(default=None, max_length=2000)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


def _fail(exc: RolloutError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


@router.post("/api/models", status_code=201, response_model=ModelOut)
async def upload_model(
    _who: Admin,
    state: State,
    file: Annotated[UploadFile, File(description="the ONNX model file")],
    report: Annotated[str | None, Form(description="the training report (JSON)")] = None,
) -> ModelOut:
    """Register a candidate model with its training report; it is not announced until promoted."""
    parsed: dict[str, Any] | None = None
    if report:
        try:
            parsed = json.loads(report)
        except json.JSONDecodeError as exc:
            raise HTTPException(422, f"report is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise HTTPException(422, "report must be a JSON object")
    models_dir = state.config.models.dir
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=models_dir, prefix=".upload-", suffix=".onnx", delete=False) as tmp:
        while chunk := await file.read(1 << 20):
            tmp.write(chunk)
    path = Path(tmp.name)
    try:
        record = register_model(state.sessions, models_dir, path, parsed)
    except RolloutError as exc:
        # The error names the file it checked: the client's name for it, never the server's temp file.
        detail = str(exc).replace(path.name, file.filename or "the uploaded file")
        raise HTTPException(exc.status, detail) from None
    finally:
        path.unlink(missing_ok=True)
    with state.sessions() as s:
        return model_listing(s, [record])[0]


@router.post("/api/models/rollback")
def rollback(who: Admin, rollouts: Rollouts, body: RollbackIn | None = None) -> dict[str, Any]:
    """Make the previous model active again and announce a NEW signed release of it (the next release
    number) to every bin, in one action: devices take only releases newer than they accepted."""
    try:
        return rollouts.rollback(who=who.name, reason=body.reason if body else None)
    except RolloutError as exc:
        raise _fail(exc) from None


@router.post("/api/models/{version}/promote")
def promote(version: str, who: Admin, rollouts: Rollouts, body: PromoteIn | None = None) -> dict[str, Any]:
    """Promote ``version``: refused (409) when worse on held-out labels unless ``force`` with a ``reason``."""
    body = body or PromoteIn()
    try:
        return rollouts.promote(version, force=body.force, reason=body.reason, who=who.name)
    except RolloutError as exc:
        raise _fail(exc) from None


@router.get("/api/rollout")
def rollout_state(_who: Operator, rollouts: Rollouts) -> dict[str, Any]:
    """The active model, the latest rollout (stage, canaries, halt reason), history and each bin's model."""
    return rollouts.status()


@router.get("/api/labels/quality")
def labels_quality(_who: Operator, state: State) -> dict[str, Any]:
    """Label agreement between labellers, each labeller's bias, and labels on gold (just-emptied) images."""
    with state.sessions() as s:
        return label_quality(s, state.config.forecast.min_drop)


@router.get("/api/drift")
def drift(_who: Operator, state: State, flagged: bool = False) -> list[dict[str, Any]]:
    """Bins whose stream changed (unusable share, fill distribution), flagged ones first."""
    report = drift_report(state.sessions, state.config.rollout, now_ms())
    return [d for d in report if d["flagged"]] if flagged else report


@router.get("/api/coverage")
def coverage(_who: Operator, state: State) -> list[dict[str, Any]]:
    """Online bins that need labels, most needed first, and why."""
    now = now_ms()
    drifted = {d["bin_id"] for d in drift_report(state.sessions, state.config.rollout, now) if d["flagged"]}
    return coverage_plan(state.sessions, state.config, now, drifted)


@router.post("/api/coverage", status_code=202)
def request_coverage(_who: Operator, state: State) -> list[dict[str, Any]]:
    """Send one round of ``send_image`` (reason ``coverage``) commands now."""
    if state.broker is None:
        raise HTTPException(503, "this process has no MQTT connection (API only)")
    return state.monitor.coverage()
