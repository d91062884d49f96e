"""Drift watch: bins whose camera view changed (moved camera, new container) get labels first.

Per bin, a recent window of readings is compared with the baseline window before it: the share of
unusable frames (the quality gate's verdicts) and the distribution of predicted fills (two-sample
Kolmogorov-Smirnov statistic). Devices do not report feature statistics (``Stats`` has none), so
those are not watched. A bin is flagged when either moved more than ``[rollout]`` allows.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import RolloutConfig
from binsight.server.db.models import Reading

__all__ = ["drift_report", "ks_statistic"]


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _window(rows: list[tuple[float | None, str]]) -> dict[str, Any]:
    fills = [f for f, q in rows if q == "ok" and f is not None]
    unusable = sum(1 for _, q in rows if q != "ok")
    return {
        "n": len(rows),
        "unusable": round(unusable / len(rows), 4) if rows else None,
        "fill_mean": round(float(np.mean(fills)), 4) if fills else None,
        "fills": fills,
    }


def drift_report(sessions: sessionmaker[Session], cfg: RolloutConfig, now_ms: int) -> list[dict[str, Any]]:
    """One entry per bin with readings in both windows, flagged ones first.

    Each is ``{bin_id, flagged, reasons, ks, recent: {n, unusable, fill_mean}, baseline: {...}}``.
    """
    recent_start = now_ms - int(cfg.drift_recent_s * 1000)
    base_start = recent_start - int(cfg.drift_baseline_s * 1000)
    recent: dict[str, list[tuple[float | None, str]]] = defaultdict(list)
    base: dict[str, list[tuple[float | None, str]]] = defaultdict(list)
    with sessions() as s:
        rows = s.execute(
            select(Reading.bin_id, Reading.ts, Reading.fill, Reading.quality).where(
                Reading.ts >= base_start, Reading.ts <= now_ms
            )
        ).all()
    for bin_id, ts, fill, quality in rows:
        (recent if ts >= recent_start else base)[bin_id].append((fill, quality))
    out: list[dict[str, Any]] = []
    for bin_id in sorted(set(recent) & set(base)):
        r, b = _window(recent[bin_id]), _window(base[bin_id])
        if r["n"] < cfg.drift_min_readings or b["n"] < cfg.drift_min_readings:
            continue
        reasons: list[str] = []
        if r["unusable"] - b["unusable"] >= cfg.drift_unusable_increase:
            reasons.append(f"unusable frames rose from {b['unusable']:.0%} to {r['unusable']:.0%}")
        ks = ks_statistic(np.asarray(r["fills"]), np.asarray(b["fills"]))
        if len(r["fills"]) >= 2 and len(b["fills"]) >= 2 and ks >= cfg.drift_ks:
            reasons.append(
                f"fill predictions moved (KS {ks:.2f}; mean {b['fill_mean']:.2f} -> {r['fill_mean']:.2f})"
            )
        out.append(
            {
                "bin_id": bin_id,
                "flagged": bool(reasons),
                "reasons": reasons,
                "ks": round(ks, 4),
                "recent": {k: v for k, v in r.items() if k != "fills"},
                "baseline": {k: v for k, v in b.items() if k != "fills"},
            }
        )
    out.sort(key=lambda d: (not d["flagged"], d["bin_id"]))
    return out
