"""Drift watch: a camera whose unusable share or fill distribution changed is flagged; a steady one is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from binsight.server.config import RolloutConfig
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import Reading
from binsight.server.rollout.drift import drift_report, ks_statistic

HOUR = 3_600_000
NOW = 1_800_000_000_000


def test_ks_statistic() -> None:
    """Identical samples give 0, disjoint ones 1."""
    a = np.linspace(0, 0.4, 20)
    assert ks_statistic(a, a) == 0.0
    assert ks_statistic(a, a + 0.5) == 1.0


def test_drift_flags_moved_and_blinded_cameras(tmp_path: Path) -> None:
    """Three bins with a week of hourly readings: steady, moved (fills shift), covered (unusable)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    rng = np.random.default_rng(0)
    with sessions() as s, s.begin():
        for b, kind in (("steady", 0), ("moved", 1), ("covered", 2)):
            for h in range(24 * 7):
                ts = NOW - h * HOUR
                recent = h < 24
                fill: float | None = float(rng.uniform(0.1, 0.9))
                quality = "ok"
                if recent and kind == 1:
                    fill = float(rng.uniform(0.9, 1.0))
                if recent and kind == 2 and h % 2 == 0:
                    fill, quality = None, "blocked"
                s.add(
                    Reading(
                        bin_id=b,
                        seq=h,
                        ts=ts,
                        received_at=ts,
                        fill=fill,
                        quality=quality,
                        model="m",
                        historical=False,
                    )
                )
    report = {d["bin_id"]: d for d in drift_report(sessions, RolloutConfig(), NOW)}
    engine.dispose()
    assert not report["steady"]["flagged"]
    assert report["moved"]["flagged"] and "fill predictions moved" in report["moved"]["reasons"][0]
    assert report["covered"]["flagged"] and "unusable frames rose" in report["covered"]["reasons"][0]
    assert abs(report["covered"]["recent"]["unusable"] - 0.5) < 0.05
