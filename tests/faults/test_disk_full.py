"""Disk full (issue 15, item 6): a camera agent whose state partition fills up keeps running, logs the
condition once, counts what it had to drop, and stores and sends again by itself once there is room.

The partition is a real 4 MB tmpfs, mounted for the test (root only; CI runs as root), filled by a
file the test writes until the kernel says ENOSPC and deletes to give the room back.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "device"))  # the device tests' helpers
from device_support import (
    Collector,
    build_model,
    distinct_seqs,
    load_config,
    reconfigure_broker,
    scene,
    write_config,
    write_images,
)

from binsight.device import outbox as outbox_module
from binsight.device.agent import Agent
from binsight.device.config import UpdatesConfig
from binsight.device.inference import FillModel
from binsight.device.outbox import HELD_IN_MEMORY, RESERVE_BYTES, Outbox
from binsight.device.sources import Frame, FrameSource, open_source
from binsight.device.updates import Updater
from binsight.protocol import Reading, Stats
from binsight.signing import format_public_key, generate_key, make_release

pytestmark = pytest.mark.broker


@pytest.fixture
def small_partition(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MB filesystem (tmpfs), unmounted at the end whatever happened."""
    where = tmp_path / "state"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)  # still open somewhere: detach


def fill(partition: Path, leave: int = 0) -> Path:
    """Write a file until the partition has at most ``leave`` bytes free; returns it.

    ``partition`` may name a file instead of a folder (a second filler)."""
    filler = partition if partition.suffix or not partition.is_dir() else partition / "filler"
    partition = filler.parent
    with open(filler, "wb", buffering=0) as fh:
        try:
            while (free := os.statvfs(partition).f_bavail * os.statvfs(partition).f_frsize) > leave:
                fh.write(b"\0" * min(1 << 16, max(free - leave, 1)))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def _reading(seq: int) -> Reading:
    return Reading(bin_id="b-1", seq=seq, ts=1_700_000_000_000 + seq, fill=0.5, quality="ok", model="v1")


