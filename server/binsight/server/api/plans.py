"""``/api/plans``: plan routes in the background, read the latest, export it, publish it for drivers."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from binsight.server.api.schemas import PlanAccepted, PlanOut
from binsight.server.auth import Principal, require
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Plan
from binsight.server.planning.day_problem import PlanningError, PlanRequest, build_problem
from binsight.server.planning.edit import EditError, move_bin
from binsight.server.planning.exports import to_csv, to_geojson, to_gpx
from binsight.server.planning.publish import PublishError, idle_trucks, plan_day, publish, unpublish
from binsight.server.routing import Engine
from binsight.server.state import AppState, get_state

router = APIRouter(prefix="/api/plans", tags=["plans"])

Operator = Annotated[Principal, Depends(require("operator"))]
State = Annotated[AppState, Depends(get_state)]


def _out(p: Plan) -> PlanOut:
    return PlanOut(
        id=p.id,
        status=p.status,
        error=p.error,
        created_at=p.created_at,
        finished_at=p.finished_at,
        created_by=p.created_by,
        request=p.request,
        result=p.result,
        service_day=plan_day(p),
        published_at=p.published_at,
        published_by=p.published_by,
        idle_trucks=idle_trucks(p) if p.status == "done" else [],
    )


class PlanBody(PlanRequest):
    """``POST /api/plans`` body: the day's request, and the route engine to plan it with."""

    engine: Engine | None = Field(
        default=None, description="auto | pyvrp | ortools | portfolio (default: [fleet] engine)"
    )


@router.post("", status_code=202, response_model=PlanAccepted)
def create_plan(who: Operator, state: State, body: PlanBody | None = None) -> PlanAccepted:
    """Build the route problem from bins, forecasts and ``[fleet]``, and solve it in the background.

    The plan's ``result.engine`` names the engine whose plan was kept (for ``portfolio``, the
    winner; ``result.portfolio`` says how each engine fared).
    """
    req = body or PlanBody()
    with state.sessions() as s:
        try:
            problem, excluded = build_problem(s, state.config, req, state.forecasts, now_ms())
        except PlanningError as exc:
            raise HTTPException(409, str(exc)) from None
    limit = req.time_limit_s or state.config.fleet.plan_time_limit_s
    engine = req.engine or state.config.fleet.engine
    plan_id, _ = state.plans.submit(
        req.model_dump(mode="json"), problem, excluded, limit, who.name, engine=engine
    )
    return PlanAccepted(id=plan_id, status="running")


@router.get("", response_model=list[PlanOut])
def list_plans(_who: Operator, state: State, limit: int = 20) -> list[PlanOut]:
    """The latest plans, newest first."""
    with state.sessions() as s:
        rows = s.execute(
            select(Plan).order_by(Plan.created_at.desc()).limit(max(1, min(limit, 200)))
        ).scalars()
        return [_out(p) for p in rows]


@router.get("/latest", response_model=PlanOut)
def latest(_who: Operator, state: State) -> PlanOut:
    """The newest plan, whatever its status."""
    with state.sessions() as s:
        p = s.execute(select(Plan).order_by(Plan.created_at.desc()).limit(1)).scalar_one_or_none()
        if p is None:
            raise HTTPException(404, "no plan yet")
        return _out(p)


def _get(state: AppState, plan_id: str) -> Plan:
    with state.sessions() as s:
        p = s.get(Plan, plan_id)
    if p is None:
        raise HTTPException(404, f"no plan {plan_id!r}")
    return p


@router.get("/{plan_id}", response_model=PlanOut)
def get_plan(plan_id: str, _who: Operator, state: State) -> PlanOut:
    return _out(_get(state, plan_id))


@router.post("/{plan_id}/publish", response_model=PlanOut)
def publish_plan(plan_id: str, who: Operator, state: State) -> PlanOut:
    """Publish (lock) a finished plan for its day: drivers follow it; it replaces the day's earlier one."""
    with state.sessions() as s, s.begin():
        try:
            p = publish(s, plan_id, who.name)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except PublishError as exc:
            raise HTTPException(409, str(exc)) from None
        return _out(p)


class MoveBin(BaseModel):
    """``POST /api/plans/{id}/move``: put one bin on another truck's route."""

    model_config = ConfigDict(extra="forbid")
    bin_id: str = Field(min_length=1, max_length=64)
    truck: str = Field(min_length=1, max_length=64)
    allow_violations: bool = Field(
        default=False, description="save the edit even when it breaks capacity, shift or a window"
    )


