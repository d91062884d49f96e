"""Server fixtures: a database per backend (SQLite file, throwaway PostgreSQL), configs, API clients.

Storage tests take ``db_url`` (tests/conftest.py) and run once per backend; PostgreSQL is the machine's
(``pg_url``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import Api
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.auth import create_token
from binsight.server.config import ServerConfig, config_from_dict
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.runtime import ServerRuntime

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated database's session factory."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


FLEET: dict[str, Any] = {
    "depots": [{"id": "depot", "lat": 52.37, "lon": 4.89}],
    "disposal_sites": [{"id": "tip-1", "lat": 52.40, "lon": 4.95, "service_min": 20}],
    "trucks": [
        {"id": "truck-1", "depot": "depot", "capacity_l": 12000, "shift": ["06:00", "14:00"]},
        {"id": "truck-2", "depot": "depot", "capacity_l": 12000, "shift": ["06:00", "14:00"]},
    ],
    "service_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "plan_time_limit_s": 2,
}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., ServerConfig]:
    """Build a ServerConfig from keyword sections, with the test database and fleet by default."""

    def make(database: str | None = None, **sections: Any) -> ServerConfig:
        data: dict[str, Any] = {
            "database": database or f"sqlite:///{tmp_path / 'binsight.db'}",
            "http": {"host": "127.0.0.1", "port": 0},
            "fleet": FLEET,
            "models": {"dir": str(tmp_path / "models")},
        }
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return config_from_dict(data, tmp_path)

    return make


@pytest.fixture
def api(make_config: Callable[..., ServerConfig], db_url: str) -> Iterator[Api]:
    """The app of an API-only runtime (no broker) on a migrated database (per backend), with admin,
    operator, labeller and driver (truck-1) tokens."""
    runtime = ServerRuntime(make_config(database=db_url), mqtt=False)
    runtime.start(listen=False)
    tokens = {}
    with runtime.sessions() as s, s.begin():
        for role in ("admin", "operator", "labeller"):
            tokens[role] = create_token(s, role, f"{role}-test")
        tokens["driver"] = create_token(s, "driver", "driver-test", truck="truck-1")
    try:
        with TestClient(runtime.app) as client:
            yield Api(client, tokens)
    finally:
        runtime.stop()
