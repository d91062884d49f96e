"""``/healthz``, ``/metrics``, ``/api/me`` and ``/api/ingest``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy import func, select, text

from binsight.server.api.schemas import IngestOut, Me
from binsight.server.auth import Principal, authenticate, require
from binsight.server.db.models import Device, IngestReject
from binsight.server.health import missing_readings
from binsight.server.metrics import CONTENT_TYPE, render_metrics
from binsight.server.state import AppState, get_state
from binsight.version import __version__

router = APIRouter()

State = Annotated[AppState, Depends(get_state)]


@router.get("/healthz", tags=["meta"])
def healthz(state: State, response: Response) -> dict[str, object]:
    """Liveness: the database answers; ``mqtt`` says whether ingest is connected (null: API only).

    ``status`` is ``degraded`` (HTTP 503, with the reason in ``ingest``) while the ingest writer has
    failed :data:`~binsight.server.ingest.writer.DEGRADED_AFTER` times in a row at one batch: the
    API answers, but nothing reaches the database.
    """
    with state.sessions() as s:
        s.execute(text("SELECT 1"))
    mqtt = None if state.ingest is None else state.ingest.broker.connected.is_set()
    problem = None if state.ingest is None else state.ingest.writer.degraded
    if problem is not None:
        response.status_code = 503
        return {"status": "degraded", "version": __version__, "mqtt": mqtt, "ingest": problem}
    return {"status": "ok", "version": __version__, "mqtt": mqtt}


@router.get("/metrics", tags=["meta"], response_class=Response)
def metrics(state: State) -> Response:
    return Response(render_metrics(state), media_type=CONTENT_TYPE)


@router.get("/api/me", response_model=Me, tags=["meta"])
def me(who: Annotated[Principal, Depends(authenticate)]) -> Me:
    return Me(name=who.name, role=who.role, truck=who.truck)


@router.get("/api/ingest", response_model=IngestOut, tags=["meta"])
def ingest(_who: Annotated[Principal, Depends(require("operator"))], state: State) -> IngestOut:
    """Rejected messages by reason (all servers, since install), missing readings and readings stored."""
    with state.sessions() as s:
        rejects = {r.reason: r.count for r in s.execute(select(IngestReject)).scalars()}
        devices = list(s.execute(select(Device)).scalars())
        total = s.execute(select(func.coalesce(func.sum(Device.seq_count), 0))).scalar_one()
    return IngestOut(rejects=rejects, seq_gaps=sum(missing_readings(d) for d in devices), readings=int(total))
