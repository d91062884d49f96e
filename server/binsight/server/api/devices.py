"""``/api/devices``: camera health, seq gaps, events, and commands sent over MQTT."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import ValidationError
from sqlalchemy import select

from binsight.protocol import MAX_INTERVAL_S, MIN_INTERVAL_S, Command
from binsight.server.api.schemas import CommandAccepted, CommandIn, DeviceOut, EventOut
from binsight.server.auth import Principal, require
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Device, DeviceEvent
from binsight.server.device_commands import new_command_id, send_device_command
from binsight.server.health import device_health, missing_readings
from binsight.server.state import AppState, get_state

router = APIRouter(prefix="/api/devices", tags=["devices"])

Operator = Annotated[Principal, Depends(require("operator"))]
State = Annotated[AppState, Depends(get_state)]


@router.get("", response_model=list[DeviceOut])
def list_devices(_who: Operator, state: State) -> list[DeviceOut]:
    """Every device the server has heard from, online or offline with the reason."""
    now = now_ms()
    with state.sessions() as s:
        devices = list(s.execute(select(Device).order_by(Device.bin_id)).scalars())
    out = []
    for d in devices:
        h = device_health(d, now, state.config.health)
        out.append(
            DeviceOut(
                bin_id=d.bin_id,
                online=h.online,
                reason=h.reason,
                last_seen=d.last_seen,
                model=d.model,
                outbox_depth=d.outbox_depth,
                dropped=d.dropped,
                last_error=d.last_error,
                uptime_s=d.uptime_s,
                last_infer_ms=d.last_infer_ms,
                seq_gaps=missing_readings(d),
                interval_s=d.interval_s,
                camera_ok=d.camera_ok,
                readings=d.seq_count,
            )
        )
    return out


@router.get("/{bin_id}/events", response_model=list[EventOut])
def events(
    bin_id: str, _who: Operator, state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[EventOut]:
    """The device's latest events (availability changes, command results, model updates), newest first."""
    with state.sessions() as s:
        rows = s.execute(
            select(DeviceEvent)
            .where(DeviceEvent.bin_id == bin_id)
            .order_by(DeviceEvent.ts.desc(), DeviceEvent.id.desc())
            .limit(limit)
        ).scalars()
        return [EventOut.model_validate(r, from_attributes=True) for r in rows]


def _first_problem(exc: ValidationError) -> str:
    """The first field the protocol refused and why; for ``interval_s``, the range it takes."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(command)"
    if where == "interval_s":
        return f"{where}: {first['msg']} (set_interval takes {MIN_INTERVAL_S:g} .. {MAX_INTERVAL_S:g} s)"
    return f"{where}: {first['msg']}"


@router.post("/{bin_id}/commands", status_code=202, response_model=CommandAccepted)
def send_command(bin_id: str, body: CommandIn, who: Operator, state: State) -> CommandAccepted:
    """Send ``capture``, ``send_image``, ``set_interval`` (with ``interval_s``) or ``send_stats``."""
    try:
        cmd = Command(id=new_command_id(), action=body.action, interval_s=body.interval_s)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise HTTPException(422, f"bad command: {_first_problem(exc)}") from None
    if cmd.action == "set_interval" and cmd.interval_s is None:
        raise HTTPException(422, "set_interval needs interval_s")
    with state.sessions() as s:
        if s.get(Device, bin_id) is None:
            raise HTTPException(404, f"no device {bin_id!r} has been seen")
    if state.broker is None:
        raise HTTPException(503, "this process has no MQTT connection (API only)")
    try:
        send_device_command(state.sessions, state.broker, bin_id, cmd, created_by=who.name)
    except ConnectionError as exc:
        raise HTTPException(503, f"command not sent: {exc}") from None
    return CommandAccepted(id=cmd.id)
