"""The two SQL dialects the server speaks (SQLite, PostgreSQL) and the constructs that differ.

Code that needs dialect-specific SQL asks here instead of comparing ``dialect.name`` itself, so
the list of differences the server relies on is in one place: the upserting INSERT
(``ON CONFLICT``), two-argument GREATEST/LEAST, and the PostgreSQL-only locks callers branch on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

__all__ = ["greatest", "insert", "is_postgresql", "is_sqlite", "least"]

#: Anything that knows which database it talks to.
Bind = Engine | Connection | Session


def _name(bind: Bind) -> str:
    if isinstance(bind, Session):
        return bind.get_bind().dialect.name
    return bind.dialect.name


def is_sqlite(bind: Bind) -> bool:
    """Whether ``bind`` talks to SQLite (the embedded default: one writing process)."""
    return _name(bind) == "sqlite"


def is_postgresql(bind: Bind) -> bool:
    """Whether ``bind`` talks to PostgreSQL (row locks, advisory locks, arrays)."""
    return _name(bind) == "postgresql"


def insert(bind: Bind, table: Any) -> Any:
    """The dialect's INSERT for ``table``, which has ``on_conflict_do_nothing/update``.

    Both dialects spell ``ON CONFLICT`` alike, but SQLAlchemy offers it only on each dialect's own
    ``insert``; the generic one has neither method.
    """
    return (postgresql.insert if is_postgresql(bind) else sqlite.insert)(table)


def greatest(bind: Bind, a: Any, b: Any) -> ColumnElement[Any]:
    """The larger of ``a`` and ``b`` (SQLite's scalar ``max``; PostgreSQL's ``max`` is an aggregate)."""
    return func.greatest(a, b) if is_postgresql(bind) else func.max(a, b)


def least(bind: Bind, a: Any, b: Any) -> ColumnElement[Any]:
    """The smaller of ``a`` and ``b`` (SQLite's scalar ``min``; PostgreSQL's ``min`` is an aggregate)."""
    return func.least(a, b) if is_postgresql(bind) else func.min(a, b)
