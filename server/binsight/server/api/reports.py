"""``/api/reports``: the manager's savings report from the server's own history (JSON or CSV)."""

from __future__ import annotations

import datetime as dt
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from binsight.server.auth import Principal, require
from binsight.server.db.engine import now_ms
from binsight.server.planning.savings import savings, to_csv
from binsight.server.state import AppState, get_state

router = APIRouter(prefix="/api/reports", tags=["reports"])

Operator = Annotated[Principal, Depends(require("operator"))]
State = Annotated[AppState, Depends(get_state)]
#: A report covers at most this many days (readings of every bin are read into memory).
MAX_DAYS = 92


@router.get("/savings", response_model=None)
def savings_report(
    _who: Operator,
    state: State,
    start: Annotated[
        dt.date | None, Query(alias="from", description="first day (default: 14 days ago)")
    ] = None,
    end: Annotated[
        dt.date | None, Query(alias="to", description="last day, included (default: today)")
    ] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> dict[str, Any] | Response:
    """Lifts, fill at lift, overflows and km planned over the days asked, and what ``fixed`` would need."""
    tz = ZoneInfo(state.config.forecast.timezone)
    today = datetime.fromtimestamp(now_ms() / 1000, tz).date()
    last = end or today
    first = start or last - timedelta(days=13)
    if first > last:
        raise HTTPException(422, f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise HTTPException(422, f"at most {MAX_DAYS} days per report; ask for a shorter period")
    after = last + timedelta(days=1)
    start_ms = int(datetime.combine(first, time(), tz).timestamp() * 1000)
    end_ms = int(datetime.combine(after, time(), tz).timestamp() * 1000)
    with state.sessions() as s:
        report = savings(
            s,
            start=first,
            end=after,
            start_ms=start_ms,
            end_ms=end_ms,
            min_drop=state.config.forecast.min_drop,
            cfg=state.config,
        )
    if format == "csv":
        name = f"savings-{first.isoformat()}-{last.isoformat()}.csv"
        return Response(
            to_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    out = report.to_api()
    out["end"] = last.isoformat()  # the last day included, as asked
    return out
