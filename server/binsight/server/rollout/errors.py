"""The one error type of the rollout package; ``status`` is the HTTP status the API answers with."""

from __future__ import annotations

from binsight.errors import BinsightError

__all__ = ["RolloutError"]


class RolloutError(BinsightError):
    """A promotion, rollback or registration was refused; the message says why."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status
