"""Published plans: the one plan per service day that drivers follow, and what they report per stop.

Planning runs whenever a dispatcher (or the demo, every minute) asks, so "the latest plan" changes
under a driver's feet. A dispatcher therefore *publishes* one finished plan for its day: drivers see
only that plan, it no longer changes (edits are refused), and a newer published plan for the same
day replaces it for everyone at once. A driver's stop reports (done, blocked, overflowing) are kept
per plan, truck and bin with time and who, so the bins' history and later reports can use them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.errors import BinsightError
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Bin, Plan, StopUpdate

__all__ = [
    "STOP_STATUSES",
    "Manifest",
    "PublishError",
    "StopStatus",
    "idle_trucks",
    "manifest",
    "plan_day",
    "publish",
    "published_plan",
    "record_stop",
    "stop_history",
    "unpublish",
]

StopStatus = Literal["done", "blocked", "overflowing"]
STOP_STATUSES: tuple[StopStatus, ...] = ("done", "blocked", "overflowing")


class PublishError(BinsightError):
    """A plan cannot be published, or a stop report does not fit the published plan."""


def plan_day(plan: Plan) -> str | None:
    """The day ``plan`` is for: its column, or (plans made before it existed) its problem's name."""
    if plan.service_day:
        return plan.service_day
    name = (plan.problem or {}).get("name")
    return name if isinstance(name, str) and len(name) == 10 else None


def idle_trucks(plan: Plan) -> list[str]:
    """Trucks the plan could use but sends nowhere (no bin stop): the dispatcher sees them at once."""
    trucks = [str(t.get("id")) for t in (plan.problem or {}).get("trucks", [])]
    used = {
        str(r.get("truck"))
        for r in (plan.result or {}).get("routes", [])
        if any(s.get("kind") == "bin" for s in r.get("stops", []))
    }
    return [t for t in trucks if t not in used]


def publish(session: Session, plan_id: str, who: str) -> Plan:
    """Publish (lock) a finished plan for its day; it replaces the day's earlier published plan."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id!r}")
    if plan.status != "done" or plan.result is None:
        raise PublishError(f"plan {plan_id} is {plan.status}: only a finished plan can be published")
    day = plan_day(plan)
    if day is None:
        raise PublishError(f"plan {plan_id} names no service day")
    plan.service_day = day
    for other in _published_rows(session, day):
        if other.id != plan.id:
            other.published_at = None
            other.published_by = None
    if plan.published_at is None:
        plan.published_at = now_ms()
        plan.published_by = who
    return plan


def unpublish(session: Session, plan_id: str) -> Plan:
    """Withdraw a published plan: its day then has none, and drivers are told so."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise LookupError(f"no plan {plan_id!r}")
    plan.published_at = None
    plan.published_by = None
    return plan


def _published_rows(session: Session, day: str) -> list[Plan]:
    return list(
        session.execute(select(Plan).where(Plan.service_day == day, Plan.published_at.is_not(None))).scalars()
    )


