"""What is wrong with the agent right now: the ``last_error`` of its ``stats`` messages.

Problems are kept by source ("camera", "model", "inference", "update", "loop"); each is cleared
when its source works again, so stats never show a problem fixed days ago.
"""

from __future__ import annotations

__all__ = ["Problems"]


class Problems:
    """The open problems, one message per source, the most recent last."""

    def __init__(self) -> None:
        self._open: dict[str, str] = {}

    def set(self, source: str, message: str) -> None:
        self._open.pop(source, None)  # re-insert: most recent last
        self._open[source] = message[:500]

    def clear(self, source: str) -> None:
        self._open.pop(source, None)

    @property
    def last(self) -> str | None:
        """The most recent open problem, or None."""
        return next(reversed(self._open.values()), None)
