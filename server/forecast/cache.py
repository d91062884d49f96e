"""Forecasts per bin, recomputed when the bin got new readings (at most once a minute) or every hour.

The band is calibrated on replays of the bin's past forecasts (:mod:`calibration`); they are kept per
bin, and a refresh computes at most :data:`MAX_NEW_REPLAYS` new ones, so a server that just started
answers quickly and calibrates each bin over its first refreshes (the model's band until then).
"""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.server.config import ForecastConfig
from binsight.server.db.models import Device, Reading
from binsight.server.forecast.calibration import CALIBRATION_DAYS, ReplayMemo, forecast_calibrated
from binsight.server.forecast.model import Forecast

__all__ = ["MAX_NEW_REPLAYS", "ForecastCache", "load_series"]

_MAX_AGE_MS = 3_600_000
#: New readings refresh a forecast at most this often (a fleet sends readings all the time).
_MIN_AGE_MS = 60_000
#: Replayed past forecasts computed per refresh (each costs about one forecast).
MAX_NEW_REPLAYS = 8


def load_series(session: Session, bin_id: str, since_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Usable readings ``(ts, fill)`` of one bin since ``since_ms``, oldest first."""
    rows = session.execute(
        select(Reading.ts, Reading.fill)
        .where(Reading.bin_id == bin_id, Reading.ts >= since_ms, Reading.fill.is_not(None))
        .order_by(Reading.ts)
    ).all()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    fill = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    return ts, fill


class ForecastCache:
    def __init__(self, cfg: ForecastConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int | None], Forecast | None]] = {}
        self._replays: dict[str, ReplayMemo] = {}

    def get(self, session: Session, device: Device | None, now_ms: int) -> Forecast | None:
        if device is None or device.fill_ts is None:
            return None
        key = (device.seq_count, device.fill_ts)
        with self._lock:
            hit = self._cache.get(device.bin_id)
        if hit is not None and hit[1] is not None:
            age = now_ms - hit[1].now_ts
            if age < _MIN_AGE_MS or (hit[0] == key and age < _MAX_AGE_MS):
                return hit[1]
        elif hit is not None and hit[0] == key:
            return None
        # The oldest replays need their own history_days before them.
        since = now_ms - int((self.cfg.history_days + CALIBRATION_DAYS) * 86_400_000)
        ts, fill = load_series(session, device.bin_id, since)
        with self._lock:
            memo = dict(self._replays.get(device.bin_id, {}))
        fc = forecast_calibrated(ts, fill, now_ms, self.cfg, memo=memo, max_new=MAX_NEW_REPLAYS)
        with self._lock:
            self._cache[device.bin_id] = (key, fc)
            self._replays[device.bin_id] = memo
        return fc
