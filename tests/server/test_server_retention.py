"""Image retention on SQLite and PostgreSQL: what is deleted, what is never deleted, and under load."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from server_helpers import image, item, reading
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from binsight.errors import ConfigError
from binsight.server.config import RetentionConfig, ServerConfig, load_server_config
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import Image, Label, Reading
from binsight.server.ingest.store import BinRegistry, write_batch
from binsight.server.retention import STATS, RetentionThread, prune_images, sqlite_space
from binsight.server.runtime import ServerRuntime

DAY = 86_400_000
NOW = 1_800_000_000_000
JPEG = b"\xff\xd8" + b"x" * 1000


def _add(
    s: Session,
    bin_id: str,
    age_days: float,
    *,
    ts: int | None = None,
    jpeg: bytes = JPEG,
    tag: str = "",
    now: int = NOW,
) -> int:
    at = now - int(age_days * DAY)
    im = Image(
        bin_id=bin_id,
        seq=0,
        ts=ts if ts is not None else at,
        received_at=at,
        reason="unsure",
        predicted_fill=0.5,
        model="m1",
        sha256=f"{bin_id}-{age_days}-{ts}-{tag}-{s.execute(select(func.count()).select_from(Image)).scalar()}",
        size=len(jpeg),
        jpeg=jpeg,
    )
    s.add(im)
    s.flush()
    return im.id


def _label(s: Session, image_id: int, **kw: object) -> None:
    s.add(Label(image_id=image_id, who="ann", created_at=NOW, **kw))


def _ids(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as s:
        return set(s.execute(select(Image.id)).scalars())


def test_old_unlabelled_go_labelled_and_recent_stay(sessions: sessionmaker[Session]) -> None:
    """Past 30 days an unlabelled (or only skipped) image goes; a fill, class or unusable label keeps it."""
    with sessions() as s, s.begin():
        _add(s, "a", 31)  # old, unlabelled: goes
        skipped = _add(s, "a", 40)
        _label(s, skipped, skipped=True)
        by_fill = _add(s, "a", 200)
        _label(s, by_fill, fill=0.7)
        by_class = _add(s, "b", 90)
        _label(s, by_class, label="overflowing")
        unusable = _add(s, "b", 35)
        _label(s, unusable, unusable=True)
        recent = _add(s, "b", 29)
    cfg = RetentionConfig(batch_pause_s=0, batch_size=1)
    result = prune_images(sessions, cfg, now=NOW)
    assert (result.aged, result.capped, result.bytes) == (2, 0, 2 * len(JPEG))
    assert result.per_bin == {"a": 2} and result.batches == 2
    assert _ids(sessions) == {by_fill, by_class, unusable, recent}
    with sessions() as s:
        kept = {(lb.image_id, lb.skipped) for lb in s.execute(select(Label)).scalars()}
    assert kept == {(by_fill, False), (by_class, False), (unusable, False)}  # the skip went with its image
    assert prune_images(sessions, cfg, now=NOW).deleted == 0


def test_per_bin_cap_keeps_the_newest(sessions: sessionmaker[Session]) -> None:
    """Beyond max_unlabelled_per_bin, a bin's oldest captures go; labelled ones neither count nor go."""
    with sessions() as s, s.begin():
        # Inserted out of capture order: the cap ranks by capture time, not by arrival.
        a = {hour: _add(s, "a", 1, ts=NOW - hour * 3_600_000) for hour in (5, 1, 7, 3, 2, 6, 4)}
        labelled_oldest = _add(s, "a", 1, ts=NOW - 100 * 3_600_000)
        _label(s, labelled_oldest, fill=0.2)
        b = {_add(s, "b", 1, ts=NOW - h) for h in (1, 2)}
    result = prune_images(sessions, RetentionConfig(max_unlabelled_per_bin=3, batch_pause_s=0), now=NOW)
    assert (result.aged, result.capped) == (0, 4) and result.per_bin == {"a": 4}
    assert _ids(sessions) == {a[1], a[2], a[3], labelled_oldest, *b}