def published_plan(session: Session, day: str | None, timezone: str) -> Plan | None:
    """The published plan for ``day``; without a day, the first published day from today on."""
    query = select(Plan).where(Plan.published_at.is_not(None))
    if day is not None:
        query = query.where(Plan.service_day == day)
    else:
        today = dt.datetime.now(ZoneInfo(timezone)).date().isoformat()
        query = query.where(Plan.service_day >= today).order_by(Plan.service_day)
    return session.execute(query.order_by(Plan.published_at.desc()).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class Manifest:
    """One truck's stops in a published plan, with names, navigation links and what was reported."""

    plan: Plan
    truck: str
    route: dict[str, Any] | None
    message: str | None

    def to_dict(self, session: Session) -> dict[str, Any]:
        stops = _named_stops(session, self.route) if self.route else []
        reports = _latest_reports(session, self.plan.id, self.truck)
        for stop in stops:
            if stop["kind"] == "bin":
                stop["report"] = reports.get(stop["id"])
        return {
            "plan_id": self.plan.id,
            "service_day": plan_day(self.plan),
            "published_at": self.plan.published_at,
            "published_by": self.plan.published_by,
            "truck": self.truck,
            "trucks": [str(t.get("id")) for t in (self.plan.problem or {}).get("trucks", [])],
            "message": self.message,
            "route": None if self.route is None else {**self.route, "stops": stops},
        }


def manifest(plan: Plan, truck: str) -> Manifest:
    """``truck``'s route in ``plan``, or None with the reason it has none (never another truck's)."""
    day = plan_day(plan)
    planned = [str(t.get("id")) for t in (plan.problem or {}).get("trucks", [])]
    for route in (plan.result or {}).get("routes", []):
        if route.get("truck") == truck and any(s.get("kind") == "bin" for s in route.get("stops", [])):
            return Manifest(plan, truck, route, None)
    if truck not in planned:
        why = f"{truck} is not in the published plan for {day} (its trucks: {', '.join(planned) or 'none'})"
    else:
        why = f"{truck} has no route in the published plan for {day}: it stays at the depot"
    return Manifest(plan, truck, None, why)


def _geo(lat: Any, lon: Any, label: str) -> str | None:
    """A ``geo:`` URI (RFC 5870) that phones open in their navigation app, with a label for the pin."""
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    from urllib.parse import quote

    return f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({quote(label)})"


def _named_stops(session: Session, route: dict[str, Any]) -> list[dict[str, Any]]:
    ids = [s["id"] for s in route.get("stops", []) if s.get("kind") == "bin"]
    bins = {b.id: b for b in session.execute(select(Bin).where(Bin.id.in_(ids))).scalars()} if ids else {}
    out = []
    for s in route.get("stops", []):
        stop = dict(s)
        b = bins.get(stop.get("id", "")) if stop.get("kind") == "bin" else None
        stop["name"] = (b.name if b else None) or None
        stop["address"] = (b.address if b else None) or None
        stop["site"] = b.site if b else None
        # The navigation app's pin says where and what: "Oudegracht 112, Utrecht (Demo bin 3)".
        what = stop["name"] or str(stop.get("id", stop.get("kind", "")))
        label = f"{stop['address']} ({what})" if stop["address"] else what
        stop["navigate"] = _geo(stop.get("lat"), stop.get("lon"), label)
        out.append(stop)
    return out


def _report_dict(u: StopUpdate) -> dict[str, Any]:
    return {
        "status": u.status,
        "note": u.note,
        "ts": u.ts,
        "by": u.by,
        "truck": u.truck,
        "plan_id": u.plan_id,
    }


def _latest_reports(session: Session, plan_id: str, truck: str) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        select(StopUpdate)
        .where(StopUpdate.plan_id == plan_id, StopUpdate.truck == truck)
        .order_by(StopUpdate.ts, StopUpdate.id)
    ).scalars()
    return {u.bin_id: _report_dict(u) for u in rows}


#: How old a report made on the phone (``made_at``) may be when it arrives: a day of no connection.
MADE_AT_MAX_AGE_MS = 86_400_000


def record_stop(
    session: Session,
    plan: Plan,
    truck: str,
    bin_id: str,
    *,
    status: str,
    note: str | None,
    who: str,
    made_at: int | None = None,
) -> dict[str, Any]:
    """Store a driver's report on one stop of ``truck``'s route in the published ``plan``.

    ``made_at``: when the phone made it (a report that waited for a connection); its time is kept when
    it lies in the last :data:`MADE_AT_MAX_AGE_MS` and not after now, else the time of arrival.
    """
    if status not in STOP_STATUSES:
        raise PublishError(f"unknown stop status {status!r}: one of {', '.join(STOP_STATUSES)}")
    m = manifest(plan, truck)
    if m.route is None:
        raise PublishError(m.message or f"{truck} has no route")
    if not any(s.get("kind") == "bin" and s.get("id") == bin_id for s in m.route.get("stops", [])):
        day = plan_day(plan)
        raise PublishError(f"bin {bin_id!r} is not a stop of {truck} in the published plan for {day}")
    now = now_ms()
    ts = made_at if made_at is not None and now - MADE_AT_MAX_AGE_MS <= made_at <= now else now
    u = StopUpdate(
        plan_id=plan.id, truck=truck, bin_id=bin_id, status=status, note=note or None, ts=ts, by=who
    )
    session.add(u)
    session.flush()
    return _report_dict(u) | {"bin_id": bin_id, "id": u.id}


def stop_history(
    session: Session, *, bin_id: str | None = None, plan_id: str | None = None, since: int | None = None
) -> list[dict[str, Any]]:
    """Stop reports, oldest first, filtered by bin, plan and time (for the bins' history and reports)."""
    query = select(StopUpdate).order_by(StopUpdate.ts, StopUpdate.id)
    if bin_id is not None:
        query = query.where(StopUpdate.bin_id == bin_id)
    if plan_id is not None:
        query = query.where(StopUpdate.plan_id == plan_id)
    if since is not None:
        query = query.where(StopUpdate.ts >= since)
    return [_report_dict(u) | {"bin_id": u.bin_id, "id": u.id} for u in session.execute(query).scalars()]
