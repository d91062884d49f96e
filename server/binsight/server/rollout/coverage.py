"""Coverage sampling: ask cameras for images where labels are few (bins, times of day, fill ranges).

Besides the images devices send on their own (every Nth capture, when unsure), the server sends
``send_image`` commands with ``reason = "coverage"`` to the bins whose labels are thinnest: drifted
bins first, then bins short of labels overall, in the current time of day (four 6-hour blocks, in the
forecast time zone) or in the fill range the bin is in now (quarters of 0..1).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import Command
from binsight.server.config import ServerConfig
from binsight.server.db.models import Device
from binsight.server.device_commands import CommandPublisher, new_command_id, send_device_command
from binsight.server.labels import counted_labels

__all__ = ["coverage_plan", "request_coverage"]

logger = logging.getLogger(__name__)


def _tod(ts_ms: int, zone: ZoneInfo) -> int:
    return dt.datetime.fromtimestamp(ts_ms / 1000, zone).hour // 6


def _fill_range(fill: float) -> int:
    return min(3, int(fill * 4))


def coverage_plan(
    sessions: sessionmaker[Session], config: ServerConfig, now: int, drifted: set[str]
) -> list[dict[str, Any]]:
    """Online bins that need labels, most needed first: ``{bin_id, score, reasons}``."""
    zone = ZoneInfo(config.forecast.timezone)
    target = config.rollout.coverage_target
    with sessions() as s:
        labelled = counted_labels(s, kind="fill")  # one per image: a corrected label replaces the first
        devices = s.execute(select(Device.bin_id, Device.available, Device.fill)).all()
    per_bin: Counter[str] = Counter()
    per_tod: Counter[tuple[str, int]] = Counter()
    per_range: Counter[tuple[str, int]] = Counter()
    for c in labelled:
        per_bin[c.bin_id] += 1
        per_tod[c.bin_id, _tod(c.ts, zone)] += 1
        per_range[c.bin_id, _fill_range(float(c.fill or 0.0))] += 1
    tod_now = _tod(now, zone)
    plan: list[dict[str, Any]] = []
    for bin_id, available, fill in devices:
        if available != "online":
            continue
        reasons: list[str] = []
        score = 0.0
        if bin_id in drifted:
            reasons.append("camera view drifted")
            score += 10.0
        if per_bin[bin_id] < target:
            reasons.append(f"{per_bin[bin_id]} labels (< {target})")
            score += 1.0 - per_bin[bin_id] / target
        if per_tod[bin_id, tod_now] < target / 4:
            reasons.append(f"{per_tod[bin_id, tod_now]} labels at this time of day")
            score += 0.5
        if fill is not None and per_range[bin_id, _fill_range(fill)] < target / 4:
            lo = _fill_range(fill) * 25
            reasons.append(f"{per_range[bin_id, _fill_range(fill)]} labels at fill {lo}-{lo + 25}%")
            score += 0.5
        if reasons:
            plan.append({"bin_id": bin_id, "score": round(score, 3), "reasons": reasons})
    plan.sort(key=lambda p: (-p["score"], p["bin_id"]))
    return plan


def request_coverage(
    sessions: sessionmaker[Session], publisher: CommandPublisher, plan: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Send ``send_image`` (reason ``coverage``) to the first ``limit`` bins of ``plan``; returns them."""
    sent: list[dict[str, Any]] = []
    for item in plan[:limit]:
        cmd = Command(id=new_command_id(), action="send_image", reason="coverage")
        try:
            send_device_command(
                sessions,
                publisher,
                item["bin_id"],
                cmd,
                created_by="coverage",
                detail="; ".join(item["reasons"]),
            )
        except ConnectionError as exc:
            logger.warning("coverage request to %s not sent: %s", item["bin_id"], exc)
            break
        sent.append({**item, "command": cmd.id})
    return sent
