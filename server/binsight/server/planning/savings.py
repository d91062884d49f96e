"""The manager's savings report: what the server's own history says about collections and plans.

Everything comes from stored data over ``[start, end)``: lifts are the collections found in each bin's
readings (the same :func:`~binsight.server.forecast.collections.detect_collections` the forecasts use),
the fill at a lift is the last reading before the drop, overflows are readings at
:data:`OVERFLOW_SEEN` or more (a camera sees at most a full bin), kilometres are the routes of each
service day's published plan (the one the drivers followed; the last finished plan of a day that
published none), and the drivers' stop reports (done, blocked, overflowing) are counted as reported.

The comparison is the ``fixed`` policy of the twin (``binsight twin``) replayed on the measured fill:
each bin lifted every :func:`fixed_interval_days` days from its measured rate, so at about
:data:`FIXED_TARGET` on average. The twin's ``fixed`` policy uses this very function. With the server's
config, that schedule is also routed day by day on the server's fleet (:mod:`.fixed_replay`), so the
km it would have needed stand beside the km planned.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.server.config import ServerConfig
from binsight.server.db.models import Bin, Plan, Reading, StopUpdate
from binsight.server.forecast.collections import detect_collections

__all__ = ["FIXED_TARGET", "OVERFLOW_SEEN", "SavingsReport", "fixed_interval_days", "savings", "to_csv"]

#: ``fixed`` picks each bin's interval so that it is lifted at this level on average.
FIXED_TARGET = 0.8
#: A reading at this fill or more counts as an overflow seen (the camera cannot see past full).
OVERFLOW_SEEN = 0.95
#: A gap between readings longer than this does not count towards hours at overflow.
_MAX_GAP_MS = 6 * 3_600_000
_DAY_MS = 86_400_000


def fixed_interval_days(mean_rate: NDArray[np.float64]) -> NDArray[np.int64]:
    """The hauler's interval per bin: whole days until it holds about :data:`FIXED_TARGET` on average."""
    out: NDArray[np.int64] = np.maximum(1, np.floor(FIXED_TARGET / np.maximum(mean_rate, 1e-6))).astype(
        np.int64
    )
    return out


@dataclass
class BinFigures:
    """One bin over the period: its lifts, overflows and measured filling rate."""

    lifts: int = 0
    fills_at_lift: list[float] = field(default_factory=list)
    overflow_events: int = 0
    overflow_hours: float = 0.0
    rise: float = 0.0  # fill gained between collections
    rise_days: float = 0.0  # over this many days
    span_days: float = 0.0  # first to last reading in the period
    first_ts: int = 0
    last_ts: int = 0
    first_fill: float = 0.0

    @property
    def rate(self) -> float | None:
        return self.rise / self.rise_days if self.rise_days >= 0.5 else None


