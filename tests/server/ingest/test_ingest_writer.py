"""The batch writer ends every message stored or rejected-and-counted (both DBs): a message the
database refuses is split out of its batch and rejected as ``db_refused``; a database that is away (or
a bug) is retried with the messages kept, reported degraded, and never ends the writer thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mqtt_helpers import wait_for
from server_helpers import item, now_ms, reading, stats
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import Reading, Stats
from binsight.server.db.models import Device, IngestReject
from binsight.server.db.models import Reading as ReadingRow
from binsight.server.ingest import writer as writer_module
from binsight.server.ingest.messages import Item, ReadingMsg, StatsMsg
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.writer import DEGRADED_AFTER, BatchWriter, Queued, about_the_data


class Run:
    """A started writer over ``items`` (all queued before it starts: they make one batch), with the
    order in which their acknowledgements came."""

    def __init__(self, sessions: sessionmaker[Session], items: list[Item]) -> None:
        self.inbox: queue.Queue[Queued] = queue.Queue()
        self.acked: list[int] = []
        for n, it in enumerate(items):
            self.inbox.put(Queued(it, lambda n=n: self.acked.append(n)))
        self.rejects = RejectLog()
        self.writer = BatchWriter(
            sessions, self.inbox, self.rejects, batch_size=1000, linger_ms=50, registration_required=False
        )
        self.writer.first_retry_s, self.writer.max_retry_s = 0.01, 0.05
        self.total = len(items)

    def all_acked(self, timeout: float = 30) -> None:
        wait_for(lambda: len(self.acked) == self.total, timeout, f"{self.total} acknowledgements")


@pytest.fixture
def run(sessions: sessionmaker[Session]) -> Iterator[Callable[[list[Item]], Run]]:
    runs: list[Run] = []

    def start(items: list[Item]) -> Run:
        runs.append(Run(sessions, items))
        runs[-1].writer.start()
        return runs[-1]

    yield start
    for r in runs:
        r.writer.stop(5)


def _wild_reading(bin_id: str, **fields: Any) -> ReadingMsg:
    """A reading validation would have refused, as if it had slipped through (the backstop's case)."""
    return ReadingMsg(Reading.model_construct(**{**reading(bin_id, 1), **fields}))


def _stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as s:
        return int(s.execute(select(func.count()).select_from(ReadingRow)).scalar_one())


def test_a_refused_message_is_rejected_and_the_rest_stored(
    run: Callable[[list[Item]], Run], sessions: sessionmaker[Session], db_url: str
) -> None:
    """Readings of three devices with messages that neither database takes in between (seq 2**63,
    a BIGINT overflow in stats; on PostgreSQL also NUL in text): the valid ones are stored, each
    refused one is rejected as db_refused and counted, all are acknowledged in arrival order."""
    postgres = db_url.startswith("postgresql")
    valid: list[Item] = [item("reading", f"d{d}", reading(f"d{d}", s_)) for s_ in range(20) for d in range(3)]
    refused: list[Item] = [
        _wild_reading("d0", seq=2**63),
        StatsMsg(Stats.model_construct(**{**stats("d1"), "dropped": 2**64})),
    ]
    nul = _wild_reading("d2", seq=99, model="m\x00")
    items = [*valid[:10], refused[0], *valid[10:40], nul, refused[1], *valid[40:]]
    r = run(items)
    r.all_acked()
    assert r.acked == list(range(len(items)))
    assert r.writer.alive and r.writer.degraded is None
    n_refused = len(refused) + postgres
    assert _stored(sessions) == len(valid) + (not postgres)  # SQLite stores a NUL as it is
    assert r.rejects.snapshot() == {"db_refused": n_refused}
    with sessions() as s:
        row = s.get(IngestReject, "db_refused")
        assert row is not None and row.count == n_refused and "(bin d" in (row.last_topic or "")
        # The failed first attempt created the devices and rolled back: they were created again.
        devices = {d.bin_id: d.seq_count for d in s.execute(select(Device)).scalars()}
        assert devices == {"d0": 20, "d1": 20, "d2": 20 + (not postgres)}
    st = r.writer.stats
    assert st.db_errors == 0 and st.data_errors >= n_refused and st.readings_ingested == _stored(sessions)


def _failing_for_a_while(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> threading.Event:
    """Make every write raise ``exc`` until the returned event is set."""
    fixed = threading.Event()
    real = writer_module.write_batch

    def write_batch(*args: Any, **kwargs: Any) -> Any:
        if not fixed.is_set():
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_batch", write_batch)
    return fixed


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly")),
        ProgrammingError("INSERT", {}, Exception('relation "readings" does not exist')),
        RuntimeError("a bug in the writer"),
    ],
    ids=["connection", "schema", "bug"],
)
def test_a_failing_database_is_retried_not_split(
    run: Callable[[list[Item]], Run],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    exc: Exception,
) -> None:
    """While writes fail for a reason that is not the data, nothing is acknowledged or rejected, the
    writer says degraded after DEGRADED_AFTER failures and stays alive; once writes work, all is stored."""
    fixed = _failing_for_a_while(monkeypatch, exc)
    r = run([item("reading", "d0", reading("d0", s_)) for s_ in range(50)])
    wait_for(lambda: r.writer.stats.failures_in_a_row >= DEGRADED_AFTER + 2, 20, "failed attempts")
    assert r.acked == [] and r.writer.alive
    assert r.writer.degraded is not None and type(exc).__name__ in r.writer.degraded
    fixed.set()
    r.all_acked()
    assert _stored(sessions) == 50 and r.rejects.snapshot() == {}
    assert r.writer.degraded is None and r.writer.stats.failures_in_a_row == 0
    assert r.writer.stats.data_errors == 0