def test_dry_run_deletes_nothing_and_counts_what_a_run_deletes(sessions: sessionmaker[Session]) -> None:
    """--dry-run reports exactly what the real prune then deletes, and deletes nothing itself."""
    with sessions() as s, s.begin():
        for i in range(6):
            _add(s, "a", 40 + i)
            _add(s, "b", 1, ts=NOW - i)
        _label(s, _add(s, "c", 60), fill=0.1)
    cfg = RetentionConfig(max_unlabelled_per_bin=2, batch_size=4, batch_pause_s=0)
    before = _ids(sessions)
    dry = prune_images(sessions, cfg, now=NOW, dry_run=True)
    assert _ids(sessions) == before
    assert (dry.aged, dry.capped, dry.per_bin, dry.batches) == (6, 4, {"a": 6, "b": 4}, 0)
    real = prune_images(sessions, cfg, now=NOW)
    assert (real.aged, real.capped, real.per_bin, real.bytes) == (
        dry.aged,
        dry.capped,
        dry.per_bin,
        dry.bytes,
    )
    assert len(_ids(sessions)) == 3  # b's newest two and c's labelled one


def test_prune_under_ingest_and_labelling_loses_nothing(sessions: sessionmaker[Session]) -> None:
    """A prune in batches of 7 while ingest stores readings and images and a labeller labels old images:
    every reading, every new image and every image labelled successfully is still there afterwards."""
    now = int(time.time() * 1000)
    with sessions() as s, s.begin():
        old = [_add(s, f"bin-{i % 5}", 40, tag=str(i), now=now) for i in range(300)]
    errors: list[BaseException] = []
    done = threading.Event()
    stored_batches = 0

    def ingest() -> None:
        nonlocal stored_batches
        registry = BinRegistry()
        try:
            for n in range(40):
                items = [item("reading", f"bin-{i}", reading(f"bin-{i}", n)) for i in range(5)]
                items += [item("image", f"bin-{n % 5}", image(f"bin-{n % 5}", n, jpeg=JPEG + bytes([n])))]
                with sessions() as s, s.begin():
                    write_batch(s, items, registry, False, now_ms=int(time.time() * 1000))
                stored_batches += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    labelled: list[int] = []

    def label() -> None:
        for image_id in old[::10]:
            try:
                with sessions() as s, s.begin():
                    if s.get(Image, image_id) is None:  # what the label API does: 404
                        continue
                    _label(s, image_id, fill=0.5)
                labelled.append(image_id)
            except IntegrityError:  # the image was deleted between the check and the insert
                continue
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=ingest), threading.Thread(target=label)]
    for t in threads:
        t.start()
    total = 0
    while not done.is_set():
        total += prune_images(sessions, RetentionConfig(batch_size=7, batch_pause_s=0), now=now).deleted
    for t in threads:
        t.join(60)
    total += prune_images(sessions, RetentionConfig(batch_size=7, batch_pause_s=0), now=now).deleted
    assert not errors, errors
    assert stored_batches == 40
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(Reading)).scalar_one() == 200
        new = s.execute(select(func.count()).select_from(Image).where(Image.received_at >= now)).scalar_one()
        assert new == 40
        remaining_old = set(s.execute(select(Image.id).where(Image.received_at < now)).scalars())
        label_rows = set(s.execute(select(Label.image_id)).scalars())
    assert remaining_old == set(labelled) == label_rows
    assert total == 300 - len(labelled)


