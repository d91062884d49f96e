"""When to act next: capture intervals with jitter, retry delays with capped exponential backoff.

Jitter keeps a fleet that powered up together (after a power cut, say) from capturing, and
reconnecting, in lock-step.
"""

from __future__ import annotations

import random

__all__ = ["Backoff", "jittered"]


def jittered(interval_s: float, jitter: float, rng: random.Random | None = None) -> float:
    """``interval_s * (1 + u)`` with ``u`` uniform in ``[-jitter, +jitter]``."""
    if interval_s <= 0 or not 0 <= jitter < 1:
        raise ValueError(f"need interval_s > 0 and 0 <= jitter < 1, got {interval_s}, {jitter}")
    u = (rng or random).uniform(-jitter, jitter)
    return interval_s * (1.0 + u)


class Backoff:
    """Capped exponential backoff with jitter: attempt ``n`` waits between half and all of
    ``min(max_s, min_s * 2**n)``.

    Parameters
    ----------
    min_s, max_s
        First and largest delay in seconds.
    """

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to ``max_s``."""
        ceiling = min(self.max_s, self.min_s * 2.0 ** min(self.attempt, 60))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2.0, ceiling)

    def give_up_fast(self) -> None:
        """Jump to the cap: for failures that retrying soon will not fix (refused credentials)."""
        self.attempt = max(self.attempt, 64)

    def reset(self) -> None:
        self.attempt = 0