def test_wal_stays_small_on_a_small_partition(
    small_partition: Path, fault_counts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readings stored and acknowledged one by one on a 3 MB partition never fill it: SQLite's
    default WAL (4 MB before its first checkpoint) filled it after ~130 readings, for good."""
    filler = fill(small_partition, leave=3 * 1024 * 1024)
    box = Outbox(small_partition / "outbox.db")
    wal = small_partition / "outbox.db-wal"
    largest = 0
    for _ in range(600):
        box.add_reading(_reading)
        fault_counts.sent += 1
        box.delete(row.id for row in box.after(0, 10))
        fault_counts.stored += 1
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    assert not box.disk.full
    assert largest <= 512 * 1024, f"the WAL grew to {largest} bytes"
    monkeypatch.setattr(outbox_module, "_TRUNCATE_EVERY_S", 0.0)  # not once a minute: now
    box.add_reading(_reading)
    box.delete(row.id for row in box.after(0, 10))
    assert wal.stat().st_size == 0, "a drained outbox gives its WAL back"
    box.close()
    filler.unlink()


def test_acks_on_a_full_partition_are_deleted_later(small_partition: Path, fault_counts: Any) -> None:
    """Readings kept while offline fill the partition; the broker then acknowledges them but the
    deletes find no room: nothing raises (a raise ended the MQTT session, over and over), and the
    rows go with the next delete that works."""
    box = Outbox(small_partition / "outbox.db")
    for _ in range(2000):
        box.add_reading(_reading)
    filler = fill(small_partition)
    while not box.held:  # the disk full, the outbox's reserve used up too
        box.add_reading(_reading)
    fault_counts.sent = box.next_seq
    rows = [row.id for row in box.after(0, 10_000)]
    waiting = box.depth()  # the rows and the reading held in memory
    box.delete(rows[:1000])  # acknowledged while there is no room
    assert box.disk.full and box.depth() == waiting, "nothing deleted yet, nothing raised"
    filler.unlink()
    box.delete(rows[1000:])
    assert not box.disk.full and box.depth() == 1, "the earlier acks went with this delete"
    held = box.after(0, 10)
    assert [Reading.model_validate_json(r.payload).seq for r in held] == [box.next_seq - 1]
    box.delete(r.id for r in held)
    assert box.depth() == 0
    fault_counts.stored = fault_counts.sent  # all reached the outbox and were acknowledged
    box.close()


def test_outbox_reopens_on_a_full_partition(small_partition: Path, fault_counts: Any) -> None:
    """An agent restarted on a full partition opens its outbox (SQLite needs room for its
    shared-memory file: the outbox's reserve gives it) and goes on storing, then holding."""
    path = small_partition / "outbox.db"
    box = Outbox(path)
    for _ in range(10):
        box.add_reading(_reading)
    box.close()
    assert (small_partition / "outbox.db.reserve").stat().st_size == RESERVE_BYTES
    filler = fill(small_partition)
    box = Outbox(path)
    assert box.disk.full and not (small_partition / "outbox.db.reserve").exists()
    while not box.held:
        box.add_reading(_reading)
    fault_counts.sent = box.next_seq
    stored = len(box.after(0, 10_000))
    assert stored + box.held == box.next_seq
    filler.unlink()
    assert box.flush() and len(box.after(0, 10_000)) == box.next_seq and box.held == 0
    assert (small_partition / "outbox.db.reserve").exists(), "the reserve is set aside again"
    fault_counts.stored = box.next_seq
    box.close()


class CountingSource:
    """The agent's real frame source, counting the bursts taken: each is one capture, one reading."""

    def __init__(self, inner: FrameSource) -> None:
        self.inner = inner
        self.live = inner.live
        self.bursts = 0

    @property
    def frame_time_ms(self) -> int | None:
        return self.inner.frame_time_ms

    def open(self) -> None:
        self.inner.open()

    def read_burst(self, n: int, gap_s: float) -> list[Frame]:
        frames = self.inner.read_burst(n, gap_s)
        self.bursts += 1
        return frames

    def close(self) -> None:
        self.inner.close()


def _wait(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"{what}: not met in {timeout} s"
        time.sleep(0.05)


def _disk_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The outbox's disk-space lines at ``level``."""
    mine = [r for r in caplog.records if r.name == "binsight.device.problems" and r.levelno == level]
    return [r for r in mine if r.getMessage().startswith("outbox ")]


def test_agent_rides_out_a_full_state_partition(
    tmp_path: Path,
    small_partition: Path,
    mosquitto: Any,
    fault_counts: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real agent, its broker away and its state partition full: it keeps capturing, holds a
    few readings in memory and counts the rest as dropped, logs one WARNING (no traceback) and
    shows the problem as its last_error; once the fillers are deleted and the broker is back it
    stores and sends again with no restart, logs one INFO, and every reading is received or counted.

    (With the broker there, a full disk costs nothing: each reading's room in the WAL is given back
    when it is acknowledged and the outbox drains.)"""
    caplog.set_level(logging.INFO, logger="binsight")
    monkeypatch.setitem(HELD_IN_MEMORY, "reading", 5)  # so a short outage also drops some
    if os.geteuid() == 0:
        reconfigure_broker(mosquitto, "")  # root: persistence that works, so the collector misses nothing
    model = build_model(tmp_path / "v1.onnx", "v1")
    scenes = write_images(tmp_path / "scenes", [scene(80 + 10 * i, seed=i) for i in range(10)])
    toml = write_config(
        small_partition, bin_id="bin-full", source=scenes, model=model, port=mosquitto.port, interval_s=0.1
    )
    source = CountingSource(open_source(str(scenes), discard_frames=0))
    col = Collector(mosquitto.port, persistent=True)
    agent = Agent(load_config(toml), source=source)
    agent.start()
    try:
        col.wait_for(lambda: len(col.payloads("reading")) >= 3)
        mosquitto.stop()
        filler = fill(small_partition)
        _wait(lambda: agent.outbox.disk.full, what="the outbox noticing")
        more = fill(small_partition / "more")  # the room the outbox's reserve gave back, taken too
        _wait(lambda: agent.outbox.held > 0, what="readings held in memory")
        full_from = source.bursts
        _wait(lambda: source.bursts >= full_from + 20, what="captures while the disk is full")
        assert agent.running
        assert len(_disk_lines(caplog, logging.WARNING)) == 1, "a full disk is one WARNING line"
        warning = _disk_lines(caplog, logging.WARNING)[0].getMessage()
        assert str(agent.outbox.path) in warning and "bytes free" in warning
        assert agent.stats().last_error == warning, "the stats' last_error says so"
        assert agent.outbox.dropped > 0, "beyond the readings held in memory, drops are counted"

        filler.unlink()
        more.unlink()
        mosquitto.start()
        _wait(lambda: agent.outbox.depth() == 0 and not agent.outbox.disk.full, 30, what="recovery")
        recovered_at = len(col.payloads("stats"))
        col.wait_for(lambda: len(col.payloads("stats")) > recovered_at)
        stats = Stats.model_validate(col.payloads("stats")[-1])
        dropped = agent.outbox.dropped  # final: nothing is dropped once there is room
        agent.stop()
        time.sleep(0.5)  # the last acknowledged readings reach the collector
    finally:
        if agent.running:
            agent.stop()
        col.close()
    seqs = distinct_seqs(col.payloads("reading"))
    left = Outbox(agent.outbox.path)  # captured just before the stop, sent after the next start
    seqs_left = [Reading.model_validate_json(row.payload).seq for row in left.after(0, 10_000)]
    left.close()
    assert len(_disk_lines(caplog, logging.WARNING)) == 1
    assert len(_disk_lines(caplog, logging.INFO)) == 1, "its recovery is one INFO line"
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("binsight")], "no traceback"
    assert seqs == sorted(seqs), "readings held in memory go out in order"
    assert "cannot write" not in (stats.last_error or ""), "the fixed problem is no longer shown"
    assert stats.dropped == dropped, "stats show the drops"
    stored = set(seqs) | set(seqs_left)
    fault_counts.sent = source.bursts
    fault_counts.stored = len(stored)
    fault_counts.rejected = dropped
    assert len(stored) + dropped == agent.outbox.next_seq == source.bursts


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server serving a folder of model files: ``(folder, base_url)``."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *_: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_model_download_on_a_full_disk_waits_for_room(
    tmp_path: Path,
    small_partition: Path,
    model_server: tuple[Path, str],
    fault_counts: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A signed release that does not fit fails cleanly (no partial file, the running model kept,
    retried, one WARNING) and is installed by the next try once there is room."""
    caplog.set_level(logging.INFO, logger="binsight")
    folder, base_url = model_server
    key = generate_key()
    path = small_partition / "model.onnx"
    build_model(path, "v1")
    v2 = build_model(folder / "v2.onnx", "v2", invert=True)
    release = make_release(v2, key, "v2", "/v2.onnx", release_number=2)
    events: list[tuple[str, str | None, str | None]] = []
    outbox = Outbox(small_partition / "outbox.db")

    def report(state: str, version: str | None, detail: str | None) -> None:
        events.append((state, version, detail))
        outbox.add("event", json.dumps([state, version]).encode())  # as the agent's Status does

    running = [FillModel(path)]
    updater = Updater(
        UpdatesConfig(public_key=format_public_key(key.public_key()), base_url=base_url),
        path,
        1,
        outbox,
        current=lambda: running[-1],
        activate=running.append,
        last_frame=lambda: scene(120),
        report=report,
    )
    fault_counts.sent = 1
    filler = fill(small_partition)
    for _ in range(2):
        retry = updater.process(release)
        assert retry is not None, "a full disk is retried, not remembered as a refused release"
        assert events[-1][0] == "retrying" and "no room for model v2" in (events[-1][2] or ""), events[-1]
        assert running[-1].version == "v1" and FillModel(path).version == "v1"
        assert not updater.download_path.exists()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "model dow" in r.getMessage()]
    assert len(warnings) == 1, "logged once, not per retry"

    filler.unlink()
    assert updater.process(release) is None
    assert events[-1][0] == "active" and running[-1].version == "v2" and FillModel(path).version == "v2"
    assert any(r.levelno == logging.INFO and "writable again" in r.getMessage() for r in caplog.records)
    sent_events = [json.loads(row.payload)[0] for row in outbox.after(0, 100)]
    tries = ["downloading", "retrying"] * 2
    assert sent_events == [*tries, "downloading", "verified", "active"], "events held, then sent in order"
    outbox.close()
    fault_counts.stored = 1