def test_when_nothing_can_be_written_every_message_still_ends(
    run: Callable[[list[Item]], Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that refuses every write as bad data (even the rejects): each message is still
    acknowledged and counted in this process, and the writer lives on."""
    _failing_for_a_while(monkeypatch, DataError("INSERT", {}, Exception("invalid input")))
    r = run([item("reading", "d0", reading("d0", s_)) for s_ in range(7)] + [item("reading", "d0", "{")])
    r.all_acked()
    assert r.writer.alive and r.rejects.snapshot() == {"db_refused": 7, "invalid_json": 1}


def test_what_is_about_the_data() -> None:
    """Refused values are split out; a database that is away, a schema problem and bugs are retried."""
    assert about_the_data(DataError("x", {}, Exception("bigint out of range")))
    assert about_the_data(IntegrityError("x", {}, Exception("NOT NULL constraint failed")))
    assert about_the_data(OverflowError("Python int too large to convert to SQLite INTEGER"))
    assert about_the_data(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not about_the_data(OperationalError("x", {}, Exception("database is locked")))
    assert not about_the_data(ProgrammingError("x", {}, Exception("no such table")))
    assert not about_the_data(RuntimeError("bug"))
    lost = DataError("x", {}, Exception("terminating connection"), connection_invalidated=True)
    assert not about_the_data(lost)


def test_a_seq_jump_is_counted(run: Callable[[list[Item]], Run], caplog: pytest.LogCaptureFixture) -> None:
    """A reading far outside its device's seq range is stored and counted as a jump; the device's
    first jump is logged as a warning, its later ones are not."""
    r = run([item("reading", "d0", reading("d0", s_, ts=now_ms())) for s_ in (1, 2, 2**52, 3)])
    r.all_acked()
    assert r.writer.stats.seq_jumps == 2 and r.writer.stats.readings_ingested == 4
    r.inbox.put(Queued(item("reading", "d0", reading("d0", 2**51)), None))
    wait_for(lambda: r.writer.stats.seq_jumps == 3, 10, "the third jump")
    warnings = [m.getMessage() for m in caplog.records if m.levelname == "WARNING"]
    assert len(warnings) == 1 and "device d0: 2 seq jump(s)" in warnings[0], warnings