@dataclass
class SavingsReport:
    """The report's figures (``to_api`` gives the JSON)."""

    start: date
    end: date
    bins: int
    lifts: int
    mean_fill_at_lift: float | None
    lifts_under_50: int
    overflow_events: int
    overflow_hours: float
    km_by_day: dict[str, float]
    #: The drivers' stop reports in the period, by status (done, blocked, overflowing).
    driver_reports: dict[str, int]
    fixed_lifts: int | None
    fixed_mean_fill_at_lift: float | None
    fixed_bins: int
    #: Km the fixed schedule needs per service day, routed on the fleet (None: not replayed).
    fixed_km_by_day: dict[str, float] | None = None

    def fixed_km_on_planned_days(self) -> float | None:
        """The fixed schedule's km on the days in :attr:`km_by_day` (0 for a day it drives no truck)."""
        if self.fixed_km_by_day is None:
            return None
        return round(sum(self.fixed_km_by_day.get(d, 0.0) for d in self.km_by_day), 1)

    def to_api(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        out["km_planned"] = round(sum(self.km_by_day.values()), 1)
        out["fixed_km"] = (
            None if self.fixed_km_by_day is None else round(sum(self.fixed_km_by_day.values()), 1)
        )
        # The like-for-like figure: the fixed schedule's km on the service days that have a plan.
        out["fixed_km_on_planned_days"] = self.fixed_km_on_planned_days()
        out["summary"] = summary(self)
        return out


def _bin_figures(ts: NDArray[np.int64], fill: NDArray[np.float64], min_drop: float) -> BinFigures:
    fig = BinFigures(
        span_days=float(ts[-1] - ts[0]) / _DAY_MS,
        first_ts=int(ts[0]),
        last_ts=int(ts[-1]),
        first_fill=float(fill[0]),
    )
    cuts = detect_collections(fill, min_drop)
    fig.lifts = len(cuts)
    fig.fills_at_lift = [float(fill[c - 1]) for c in cuts]
    over = fill >= OVERFLOW_SEEN
    fig.overflow_events = int(over[0]) + int(np.sum(over[1:] & ~over[:-1]))
    gaps = np.diff(ts)
    both = over[1:] & over[:-1] & (gaps <= _MAX_GAP_MS)
    fig.overflow_hours = float(gaps[both].sum()) / 3_600_000
    for seg in np.split(np.arange(len(fill)), cuts):
        if len(seg) < 4:
            continue
        head, tail = fill[seg[:3]], fill[seg[-3:]]
        fig.rise += max(0.0, float(np.median(tail) - np.median(head)))
        fig.rise_days += float(ts[seg[-2]] - ts[seg[1]]) / _DAY_MS
    return fig


def _km_by_day(session: Session, start: date, end: date) -> dict[str, float]:
    """Kilometres of each service day's plan in ``[start, end)``: the published one (what the drivers
    followed), else the last finished one."""
    rows = session.execute(
        select(Plan.problem, Plan.result, Plan.published_at)
        .where(Plan.status == "done")
        .order_by(Plan.created_at)
    ).all()
    out: dict[str, float] = {}
    published: set[str] = set()
    for problem, result, published_at in rows:
        name = (problem or {}).get("name", "")
        try:
            day = date.fromisoformat(name)
        except ValueError:
            continue
        if not (start <= day < end and result) or (name in published and published_at is None):
            continue
        out[name] = round(sum(float(r.get("distance_km", 0.0)) for r in result.get("routes", [])), 2)
        if published_at is not None:
            published.add(name)
    return dict(sorted(out.items()))


def _driver_reports(session: Session, start_ms: int, end_ms: int) -> dict[str, int]:
    """Stop reports per status in ``[start_ms, end_ms)``; a stop reported twice counts by its last report."""
    rows = session.execute(
        select(StopUpdate.plan_id, StopUpdate.truck, StopUpdate.bin_id, StopUpdate.status)
        .where(StopUpdate.ts >= start_ms, StopUpdate.ts < end_ms)
        .order_by(StopUpdate.ts, StopUpdate.id)
    ).all()
    last = {(plan, truck, bin_id): status for plan, truck, bin_id, status in rows}
    out = dict.fromkeys(("done", "blocked", "overflowing"), 0)
    for status in last.values():
        out[status] = out.get(status, 0) + 1
    return out


def savings(
    session: Session,
    *,
    start: date,
    end: date,
    start_ms: int,
    end_ms: int,
    min_drop: float,
    cfg: ServerConfig | None = None,
) -> SavingsReport:
    """The report for ``[start, end)`` (``start_ms``/``end_ms``: the same bounds as epoch ms).

    With ``cfg``, the fixed schedule is routed on its ``[fleet]`` for the km it would have needed.
    """
    series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    # Filtered on non-null fill by the query.
    rows = session.execute(
        select(Reading.bin_id, Reading.ts, Reading.fill)
        .where(Reading.ts >= start_ms, Reading.ts < end_ms, Reading.fill.is_not(None))
        .order_by(Reading.bin_id, Reading.ts)
    )
    for bin_id, ts, fill in rows:
        series[bin_id][0].append(ts)
        series[bin_id][1].append(float(fill or 0.0))
    by_bin = {
        b: _bin_figures(np.asarray(t, dtype=np.int64), np.asarray(f, dtype=np.float64), min_drop)
        for b, (t, f) in series.items()
    }
    figs = list(by_bin.values())
    fills = [x for f in figs for x in f.fills_at_lift]
    measured = [f for f in figs if f.rate is not None]
    rates = np.array([f.rate for f in measured], dtype=np.float64)
    fixed_lifts = fixed_fill = None
    if len(rates):
        # Over the days each bin was observed, as the lifts seen are counted there.
        k = fixed_interval_days(rates)
        fixed_lifts = round(float(np.sum(np.array([f.span_days for f in measured]) / k)))
        fixed_fill = round(float(np.mean(np.minimum(1.0, rates * k))), 3)
    return SavingsReport(
        start=start,
        end=end,
        bins=len(figs),
        lifts=len(fills),
        mean_fill_at_lift=round(float(np.mean(fills)), 3) if fills else None,
        lifts_under_50=sum(1 for x in fills if x < 0.5),
        overflow_events=sum(f.overflow_events for f in figs),
        overflow_hours=round(sum(f.overflow_hours for f in figs), 1),
        km_by_day=_km_by_day(session, start, end),
        driver_reports=_driver_reports(session, start_ms, end_ms),
        fixed_lifts=fixed_lifts,
        fixed_mean_fill_at_lift=fixed_fill,
        fixed_bins=len(rates),
        fixed_km_by_day=None if cfg is None else _fixed_km(session, cfg, by_bin, start, end),
    )


def _fixed_km(
    session: Session, cfg: ServerConfig, by_bin: dict[str, BinFigures], start: date, end: date
) -> dict[str, float] | None:
    """The fixed schedule's km per service day, for the bins with a measured rate and a position."""
    from binsight.server.planning.fixed_replay import ReplayBin, fixed_km_by_day

    rows = session.execute(select(Bin).where(Bin.id.in_(list(by_bin)))).scalars()
    bins = []
    for b in rows:
        fig = by_bin[b.id]
        if fig.rate is None or b.lat is None or b.lon is None or not b.capacity_l:
            continue
        bins.append(
            ReplayBin(
                id=b.id,
                lat=b.lat,
                lon=b.lon,
                capacity_l=b.capacity_l,
                service_min=b.service_min if b.service_min is not None else cfg.fleet.default_service_min,
                rate=fig.rate,
                interval_days=int(fixed_interval_days(np.array([fig.rate]))[0]),
                first_ts=fig.first_ts,
                last_ts=fig.last_ts,
                first_fill=fig.first_fill,
            )
        )
    return fixed_km_by_day(cfg, sorted(bins, key=lambda x: x.id), start, end)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{round(x * 100)}%"


def summary(r: SavingsReport) -> list[str]:
    """The report in plain sentences, for the page and the CSV's readers."""
    lines = [
        f"{r.lifts} lifts seen in {r.bins} bins' readings, at {_pct(r.mean_fill_at_lift)} full on average; "
        f"{r.lifts_under_50} of them under half full.",
        f"Bins were seen full to the brim ({round(OVERFLOW_SEEN * 100)}% or more) "
        f"{r.overflow_events} time(s), for {r.overflow_hours:g} bin-hours in all.",
        f"{sum(r.km_by_day.values()):.0f} km planned over {len(r.km_by_day)} service day(s).",
    ]
    d = r.driver_reports
    if any(d.values()):
        lines.append(
            f"Drivers reported {d.get('done', 0)} stop(s) done, {d.get('blocked', 0)} blocked "
            f"(not lifted) and {d.get('overflowing', 0)} overflowing."
        )
    same_days = r.fixed_km_on_planned_days()
    if r.fixed_km_by_day is not None and same_days is not None:
        lines.append(
            f"The fixed schedule, routed on the same trucks, would have needed {same_days:.0f} km on "
            f"those {len(r.km_by_day)} day(s) ({sum(r.fixed_km_by_day.values()):.0f} km over all "
            f"{len(r.fixed_km_by_day)} of its service day(s) in the period)."
        )
    if r.fixed_lifts is not None:
        diff = r.fixed_lifts - r.lifts
        word = "more" if diff > 0 else "fewer"
        lines.append(
            f"A fixed schedule lifting each of {r.fixed_bins} bins every few days (at about "
            f"{round(FIXED_TARGET * 100)}% on average, from its measured filling) would have needed "
            f"{r.fixed_lifts} lift(s) over the days each was observed: {abs(diff)} {word} than were made."
        )
    else:
        lines.append("Too little history to replay a fixed schedule (a bin needs a day of rising readings).")
    return lines


def to_csv(r: SavingsReport) -> str:
    """The report as CSV: one ``figure,value`` row per figure, then one row per service day's km."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["figure", "value"])
    api = r.to_api()
    for key in (
        "start",
        "end",
        "bins",
        "lifts",
        "mean_fill_at_lift",
        "lifts_under_50",
        "overflow_events",
        "overflow_hours",
        "km_planned",
        "fixed_km",
        "fixed_km_on_planned_days",
        "fixed_lifts",
        "fixed_mean_fill_at_lift",
    ):
        value = api[key]
        w.writerow([key, "" if value is None or (isinstance(value, float) and math.isnan(value)) else value])
    for status, n in r.driver_reports.items():
        w.writerow([f"driver_reports {status}", n])
    for day, km in r.km_by_day.items():
        w.writerow([f"km {day}", km])
    for day, km in (r.fixed_km_by_day or {}).items():
        w.writerow([f"fixed km {day}", km])
    return buf.getvalue()
