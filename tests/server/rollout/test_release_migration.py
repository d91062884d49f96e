"""Migration 0004 on SQLite and PostgreSQL: announcements kept, release numbers that only grow."""

from __future__ import annotations

from sqlalchemy import delete, text
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import ModelAnnouncement, ReleaseRecord


def _issue(sessions: sessionmaker[Session], version: str) -> int:
    with sessions.begin() as s:
        row = ReleaseRecord(version=version, sha256="0" * 64, size=1, issued_at=1, rollout_id=None)
        s.add(row)
        s.flush()
        return row.number


def test_0004_keeps_announcements_and_numbers_only_grow(db_url: str) -> None:
    """A bin told a v1 (unnumbered) release before 0004 keeps its row, with no number; every new
    release gets a higher number than any before, even after the newest row was deleted."""
    engine = make_engine(db_url)
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO model_announcements (bin_id, version, rollout_id, announced_at) "
                "VALUES ('b1', 'v1', 1, 5)"
            )
        )
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        row = s.get(ModelAnnouncement, "b1")
        assert row is not None and (row.version, row.release_number) == ("v1", None)
    first, second = _issue(sessions, "v1"), _issue(sessions, "v2")
    assert 0 < first < second
    with sessions.begin() as s:
        s.execute(delete(ReleaseRecord).where(ReleaseRecord.number == second))
    assert _issue(sessions, "v1") > second, "a number handed out once is never handed out again"
    engine.dispose()
