"""What really happens in the twin, hour by hour: bins fill, overflow and are lifted by trucks.

Within an hour a bin fills linearly, so the time it spends past 100% and the litres beside it are exact
for the hourly inflow; a lift at a fraction of the hour splits it in two.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["CityState", "Ledger"]


@dataclass
class Ledger:
    """The figures of one policy run, summed over the measured weeks."""

    truck_km: float = 0.0
    truck_hours: float = 0.0
    lifts: int = 0
    fill_at_lift_sum: float = 0.0
    lifts_under_50: int = 0
    overflow_events: int = 0
    overflow_bin_hours: float = 0.0
    litres_overflowed: float = 0.0
    missed_mandatory: int = 0
    solver_s: float = 0.0
    plans: int = 0
    mandatory: int = 0
    optional_offered: int = 0
    routes: int = 0
    #: Service days on which some truck went out, trucks out summed over days, and the visits to a
    #: disposal site (truck-loads tipped).
    days_driven: int = 0
    truck_days: int = 0
    disposal_visits: int = 0


def _hours_over(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of a linear segment from level ``a`` to ``b`` spent above 1.0."""
    both = (a > 1.0) & (b > 1.0)
    up = (a <= 1.0) & (b > 1.0)
    frac = np.where(up, (b - 1.0) / np.maximum(b - a, 1e-12), 0.0)
    out: NDArray[np.float64] = np.where(both, 1.0, frac)
    return out


@dataclass
class CityState:
    """True levels, the last usable reading and the last lift of every bin."""

    level: NDArray[np.float64]
    capacity_l: NDArray[np.float64]
    last_lift_h: NDArray[np.float64]
    last_read: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if len(self.last_read) != len(self.level):
            self.last_read = np.full(len(self.level), np.nan)

    def advance(
        self,
        hour: int,
        inflow: NDArray[np.float64],
        lifts: list[tuple[int, float]],
        ledger: Ledger | None,
    ) -> None:
        """Fill every bin for one hour; lift ``(bin, fraction of the hour)``; count into ``ledger``."""
        old = self.level
        new = old + inflow
        over_h = _hours_over(old, new)
        if lifts:
            idx = np.asarray([k for k, _ in lifts], dtype=np.int64)
            frac = np.asarray([f for _, f in lifts])
            pre = old[idx] + frac * inflow[idx]
            new[idx] = (1.0 - frac) * inflow[idx]
            over_h[idx] = _hours_over(old[idx], pre) * frac + _hours_over(np.zeros(len(idx)), new[idx]) * (
                1.0 - frac
            )
            self.last_lift_h[idx] = hour + frac
        if ledger is not None:
            self._count(ledger, old=old, new=new, over_h=over_h, lifts=lifts, inflow=inflow)
        self.level = new

    def _count(
        self,
        ledger: Ledger,
        *,
        old: NDArray[np.float64],
        new: NDArray[np.float64],
        over_h: NDArray[np.float64],
        lifts: list[tuple[int, float]],
        inflow: NDArray[np.float64],
    ) -> None:
        peak = new.copy()
        start = old.copy()
        if lifts:
            idx = np.asarray([k for k, _ in lifts], dtype=np.int64)
            frac = np.asarray([f for _, f in lifts])
            pre = old[idx] + frac * inflow[idx]
            peak[idx] = pre
            fills = np.minimum(pre, 1.0)
            ledger.lifts += len(idx)
            ledger.fill_at_lift_sum += float(fills.sum())
            ledger.lifts_under_50 += int((fills < 0.5).sum())
        ledger.overflow_events += int(((start <= 1.0) & (peak > 1.0)).sum())
        ledger.overflow_bin_hours += float(over_h.sum())
        gained = np.maximum(peak, 1.0) - np.maximum(start, 1.0)
        ledger.litres_overflowed += float((gained * self.capacity_l).sum())
