"""Forecasts per bin, recomputed when the bin got new readings (at most once a minute) or every hour.

The band is calibrated on replays of the bin's past forecasts (:mod:`calibration`); they are kept per
bin, and a refresh computes at most :data:`MAX_NEW_REPLAYS` new ones, so a server that just started
answers quickly and calibrates each bin over its first refreshes (the model's band until then).

Replays are also rationed across all bins (:class:`ReplayBudget`): calibrating one bin takes ~56
replays of ~16 ms, so without a ration the first ``/api/bins`` after a restart of a 1,000-bin server
would spend ~130 s of CPU on replays (measured: 132 ms per bin for the first refresh against 16 ms for
the forecast alone). With it, a request pays for at most a burst of replays and the bins calibrate in
the background of normal use, at a few percent of one core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.server.config import ForecastConfig
from binsight.server.db.models import Device, Reading
from binsight.server.forecast.calibration import CALIBRATION_DAYS, ReplayMemo, forecast_calibrated
from binsight.server.forecast.model import Forecast

__all__ = ["MAX_NEW_REPLAYS", "ForecastCache", "ReplayBudget", "load_series"]

_MAX_AGE_MS = 3_600_000
#: New readings refresh a forecast at most this often (the cameras send readings all the time).
_MIN_AGE_MS = 60_000
#: Replayed past forecasts computed per refresh (each costs about one forecast).
MAX_NEW_REPLAYS = 8
#: Ration of new replays across all bins: this many per second on average, at most REPLAY_BURST at once.
REPLAYS_PER_S = 4.0
REPLAY_BURST = 32


class ReplayBudget:
    """A token bucket of replays shared by every bin's refresh (thread-safe)."""

    def __init__(
        self,
        rate: float = REPLAYS_PER_S,
        burst: int = REPLAY_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, most: int) -> int:
        """Reserve up to ``most`` replays now; return how many may be computed."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            n = max(0, min(most, int(self._tokens)))
            self._tokens -= n
            return n

    def give_back(self, n: int) -> None:
        """Return reserved replays that were not needed."""
        if n > 0:
            with self._lock:
                self._tokens = min(float(self.burst), self._tokens + n)


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
    def __init__(self, cfg: ForecastConfig, budget: ReplayBudget | None = None) -> None:
        self.cfg = cfg
        self.budget = budget or ReplayBudget()
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
        allowed = self.budget.take(MAX_NEW_REPLAYS)
        known = set(memo)
        fc = forecast_calibrated(ts, fill, now_ms, self.cfg, memo=memo, max_new=allowed)
        self.budget.give_back(allowed - sum(1 for k in memo if k not in known))
        with self._lock:
            self._cache[device.bin_id] = (key, fc)
            self._replays[device.bin_id] = memo
        return fc