def test_retention_thread_prunes_and_counts(sessions: sessionmaker[Session]) -> None:
    """The runtime's thread prunes on its own, and STATS (what /metrics shows) counts it."""
    with sessions() as s, s.begin():
        s.add(
            Image(
                bin_id="a",
                seq=1,
                ts=0,
                received_at=0,
                reason="every_n",
                model="m1",
                sha256="x",
                size=3,
                jpeg=b"abc",
            )
        )
    with STATS.lock:
        runs, aged = STATS.runs, STATS.aged
    thread = RetentionThread(sessions, RetentionConfig(interval_s=10, batch_pause_s=0), first_delay_s=0)
    thread.start()
    deadline = time.monotonic() + 20
    while STATS.runs == runs and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    thread.stop()
    assert time.monotonic() - t0 < 5 and not thread.running
    assert (STATS.runs, STATS.aged) == (runs + 1, aged + 1)
    assert _ids(sessions) == set()


def test_metrics_report_images_and_prunes(api: object) -> None:
    """/metrics has the stored-images gauges and the prune counters."""
    with api.sessions() as s, s.begin():  # type: ignore[attr-defined]
        _add(s, "a", 1, jpeg=b"12345")
    text = api.get("/metrics").text  # type: ignore[attr-defined]
    assert "binsight_images_stored 1.0\n" in text and "binsight_image_bytes_stored 5.0\n" in text
    assert 'binsight_images_pruned_total{rule="age"} ' in text
    assert "binsight_image_prune_runs_total " in text


def test_runtime_hook_follows_enabled(make_config: Callable[..., ServerConfig]) -> None:
    """`server run` prunes unless [retention] enabled = false."""
    on = ServerRuntime(make_config(retention={"interval_s": 60}))
    off = ServerRuntime(make_config(retention={"enabled": False}))
    try:
        assert on.retention is not None and on.retention.cfg.interval_s == 60
        assert off.retention is None
    finally:
        on.engine.dispose()
        off.engine.dispose()


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ("[retention]\nkeep_days = 3\n", r"retention\.keep_days: unknown key"),
        ("[retention]\nunlabelled_days = 0\n", r"retention\.unlabelled_days"),
        ("[retention]\nmax_unlabelled_per_bin = 0\n", r"retention\.max_unlabelled_per_bin"),
        ("[retention]\ninterval_s = 1\n", r"retention\.interval_s"),
        ("[retention]\nbatch_size = 0\n", r"retention\.batch_size"),
    ],
)
def test_bad_retention_config_names_the_key(tmp_path: Path, toml: str, match: str) -> None:
    """Each bad [retention] key is a ConfigError naming it."""
    p = tmp_path / "s.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError, match=match):
        load_server_config(p)


def test_deploy_sample_has_retention_defaults() -> None:
    """deploy/server.toml documents [retention] with the defaults."""
    cfg = load_server_config(Path(__file__).resolve().parents[2] / "deploy" / "server.toml")
    assert cfg.retention == RetentionConfig()


