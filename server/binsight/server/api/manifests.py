"""``/api/manifests``: the published plan's routes for drivers, and their reports per stop.

Drivers (role ``driver``) reach only these routes and ``/api/me``; a driver's token names its
truck and opens no other truck's manifest. Operators see every truck's and read the reports.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from binsight.server.auth import Principal, require
from binsight.server.db.models import Plan
from binsight.server.planning.publish import (
    PublishError,
    StopStatus,
    idle_trucks,
    manifest,
    plan_day,
    published_plan,
    record_stop,
    stop_history,
)
from binsight.server.state import AppState, get_state

router = APIRouter(tags=["manifests"])

Reader = Annotated[Principal, Depends(require("driver", "operator"))]
Operator = Annotated[Principal, Depends(require("operator"))]
State = Annotated[AppState, Depends(get_state)]


class StopReport(BaseModel):
    """``POST /api/manifests/{truck}/stops/{bin_id}``: what the driver found at the stop."""

    model_config = ConfigDict(extra="forbid")
    status: StopStatus
    note: str | None = Field(default=None, max_length=500)
    made_at: int | None = Field(
        default=None,
        ge=0,
        description="epoch ms the phone made the report, when it waited for a connection (last 24 h)",
    )


def _own_truck(who: Principal, truck: str) -> None:
    if who.role == "driver" and who.truck != truck:
        raise HTTPException(403, f"this driver token is for {who.truck}, not {truck}")


def _published(state: AppState, s: Any, day: str | None) -> Plan:
    plan = published_plan(s, day, state.config.forecast.timezone)
    if plan is None:
        when = f"for {day}" if day else "for today or later"
        raise HTTPException(404, f"no plan is published {when}: the dispatcher publishes the day's plan")
    return plan


@router.get("/api/manifests")
def published_summary(who: Reader, state: State, date: str | None = None) -> dict[str, Any]:
    """Which plan is published for ``date`` (default: the first published day from today) and its trucks."""
    with state.sessions() as s:
        plan = _published(state, s, date)
        return {
            "plan_id": plan.id,
            "service_day": plan_day(plan),
            "published_at": plan.published_at,
            "published_by": plan.published_by,
            "trucks": [str(t.get("id")) for t in (plan.problem or {}).get("trucks", [])],
            "idle_trucks": idle_trucks(plan),
        }


@router.get("/api/manifests/{truck}")
def get_manifest(truck: str, who: Reader, state: State, date: str | None = None) -> dict[str, Any]:
    """``truck``'s stops in the published plan for ``date`` (default: the first published day from today).

    A truck the plan sends nowhere gets ``route: null`` and a ``message`` saying so, never another
    truck's route.
    """
    _own_truck(who, truck)
    with state.sessions() as s:
        plan = _published(state, s, date)
        return manifest(plan, truck).to_dict(s)


@router.post("/api/manifests/{truck}/stops/{bin_id}", status_code=201)
def report_stop(
    truck: str, bin_id: str, body: StopReport, *, who: Reader, state: State, date: str | None = None
) -> dict[str, Any]:
    """Report a stop of the published plan done, blocked or overflowing (stored with time and who)."""
    _own_truck(who, truck)
    with state.sessions() as s, s.begin():
        plan = _published(state, s, date)
        try:
            return record_stop(
                s, plan, truck, bin_id, status=body.status, note=body.note, who=who.name, made_at=body.made_at
            )
        except PublishError as exc:
            raise HTTPException(409, str(exc)) from None


@router.get("/api/stop-reports")
def list_stop_reports(
    _who: Operator,
    state: State,
    bin_id: str | None = None,
    plan_id: str | None = None,
    since: int | None = None,
) -> list[dict[str, Any]]:
    """Drivers' stop reports, oldest first: ``{id, plan_id, truck, bin_id, status, note, ts, by}``."""
    with state.sessions() as s:
        return stop_history(s, bin_id=bin_id, plan_id=plan_id, since=since)