@router.post(
    "/{plan_id}/move",
    status_code=201,
    response_model=PlanOut,
    responses={409: {"description": "locked, not finished, or the move breaks a limit (``breaches``)"}},
)
def move(plan_id: str, body: MoveBin, who: Operator, state: State) -> PlanOut | JSONResponse:
    """Move a bin to another truck: both routes re-timed and checked; the edit is saved as a new plan.

    A move that overfills the truck first gets one more trip to the tip, kept if that fits. 409 when
    the plan is published (locked: withdraw it first), is not finished, or the move still breaks a
    limit and ``allow_violations`` is not set: then ``breaches`` lists each (``truck``, ``limit``:
    capacity | shift_end | max_duration | window | break | unloading, ``over`` with its ``unit``,
    ``text``) and nothing is saved. With ``allow_violations`` the plan is saved with its ``breaches``.
    """
    with state.sessions() as s, s.begin():
        p = s.get(Plan, plan_id)
        if p is None:
            raise HTTPException(404, f"no plan {plan_id!r}")
        if p.published_at is not None:
            raise HTTPException(409, f"plan {plan_id} is published (locked): withdraw it before editing")
        if p.status != "done" or p.result is None or p.problem is None:
            raise HTTPException(409, f"plan {plan_id} is {p.status}, not done")
        try:
            result = move_bin(p.problem, p.result, body.bin_id, body.truck)
        except EditError as exc:
            raise HTTPException(409, str(exc)) from None
        if result["breaches"] and not body.allow_violations:
            # The dispatcher decides: the reason in words, each limit with how far over, to confirm.
            texts = "; ".join(b["text"] for b in result["breaches"])
            return JSONResponse(
                status_code=409,
                content={
                    "detail": f"moving {body.bin_id} to {body.truck} breaks: {texts}",
                    "breaches": result["breaches"],
                },
            )
        edited = Plan(
            id=uuid.uuid4().hex,
            status="done",
            created_at=now_ms(),
            finished_at=now_ms(),
            created_by=who.name,
            request={**p.request, "edit_of": p.id, "moved": {"bin_id": body.bin_id, "truck": body.truck}},
            problem=p.problem,
            result=result,
            service_day=plan_day(p),
        )
        s.add(edited)
        s.flush()
        return _out(edited)


@router.post("/{plan_id}/unpublish", response_model=PlanOut)
def unpublish_plan(plan_id: str, _who: Operator, state: State) -> PlanOut:
    """Withdraw a published plan: its drivers are told that no plan is published for the day."""
    with state.sessions() as s, s.begin():
        try:
            return _out(unpublish(s, plan_id))
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None


@router.get("/{plan_id}/problem")
def get_problem(plan_id: str, _who: Operator, state: State) -> Response:
    """The route problem JSON exactly as handed to the planner (``binsight route solve`` reads it)."""
    p = _get(state, plan_id)
    return Response(json.dumps(p.problem), media_type="application/json")


def _done(state: AppState, plan_id: str) -> Plan:
    p = _get(state, plan_id)
    if p.status != "done" or p.result is None:
        raise HTTPException(409, f"plan {plan_id} is {p.status}, not done")
    return p


def _attachment(body: str, media: str, name: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/{plan_id}/export.csv")
def export_csv(plan_id: str, _who: Operator, state: State) -> Response:
    p = _done(state, plan_id)
    assert p.result is not None
    return _attachment(to_csv(p.result), "text/csv", f"plan-{plan_id}.csv")


@router.get("/{plan_id}/export.geojson")
def export_geojson(plan_id: str, _who: Operator, state: State) -> Response:
    p = _done(state, plan_id)
    assert p.result is not None
    return _attachment(to_geojson(p.result), "application/geo+json", f"plan-{plan_id}.geojson")


@router.get("/{plan_id}/export.gpx")
def export_gpx(plan_id: str, _who: Operator, state: State) -> Response:
    p = _done(state, plan_id)
    assert p.result is not None
    return _attachment(
        to_gpx(p.result, f"binsight plan {plan_id}"), "application/gpx+xml", f"plan-{plan_id}.gpx"
    )
