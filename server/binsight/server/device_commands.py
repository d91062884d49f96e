"""Sending a device command: record its row, then publish it. The only way the server sends one.

The order matters: a device answers a command with an event (``kind = "command"``, ``ref`` = the
command id), and ingest marks the command's row done by updating it. Published first, a fast device's
answer can be written before the row exists, and the update finds nothing: the command stays "sent"
for ever. The operator's commands (``POST /api/devices/{bin_id}/commands``) and coverage sampling
(:mod:`binsight.server.rollout.coverage`) both send through :func:`send_device_command`.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import Command
from binsight.server.db.engine import now_ms
from binsight.server.db.models import DeviceCommand

__all__ = ["CommandPublisher", "new_command_id", "send_device_command"]


class CommandPublisher(Protocol):
    """Where commands go: the server's :class:`~binsight.server.broker.BrokerConnection`."""

    def publish_command(self, bin_id: str, command: Command) -> None:
        """Publish ``command`` to the device; ConnectionError when it cannot."""
        ...


def new_command_id() -> str:
    """A fresh command id (16 hex digits), the ``ref`` the device's answer carries back."""
    return uuid.uuid4().hex[:16]


def send_device_command(
    sessions: sessionmaker[Session],
    publisher: CommandPublisher,
    bin_id: str,
    command: Command,
    *,
    created_by: str,
    detail: str | None = None,
) -> None:
    """Record ``command`` for ``bin_id`` (status "sent", committed), then publish it.

    Parameters
    ----------
    sessions
        The database.
    publisher
        The broker connection.
    bin_id
        The device.
    command
        What to send; its ``id`` is the row's key.
    created_by
        Who asked: a token's name, or ``"coverage"``.
    detail
        Why, for the command list (coverage: the reasons); cut to 500 characters.

    Raises
    ------
    ConnectionError
        Not published (no broker connection); the row is marked "failed" with the reason.
    """
    now = now_ms()
    with sessions.begin() as s:
        s.add(
            DeviceCommand(
                id=command.id,
                bin_id=bin_id,
                action=command.action,
                interval_s=command.interval_s,
                created_at=now,
                created_by=created_by,
                status="sent",
                detail=detail[:500] if detail else None,
                updated_at=now,
            )
        )
    try:
        publisher.publish_command(bin_id, command)
    except ConnectionError as exc:
        with sessions.begin() as s:
            row = s.get(DeviceCommand, command.id)
            if row is not None:
                row.status, row.detail, row.updated_at = "failed", str(exc)[:500], now_ms()
        raise
