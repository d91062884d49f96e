"""The server as the twin runs it: a throwaway SQLite database, the server's ingest, forecasts and planner.

Readings enter through the ingest's own parsing and ``write_batch``; the plan is
:func:`binsight.server.planning.day_problem.build_problem` on that database, solved by
:func:`binsight.server.routing.plan`, exactly as ``POST /api/plans`` and its runner do, only in-process.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from binsight.protocol import Topics
from binsight.server import routing
from binsight.server.bins_import import BinRow, import_bins
from binsight.server.config import ServerConfig, config_from_dict
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.forecast.cache import ForecastCache, ReplayBudget
from binsight.server.forecast.smoothing import SmoothParams
from binsight.server.ingest.messages import Item, parse
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.planning.day_problem import PlanRequest, build_problem

__all__ = ["TWIN_MODEL", "ServerSide", "fleet_config", "solve"]

TOPICS = Topics("binsight")
#: The model version the twin's cameras report.
TWIN_MODEL = "twin"
_DAY_MS = 86_400_000


def fleet_config(
    *,
    depots: list[tuple[str, float, float]],
    disposal: list[tuple[str, float, float]],
    trucks: list[dict[str, Any]],
    service_days: list[str],
    time_limit_s: float,
    optional_min_fill: float = 0.3,
    threshold: float = 0.8,
    lookahead_days: int = 1,
    near_km: float | None = 1.0,
    skip_quiet_days: bool = True,
    quiet_overflow_h: float = 12.0,
    consolidate_days: int = 2,
    database: str = "sqlite://",
) -> ServerConfig:
    """A validated ``server.toml`` equivalent with the twin's ``[fleet]`` (the server's own config model)."""
    data: dict[str, Any] = {
        "database": database,
        "forecast": {"threshold": threshold},
        "fleet": {
            "depots": [{"id": i, "lat": la, "lon": lo} for i, la, lo in depots],
            "disposal_sites": [{"id": i, "lat": la, "lon": lo, "service_min": 20} for i, la, lo in disposal],
            "trucks": trucks,
            "service_days": service_days,
            "plan_time_limit_s": time_limit_s,
            "optional_min_fill": optional_min_fill,
            "optional_lookahead_days": lookahead_days,
            "optional_near_km": near_km,
            "skip_quiet_days": skip_quiet_days,
            "quiet_overflow_h": quiet_overflow_h,
            "consolidate_days": consolidate_days,
        },
    }
    return config_from_dict(data)


def solve(problem: dict[str, Any], time_limit_s: float) -> dict[str, Any]:
    """The server's route planner on one problem (what the plan runner calls)."""
    return routing.plan(problem, time_limit_s)


class ServerSide:
    """One server over a temporary SQLite file: bins imported, readings ingested, plans built."""

    def __init__(self, cfg: ServerConfig, ids: list[str], rows: list[BinRow]) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="binsight-twin-")
        url = f"sqlite:///{Path(self._dir.name) / 'twin.db'}"
        self.cfg = cfg.model_copy(update={"database": url})
        self.engine = make_engine(url)
        upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        # Replays only calibrate the band, which plans do not read: none are computed, so a run is
        # deterministic and costs one forecast per bin and day.
        self.forecasts = ForecastCache(self.cfg.forecast, ReplayBudget(rate=0.0, burst=0))
        self.registry = BinRegistry()
        self.smoothing = SmoothParams.from_config(self.cfg.forecast)
        self.ids = ids
        self._seq = np.zeros(len(ids), dtype=np.int64)
        self._pending: list[Item] = []
        with self.sessions() as s, s.begin():
            import_bins(s, rows)

    def template(self, now_ms: int) -> dict[str, Any]:
        """The problem the server builds before any reading: its depots, trucks, sites and distances.

        The other policies route their own choice of bins on it, so every policy drives the same fleet.
        """
        with self.sessions() as s:
            problem, _ = build_problem(s, self.cfg, PlanRequest(), self.forecasts, now_ms)
        if problem["bins"]:
            raise RuntimeError("the template must be built before the first reading")
        return problem

    def queue(self, fills: NDArray[np.float64], sent: NDArray[np.bool_], ts_ms: int) -> None:
        """Queue one capture round: usable fills, and ``null`` readings for unusable frames."""
        for k in np.nonzero(sent)[0].tolist():
            f = fills[k]
            usable = not np.isnan(f)
            body = {
                "bin_id": self.ids[k],
                "seq": int(self._seq[k]),
                "ts": ts_ms,
                "fill": round(float(f), 4) if usable else None,
                "quality": "ok" if usable else "dark",
                "model": TWIN_MODEL,
            }
            self._seq[k] += 1
            topic = f"binsight/{self.ids[k]}/reading"
            self._pending.append(parse(TOPICS, topic, json.dumps(body).encode(), ts_ms, _DAY_MS))

    def flush(self, now_ms: int) -> None:
        """Store the queued readings as the ingest writer does: batches of ``ingest.batch_size``.

        The cap matters on SQLite: one ``write_batch`` of 30,000 readings took 40 s (SQLAlchemy splices
        the RETURNING rows of each insert page into all earlier ones), 30 batches of 1,000 take ~1 s.
        """
        size = self.cfg.ingest.batch_size
        for i in range(0, len(self._pending), size):
            with self.sessions() as s, s.begin():
                result = write_batch(
                    s, self._pending[i : i + size], self.registry, False, now_ms, smoothing=self.smoothing
                )
            if result.rejects:
                raise RuntimeError(f"the server rejected twin readings: {result.rejects[:3]}")
        self._pending = []

    def plan_problem(self, now_ms: int) -> tuple[dict[str, Any], list[dict[str, str]]]:
        """``build_problem`` for the next service day, from the readings stored so far."""
        self.flush(now_ms)
        with self.sessions() as s:
            return build_problem(s, self.cfg, PlanRequest(), self.forecasts, now_ms)

    def close(self) -> None:
        self.engine.dispose()
        self._dir.cleanup()
