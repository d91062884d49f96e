"""``/api/bins``: where the bins are, how full, when full, and whether their cameras are online."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from binsight.server.api.schemas import (
    BinOut,
    ForecastOut,
    HistoryForecast,
    HistoryOut,
    ReadingOut,
    StopReportOut,
)
from binsight.server.auth import Principal, require
from binsight.server.classes import latest_classes
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Bin, Device, Reading
from binsight.server.forecast.collections import detect_collections
from binsight.server.health import device_health, missing_readings
from binsight.server.planning.publish import stop_history
from binsight.server.state import AppState, get_state

router = APIRouter(prefix="/api/bins", tags=["bins"])

Reader = Annotated[Principal, Depends(require("operator", "labeller"))]
State = Annotated[AppState, Depends(get_state)]


@router.get("", response_model=list[BinOut])
def list_bins(
    _who: Reader,
    state: State,
    site: str | None = None,
    min_fill: Annotated[float | None, Query(ge=0, le=1)] = None,
    offline: bool | None = None,
) -> list[BinOut]:
    """Every bin with its latest fill (raw and smoothed), forecast and camera health, filtered by site,
    smoothed fill (``min_fill``) or offline."""
    now = now_ms()
    out = []
    with state.sessions() as s:
        q = select(Bin, Device).outerjoin(Device, Device.bin_id == Bin.id).order_by(Bin.id)
        if site is not None:
            q = q.where(Bin.site == site)
        classes = latest_classes(s)
        for b, d in s.execute(q).all():
            cls = classes.get(b.id)
            health = device_health(d, now, state.config.health)
            if offline is not None and health.online == offline:
                continue
            shown = d.shown_fill if d is not None else None
            if min_fill is not None and (shown is None or shown < min_fill):
                continue
            fc = state.forecasts.get(s, d, now)
            out.append(
                BinOut(
                    id=b.id,
                    name=b.name,
                    address=b.address,
                    lat=b.lat,
                    lon=b.lon,
                    capacity_l=b.capacity_l,
                    site=b.site,
                    fill=d.fill if d else None,
                    fill_ts=d.fill_ts if d else None,
                    fill_smooth=d.fill_smooth if d else None,
                    quality=d.quality if d else None,
                    forecast=ForecastOut.model_validate(fc.to_api()) if fc is not None else None,
                    online=health.online,
                    offline_reason=health.reason,
                    last_seen=d.last_seen if d else None,
                    model=d.model if d else None,
                    outbox_depth=d.outbox_depth if d else None,
                    last_error=d.last_error if d else None,
                    registered=b.registered,
                    seq_gaps=missing_readings(d),
                    label=cls.label if cls else None,
                    label_prob=cls.prob if cls else None,
                    flag=cls.flag if cls else None,
                )
            )
    return out


@router.get("/{bin_id}/history", response_model=HistoryOut)
def history(
    bin_id: str, _who: Reader, state: State, days: Annotated[float, Query(gt=0, le=366)] = 7.0
) -> HistoryOut:
    """Readings of the last ``days`` (raw and smoothed fill), the collections found in them, the forecast
    curve, and what the drivers reported at the bin (done, blocked, overflowing)."""
    now = now_ms()
    since = now - int(days * 86_400_000)
    with state.sessions() as s:
        if s.get(Bin, bin_id) is None:
            raise HTTPException(404, f"no bin {bin_id!r}")
        rows = s.execute(
            select(
                Reading.ts,
                Reading.fill,
                Reading.quality,
                Reading.historical,
                Reading.label,
                Reading.label_prob,
                Reading.fill_smooth,
            )
            .where(Reading.bin_id == bin_id, Reading.ts >= since)
            .order_by(Reading.ts)
        ).all()
        fc = state.forecasts.get(s, s.get(Device, bin_id), now)
        reports = [StopReportOut.model_validate(r) for r in stop_history(s, bin_id=bin_id, since=since)]
    usable = [(r.ts, r.fill) for r in rows if r.fill is not None]
    fills = np.array([f for _, f in usable], dtype=np.float64)
    collections = [usable[i][0] for i in detect_collections(fills, state.config.forecast.min_drop)]
    forecast = None
    if fc is not None:
        forecast = HistoryForecast.model_validate(
            {
                "points": fc.points(),
                "full_ts": fc.full_ts,
                "low_ts": fc.low_ts,
                "high_ts": fc.high_ts,
                "rate_per_day": fc.rate_per_day,
            }
        )
    return HistoryOut(
        readings=[
            ReadingOut(
                ts=r.ts,
                fill=r.fill,
                quality=r.quality,
                historical=r.historical,
                label=r.label,
                label_prob=r.label_prob,
                fill_smooth=r.fill_smooth,
            )
            for r in rows
        ],
        collections=collections,
        forecast=forecast,
        threshold=state.config.forecast.threshold,
        stop_reports=reports,
    )
