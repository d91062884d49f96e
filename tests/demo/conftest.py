"""Demo tests: the demo quiets some libraries' loggers for its own output; put them back after each test,
so later tests (alembic's quiet migrations, for one) see the levels they set themselves."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _logger_levels_restored() -> Iterator[None]:
    names = (
        "alembic",
        "binsight.device",
        "binsight.training",
        "binsight.server.ingest",
        "amqtt",
        "transitions",
    )
    before = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in before.items():
        logging.getLogger(n).setLevel(level)
