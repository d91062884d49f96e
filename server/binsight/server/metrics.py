"""``/metrics`` in the Prometheus text format (0.0.4), without a client library.

Counters are this process's (Prometheus sums them across server processes); gauges about the devices
(devices online, missing readings) are read from the database, so every process reports the same.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from binsight.server.db.engine import now_ms
from binsight.server.db.models import Device, Image
from binsight.server.health import device_health, missing_readings
from binsight.server.http_limits import HTTP_REJECTS
from binsight.server.ingest.messages import REJECT_REASONS
from binsight.server.retention import STATS as PRUNE_STATS
from binsight.server.state import AppState

if TYPE_CHECKING:
    from binsight.server.ingest.service import Ingest
    from binsight.server.ingest.writer import IngestStats

__all__ = ["CONTENT_TYPE", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _metric(out: list[str], name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        text = "NaN" if math.isnan(value) else f"{value:g}" if isinstance(value, float) else str(value)
        out.append(f"{name}{labels} {text}")


def _prune_metrics(out: list[str]) -> None:
    st = PRUNE_STATS
    with st.lock:
        runs, skipped, errors, aged, capped, size, last = (
            st.runs,
            st.skipped,
            st.errors,
            st.aged,
            st.capped,
            st.bytes,
            st.last_success_s,
        )
    _metric(
        out,
        "binsight_images_pruned_total",
        "counter",
        "Unlabelled images deleted by retention in this process, by rule.",
        [('{rule="age"}', aged), ('{rule="per_bin_cap"}', capped)],
    )
    _metric(
        out, "binsight_image_bytes_pruned_total", "counter", "JPEG bytes deleted by retention.", [("", size)]
    )
    _metric(out, "binsight_image_prune_runs_total", "counter", "Completed image prunes.", [("", runs)])
    _metric(
        out,
        "binsight_image_prune_skipped_total",
        "counter",
        "Prune rounds left to another server holding the prune lock (PostgreSQL).",
        [("", skipped)],
    )
    _metric(out, "binsight_image_prune_errors_total", "counter", "Failed image prunes.", [("", errors)])
    _metric(
        out,
        "binsight_image_prune_last_success_timestamp_seconds",
        "gauge",
        "When the last image prune finished (NaN: none yet in this process).",
        [("", float(last) if last is not None else float("nan"))],
    )


def render_metrics(state: AppState) -> str:
    """Every metric, as the body of one scrape."""
    out: list[str] = []
    _stored_metrics(out, state)
    _prune_metrics(out)
    _metric(
        out,
        "binsight_http_rejected_total",
        "counter",
        "HTTP requests refused before or while reading their body, by reason (http_limits.py).",
        [(f'{{reason="{r}"}}', n) for r, n in HTTP_REJECTS.snapshot().items()],
    )
    if state.ingest is not None:
        _ingest_metrics(out, state.ingest)
    return "\n".join(out) + "\n"


def _stored_metrics(out: list[str], state: AppState) -> None:
    """Gauges read from the database: devices, their health and what they stored."""
    now = now_ms()
    with state.sessions() as s:
        devices = list(s.execute(select(Device)).scalars())
        total = s.execute(select(func.coalesce(func.sum(Device.seq_count), 0))).scalar_one()
        # Bounded by retention (bins x max_unlabelled_per_bin + labelled), so counting stays cheap.
        n_images, image_bytes = s.execute(select(func.count(), func.coalesce(func.sum(Image.size), 0))).one()
    online = sum(device_health(d, now, state.config.health).online for d in devices)
    gaps = sum(missing_readings(d) for d in devices)
    _metric(out, "binsight_devices", "gauge", "Devices known to the server.", [("", len(devices))])
    _metric(
        out,
        "binsight_devices_online",
        "gauge",
        "Devices online (not offline by last will or silence).",
        [("", online)],
    )
    _metric(
        out,
        "binsight_seq_gaps",
        "gauge",
        "Readings numbered by devices but never stored (gaps in seq), all devices.",
        [("", gaps)],
    )
    _metric(out, "binsight_readings_stored", "gauge", "Readings in the database.", [("", int(total))])
    _metric(out, "binsight_images_stored", "gauge", "Images in the database.", [("", int(n_images))])
    _metric(
        out,
        "binsight_image_bytes_stored",
        "gauge",
        "JPEG bytes of the stored images.",
        [("", int(image_bytes))],
    )


def _ingest_metrics(out: list[str], ingest: Ingest) -> None:
    """This process's ingest: counters of what it stored and rejected, its queue and broker link."""
    st = ingest.writer.stats
    with st.lock:
        ingested, dups, jumps, lag = st.readings_ingested, st.duplicates, st.seq_jumps, st.last_lag_s
    rejects = ingest.rejects.snapshot()
    _metric(
        out,
        "binsight_readings_ingested_total",
        "counter",
        "Readings stored by this process.",
        [("", ingested)],
    )
    _metric(
        out,
        "binsight_readings_duplicate_total",
        "counter",
        "Readings received again and ignored (idempotent on bin_id, seq).",
        [("", dups)],
    )
    _metric(
        out,
        "binsight_messages_rejected_total",
        "counter",
        "Messages rejected, by reason.",
        [(f'{{reason="{r}"}}', rejects.get(r, 0)) for r in REJECT_REASONS],
    )
    _metric(
        out,
        "binsight_seq_jumps_total",
        "counter",
        "Readings whose seq jumped too far from their device's to count the gap as missing readings.",
        [("", jumps)],
    )
    _writer_metrics(out, st)
    _metric(
        out,
        "binsight_ingest_queue_depth",
        "gauge",
        "Messages received, not yet committed.",
        [("", ingest.queue_depth())],
    )
    _metric(
        out,
        "binsight_ingest_lag_seconds",
        "gauge",
        "Capture to commit, newest live reading of the last batch.",
        [("", float(lag) if lag is not None else float("nan"))],
    )
    _metric(
        out,
        "binsight_mqtt_connected",
        "gauge",
        "1 when connected to the broker.",
        [("", int(ingest.broker.connected.is_set()))],
    )


def _writer_metrics(out: list[str], st: IngestStats) -> None:
    """How the ingest writer's transactions went: committed, retried, refused, failing now."""
    with st.lock:
        batches, errors, data_errors, failing = st.batches, st.db_errors, st.data_errors, st.failures_in_a_row
    _metric(
        out,
        "binsight_ingest_batches_total",
        "counter",
        "Database transactions by ingest.",
        [("", batches)],
    )
    _metric(
        out,
        "binsight_ingest_db_errors_total",
        "counter",
        "Failed (retried) ingest transactions.",
        [("", errors)],
    )
    _metric(
        out,
        "binsight_ingest_data_errors_total",
        "counter",
        "Ingest transactions the database refused for their data (split; refused messages: db_refused).",
        [("", data_errors)],
    )
    _metric(
        out,
        "binsight_ingest_failures_in_a_row",
        "gauge",
        "Failed attempts in a row at the current batch (0: committing).",
        [("", failing)],
    )
