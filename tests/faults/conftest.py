"""The fault suite (`make faults`): each test breaks one thing the way a bad day or an attacker would
and reports what happened to the messages it sent, as "sent / stored / rejected-and-counted / lost".

A test records its counts through the ``fault_counts`` fixture; the terminal summary prints one row per
fault. ``lost`` must be 0: the fixture asserts it when the test ends, so a loss fails the test even if
the test forgot to check. Every test here also runs in the normal suite (`make test`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class FaultCounts:
    fault: str
    sent: int = 0
    stored: int = 0
    rejected: int = 0  # rejected and counted where an operator sees it (metrics, rejects table, events)

    @property
    def lost(self) -> int:
        return self.sent - self.stored - self.rejected


_ROWS: list[FaultCounts] = []


@pytest.fixture
def fault_counts(request: pytest.FixtureRequest) -> Iterator[FaultCounts]:
    counts = FaultCounts(fault=request.node.name)
    yield counts
    _ROWS.append(counts)
    assert counts.sent > 0, "a fault test reports what it sent"
    assert counts.lost == 0, f"{counts.fault}: {counts.lost} of {counts.sent} lost"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _ROWS:
        return
    width = max(len(r.fault) for r in _ROWS)
    terminalreporter.section("faults: sent / stored / rejected-and-counted / lost")
    for r in _ROWS:
        terminalreporter.write_line(
            f"{r.fault:<{width}}  {r.sent:>6} / {r.stored:>6} / {r.rejected:>6} / {r.lost:>4}"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
