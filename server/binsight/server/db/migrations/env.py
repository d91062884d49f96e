"""Alembic environment: always run with a connection handed in by binsight.server.db.migrate."""

from __future__ import annotations

from alembic import context

from binsight.server.db.dialect import is_sqlite
from binsight.server.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=is_sqlite(connection),
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
