"""Capture timestamps. Agents stamp readings with :class:`WallClock`; simulations may run faster.

:class:`ScaledClock` is for simulations only (``binsight device simulate``, the demo): timestamps
advance ``time_scale`` times faster than wall time, so days of filling pass in minutes.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ScaledClock", "WallClock"]


class Clock(Protocol):
    def now_ms(self) -> int: ...


class WallClock:
    """Epoch milliseconds UTC from the system clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ScaledClock:
    """Simulation only: starts at ``start_ms`` (default now) and runs ``time_scale`` times faster."""

    def __init__(self, time_scale: float, start_ms: int | None = None) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self.start_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        self._t0 = time.monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((time.monotonic() - self._t0) * 1000.0 * self.time_scale)
