"""Run the numbered Alembic migrations in ``migrations/versions`` programmatically.

The server calls :func:`upgrade` at start and ``binsight server migrate`` calls it alone. On PostgreSQL
an advisory lock makes concurrent starts (several servers in one shared-subscription group) safe.

Alembic is imported inside the functions, under :func:`_alembic_quiet`: importing it logs its plugin
setup at INFO, and every ``binsight server ...`` command opens the database through :func:`upgrade`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from binsight.server.db.dialect import is_postgresql

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["current_revision", "head_revision", "upgrade"]

logger = logging.getLogger(__name__)

_SCRIPTS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x62696E73  # "bins"


@contextmanager
def _alembic_quiet() -> Iterator[None]:
    """Alembic's INFO lines ("setup plugin ...", "Context impl SQLiteImpl") only at debug level.

    A dozen of them on every command buried the command's own output. Our one line about a real
    migration ("database migrated from 0003 to 0004") stays at INFO. With ``-vv`` (root logger at
    DEBUG), or a level the operator set on the ``alembic`` logger, alembic speaks as before.
    """
    log = logging.getLogger("alembic")
    if log.level != logging.NOTSET or logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(logging.NOTSET)


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    with _alembic_quiet():
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with _alembic_quiet(), engine.connect() as conn:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision the database was at before."""
    with _alembic_quiet(), engine.begin() as conn:
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        if is_postgresql(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), revision)
    after = current_revision(engine)
    if before != after:
        logger.info("database migrated from %s to %s", before or "empty", after)
    return before
