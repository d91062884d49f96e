"""Commands from the server (``<root>/<bin>/cmd``): queued by the link, run by the capture loop, each once.

A command is acknowledged (PUBACK) only after it ran and was recorded, so one received but not
run before a crash comes again, and one that comes again (a PUBACK lost with its session) is
recognised by its id, kept in the outbox database, and not run twice. Every command ends in a
``command`` event saying ``ok`` or ``failed``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from pydantic import ValidationError

from binsight.device.outbox import Outbox
from binsight.protocol import Command, Reading

__all__ = ["CommandTarget", "RemoteCommands"]

logger = logging.getLogger(__name__)

#: Ids of the last commands run, kept (in the outbox database) to recognise a redelivery.
_DONE_COMMANDS = 200


class CommandTarget(Protocol):
    """What the commands act on: the agent."""

    @property
    def last_error(self) -> str | None: ...

    def set_interval(self, interval_s: float) -> None:
        """Raises ValueError for an interval the device refuses."""
        ...

    def publish_stats(self) -> bool: ...

    def capture_and_send(self, image_reason: str | None = None) -> Reading | None: ...


#: ``(kind, state, ref, detail)`` of an event to send.
Report = Callable[[str, str, str | None, str | None], None]


class RemoteCommands:
    """The queue of received commands and the rule that runs each once.

    Parameters
    ----------
    target
        What the commands act on.
    report
        Sends an event ``(kind, state, ref, detail)``.
    wake
        Set when a command arrives, so the capture loop runs it without waiting for its next tick.
    """

    def __init__(
        self, bin_id: str, outbox: Outbox, target: CommandTarget, *, report: Report, wake: threading.Event
    ) -> None:
        self.bin_id = bin_id
        self.outbox = outbox
        self.target = target
        self._report = report
        self._wake = wake
        self._queue: queue.SimpleQueue[tuple[bytes, Callable[[], None]]] = queue.SimpleQueue()

    def put(self, payload: bytes, ack: Callable[[], None] = lambda: None) -> None:
        """Queue a command (from paho's thread); ``ack`` sends its PUBACK once it has run."""
        self._queue.put((payload, ack))
        self._wake.set()

    def run_queued(self) -> None:
        """Run queued commands, each once (see the module's docstring)."""
        while True:
            try:
                payload, ack = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                cmd = Command.model_validate_json(payload)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(message)"
                self._report("command", "failed", None, f"malformed command: {where}: {first['msg']}")
                ack()
                continue
            done = self._done()
            if cmd.id in done:
                logger.info("%s: command %s already run; delivered again, ignored", self.bin_id, cmd.id)
            else:
                self._run(cmd)
                self.outbox.set_setting("done_commands", json.dumps([*done, cmd.id][-_DONE_COMMANDS:]))
            ack()

    def _done(self) -> list[str]:
        raw = self.outbox.get_setting("done_commands")
        try:
            done = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [str(d) for d in done] if isinstance(done, list) else []

    def _run(self, cmd: Command) -> None:
        target = self.target
        if cmd.action == "set_interval":
            if cmd.interval_s is None:
                self._report("command", "failed", cmd.id, "set_interval needs interval_s")
                return
            try:
                target.set_interval(cmd.interval_s)
            except ValueError as exc:  # outside the device's own range
                self._report("command", "failed", cmd.id, str(exc))
                return
            self._report("command", "ok", cmd.id, f"interval {cmd.interval_s:g} s")
        elif cmd.action == "send_stats":
            sent = target.publish_stats()
            self._report("command", "ok" if sent else "failed", cmd.id, None if sent else "not connected")
        else:
            reason = cmd.reason if cmd.action == "send_image" else None
            reading = target.capture_and_send(image_reason=reason)
            if reading is None:
                self._report("command", "failed", cmd.id, target.last_error)
            else:
                self._report("command", "ok", cmd.id, f"seq {reading.seq} quality {reading.quality}")