def test_cli_prune_images(tmp_path: Path) -> None:
    """`binsight server prune-images --dry-run` prints and keeps; without it, deletes; --vacuum shrinks."""
    conf = tmp_path / "server.toml"
    conf.write_text('database = "sqlite:///s.db"\n[retention]\nunlabelled_days = 1\n')
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    big = bytes(range(256)) * 200  # 51 kB, a typical lid-camera JPEG
    with sessions() as s, s.begin():
        for i in range(40):
            s.add(
                Image(
                    bin_id=f"b{i % 2}",
                    seq=i,
                    ts=0,
                    received_at=0,
                    reason="every_n",
                    model="m1",
                    sha256=str(i),
                    size=len(big),
                    jpeg=big,
                )
            )

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "binsight", "server", "prune-images", "--config", str(conf), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    r = cli("--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would delete 40 unlabelled images (40 received over 1 days ago, 0 over 100 per bin)" in r.stdout
    assert "  b0: 20\n  b1: 20\n" in r.stdout and len(_ids(sessions)) == 40
    size_full, _ = sqlite_space(engine)
    r = cli("--vacuum")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("deleted 40 unlabelled images") and "VACUUM: file now" in r.stdout
    assert _ids(sessions) == set()
    size_after, free_after = sqlite_space(engine)
    assert size_after < size_full / 4 and free_after == 0
    engine.dispose()


def test_sqlite_reuses_freed_pages(tmp_path: Path) -> None:
    """SQLite keeps freed pages in the file and reuses them: prune then refill does not grow it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    big = bytes(range(256)) * 200

    def fill(tag: str, age: float) -> None:
        with sessions() as s, s.begin():
            for i in range(200):
                _add(s, f"b{i % 4}", age, jpeg=big, tag=f"{tag}{i}")

    fill("a", 40)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    size_full, _ = sqlite_space(engine)
    assert prune_images(sessions, RetentionConfig(batch_pause_s=0), now=NOW).aged == 200
    size_pruned, free = sqlite_space(engine)
    assert size_pruned == size_full and free > 0.9 * 200 * len(big)
    fill("b", 1)
    size_refilled, _ = sqlite_space(engine)
    assert size_refilled < 1.05 * size_full
    engine.dispose()


def test_delete_rechecks_labels(sessions: sessionmaker[Session]) -> None:
    """A candidate labelled after it was selected is not deleted: the DELETE re-checks in one statement."""
    from binsight.server.retention import _delete_batch

    with sessions() as s, s.begin():
        x, y = _add(s, "a", 40), _add(s, "a", 41)
        _label(s, x, fill=0.3)
    with sessions() as s, s.begin():
        assert [r[0] for r in _delete_batch(s, [x, y])] == [y]
    assert _ids(sessions) == {x}


@pytest.mark.postgres
def test_postgres_skips_an_image_whose_label_is_being_inserted(pg_url: str) -> None:
    """PostgreSQL: while a label insert on an image is uncommitted, the prune skips that image (no wait,
    no cascade of the label) and deletes the rest; the label then commits with its image."""
    from binsight.server.retention import _delete_batch

    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s, s.begin():
        x, y = _add(s, "a", 40), _add(s, "a", 41)
    labeller = sessions()
    labeller.begin()
    _label(labeller, x, fill=0.9)
    labeller.flush()  # the FK check holds a key-share lock on image x until commit
    t0 = time.monotonic()
    with sessions() as s, s.begin():
        assert [r[0] for r in _delete_batch(s, [x, y])] == [y]
    assert time.monotonic() - t0 < 2
    labeller.commit()
    labeller.close()
    assert _ids(sessions) == {x}
    with sessions() as s:
        assert s.execute(select(Label.image_id)).scalars().all() == [x]
    engine.dispose()


@pytest.mark.postgres
def test_postgres_servers_take_turns(pg_url: str) -> None:
    """PostgreSQL: while one server prunes, another's prune skips the round (counted, not an error);
    when the first is done, or its connection dies mid-prune, the next prune runs."""
    from binsight.server.retention import PG_PRUNE_LOCK_KEY, prune_turn

    first, second = make_engine(pg_url), make_engine(pg_url)
    upgrade(first)
    a, b = make_sessionmaker(first), make_sessionmaker(second)
    with a() as s, s.begin():
        old = _add(s, "a", 40)
    cfg = RetentionConfig()
    with prune_turn(a) as mine:
        assert mine
        result = prune_images(b, cfg, now=NOW)
        assert result.skipped and result.deleted == 0 and "another server" in result.summary(cfg)
        assert _ids(b) == {old}
        before = (STATS.runs, STATS.skipped)
        thread = RetentionThread(b, cfg)
        assert thread.run_once() is not None
        assert (STATS.runs, STATS.skipped) == (before[0], before[1] + 1)
    assert prune_images(b, cfg, now=NOW).deleted == 1
    # A server that dies holding the lock frees it with its connection.
    with b() as s, s.begin():
        old = _add(s, "a", 40)
    conn = first.connect()
    assert conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_PRUNE_LOCK_KEY}).scalar_one()
    assert prune_images(b, cfg, now=NOW).skipped
    conn.invalidate()  # the DBAPI connection is closed, as when the process is killed
    conn.close()
    assert prune_images(b, cfg, now=NOW).deleted == 1
    first.dispose()
    second.dispose()
