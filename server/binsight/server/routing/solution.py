"""Engine-neutral solutions: which truck visits which clients and disposal sites, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["EngineRun", "EngineSolution", "RoutePlan", "Visit"]

VisitKind = Literal["client", "disposal"]


@dataclass(frozen=True)
class Visit:
    """A stop: ``index`` into ``Instance.clients`` or ``Instance.disposal``."""

    kind: VisitKind
    index: int


@dataclass
class RoutePlan:
    """Truck ``vehicle`` (index into ``Instance.vehicle_list()``) leaves its depot, makes ``visits``
    (the final unloading included when the instance has disposal sites) and returns."""

    vehicle: int
    visits: list[Visit] = field(default_factory=list)

    def tidy(self) -> RoutePlan:
        """Drop unloadings with nothing to unload: before any bin, or right before another unloading."""
        out: list[Visit] = []
        for k, v in enumerate(self.visits):
            nxt = self.visits[k + 1] if k + 1 < len(self.visits) else None
            if v.kind == "disposal" and (not out or (nxt is not None and nxt.kind == "disposal")):
                continue
            out.append(v)
        return RoutePlan(self.vehicle, out)

    @property
    def clients(self) -> list[int]:
        return [v.index for v in self.visits if v.kind == "client"]


@dataclass
class EngineSolution:
    """What an engine returns; checked and scheduled by :mod:`binsight.server.routing.schedule`."""

    routes: list[RoutePlan]
    engine: str
    detail: str = ""
    raw: Any = None  # the engine's own solution object, to continue from


@dataclass
class EngineRun:
    """How one engine of a portfolio fared: ``status`` is ``ok``, ``failed`` or ``timed out``.

    ``objective`` is distance plus the worth of skipped optional bins, in the instance's integer
    units (what the portfolio compares); ``error`` says why a run that is not ``ok`` gave nothing.
    """

    engine: str
    status: Literal["ok", "failed", "timed out"]
    elapsed_s: float
    feasible: bool | None = None
    objective: int | None = None
    cost: float | None = None
    error: str | None = None
    won: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-ready, for the plan's ``portfolio`` list."""
        return {
            "engine": self.engine,
            "status": self.status,
            "won": self.won,
            "feasible": self.feasible,
            "cost": self.cost,
            "elapsed_s": round(self.elapsed_s, 2),
            "error": self.error,
        }
