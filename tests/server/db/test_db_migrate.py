"""Migrations create exactly the models' schema, on SQLite and PostgreSQL, and re-running is a no-op."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from binsight.server.db.engine import make_engine
from binsight.server.db.migrate import current_revision, head_revision, upgrade
from binsight.server.db.models import Base


def test_migrations_match_models(db_url: str) -> None:
    """After upgrade the database is at head and autogenerate finds nothing to change."""
    engine = make_engine(db_url)
    assert upgrade(engine) is None
    assert current_revision(engine) == head_revision()
    assert upgrade(engine) == head_revision()  # idempotent
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert {
        "bins",
        "devices",
        "readings",
        "images",
        "labels",
        "plans",
        "models",
        "api_tokens",
        "device_events",
        "device_commands",
        "ingest_rejects",
    } <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_sqlite_is_wal(tmp_path: object) -> None:
    """The embedded default runs in WAL mode so the API reads while ingest writes."""
    engine = make_engine(f"sqlite:///{tmp_path}/w.db")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()
