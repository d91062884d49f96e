"""Migrations create exactly the models' schema, on SQLite and PostgreSQL, and re-running is a no-op."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
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


def test_event_copies_merged_by_migration(db_url: str) -> None:
    """0003 keeps the first of each resent device event, leaves ref-less rows alone, then indexes."""
    engine = make_engine(db_url)
    upgrade(engine, "0002")
    rows = [
        ("b1", 10, "command", "ok", "c1", "first"),
        ("b1", 10, "command", "ok", "c1", "copy"),
        ("b1", 10, "command", "ok", "c2", None),  # another command done in the same millisecond
        ("b1", 10, "command", "failed", None, "malformed"),
        ("b1", 10, "command", "failed", None, "malformed"),
        ("b1", 20, "availability", "online", None, None),
        ("b1", 20, "availability", "online", None, None),
    ]
    with engine.begin() as conn:
        for b, ts, kind, state, ref, detail in rows:
            conn.execute(
                text(
                    "INSERT INTO device_events (bin_id, ts, received_at, kind, state, ref, detail) "
                    "VALUES (:b, :ts, 0, :kind, :state, :ref, :detail)"
                ),
                {"b": b, "ts": ts, "kind": kind, "state": state, "ref": ref, "detail": detail},
            )
    assert upgrade(engine) == "0002"
    with engine.connect() as conn:
        left = conn.execute(text("SELECT ref, detail FROM device_events ORDER BY id")).all()
    assert [tuple(r) for r in left] == [
        ("c1", "first"),
        ("c2", None),
        (None, "malformed"),
        (None, "malformed"),
        (None, None),
        (None, None),
    ]
    assert any(ix["name"] == "uq_device_events_event" for ix in inspect(engine).get_indexes("device_events"))
    engine.dispose()


def test_upgrade_logs_no_alembic_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every CLI command opens the database through upgrade(): alembic's INFO lines stay out, our
    one line about the migration stays in; at DEBUG (``-vv``) alembic speaks again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'quiet.db'}")
    with caplog.at_level(logging.INFO):
        upgrade(engine)
        current_revision(engine)
    assert [r.name for r in caplog.records if r.name.startswith("alembic")] == []
    assert any("database migrated from empty to" in r.getMessage() for r in caplog.records)
    assert logging.getLogger("alembic").level == logging.NOTSET  # put back
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        current_revision(engine)
    assert any(r.name.startswith("alembic") and r.levelno == logging.INFO for r in caplog.records)
    engine.dispose()
