"""The dialect helpers answer alike for an engine, a connection and a session, on both databases."""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db import dialect
from binsight.server.db.models import IngestReject


def test_every_kind_of_bind_names_its_database(sessions: sessionmaker[Session], db_url: str) -> None:
    """An engine, a connection and a session all say SQLite or PostgreSQL, never both."""
    engine = sessions.kw["bind"]
    postgres = db_url.startswith("postgresql")
    with engine.connect() as conn, sessions() as s:
        for bind in (engine, conn, s):
            assert dialect.is_postgresql(bind) is postgres
            assert dialect.is_sqlite(bind) is not postgres


def test_greatest_and_least_of_two_values(sessions: sessionmaker[Session]) -> None:
    """The scalar two-argument max and min, whatever each database calls them."""
    with sessions() as s:
        row = s.execute(
            select(dialect.greatest(s, literal(3), literal(7)), dialect.least(s, literal(3), literal(7)))
        ).one()
    assert tuple(row) == (7, 3)


def test_insert_upserts(sessions: sessionmaker[Session]) -> None:
    """The dialect's INSERT has ON CONFLICT: a second row with the same key updates the first."""
    with sessions.begin() as s:
        for n in (1, 2):
            stmt = dialect.insert(s, IngestReject).values(
                reason="bad_json", count=n, last_at=n, last_topic="t", last_detail="d"
            )
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["reason"], set_={"count": IngestReject.count + n, "last_at": n}
                )
            )
    with sessions() as s:
        rows = s.execute(select(IngestReject.reason, IngestReject.count, IngestReject.last_at)).all()
    assert [tuple(r) for r in rows] == [("bad_json", 3, 2)]
