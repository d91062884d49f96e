"""``/metrics`` in the Prometheus text format (0.0.4), rendered by prometheus_client.

Three kinds of metric, and how they aggregate when several server processes run (one shared MQTT
subscription group, each process its own ``[http]`` port and its own scrape target):

- counters and histograms of this process (readings ingested, rejects, latencies in
  :mod:`binsight.server.latency`, alerts sent): ``sum without (instance)`` them in PromQL. A process
  that restarts starts again from 0, which ``rate()`` and ``increase()`` handle;
- gauges of this process (queue depth, broker link, failures in a row): per process, alert per
  instance;
- gauges read from the database (devices, devices online, seq gaps, stored readings and images):
  every process reports the same value, so ``max without (instance)``, never ``sum``.

prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) is for one HTTP port served by
forked workers; binsight runs one worker per process, so it is not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from binsight.server.alerts import level_of
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Device, Image
from binsight.server.health import device_health, missing_readings
from binsight.server.http_limits import HTTP_REJECTS
from binsight.server.ingest.messages import REJECT_REASONS
from binsight.server.latency import REGISTRY as PROCESS_REGISTRY
from binsight.server.retention import STATS as PRUNE_STATS
from binsight.server.state import AppState

if TYPE_CHECKING:
    from binsight.server.ingest.service import Ingest
    from binsight.server.ingest.writer import IngestStats

__all__ = ["CONTENT_TYPE", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


Labels = dict[str, str]


def _metric(out: list[Metric], name: str, kind: str, help_: str, samples: list[tuple[Labels, float]]) -> None:
    """One metric family; counters are named ``..._total`` here, as they are exposed."""
    family = Metric(name.removesuffix("_total") if kind == "counter" else name, help_, kind)
    for labels, value in samples:
        family.add_sample(name, labels, float(value))
    out.append(family)


class _StateCollector(Collector):
    """The metrics of one server's state, collected at each scrape."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []  # not described up front: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        out: list[Metric] = []
        _stored_metrics(out, self.state)
        _prune_metrics(out)
        _metric(
            out,
            "binsight_http_rejected_total",
            "counter",
            "HTTP requests refused before or while reading their body, by reason (http_limits.py).",
            [({"reason": r}, n) for r, n in HTTP_REJECTS.snapshot().items()],
        )
        if self.state.ingest is not None:
            _ingest_metrics(out, self.state.ingest)
        yield from out


def _prune_metrics(out: list[Metric]) -> None:
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
        [({"rule": "age"}, aged), ({"rule": "per_bin_cap"}, capped)],
    )
    _metric(
        out, "binsight_image_bytes_pruned_total", "counter", "JPEG bytes deleted by retention.", [({}, size)]
    )
    _metric(out, "binsight_image_prune_runs_total", "counter", "Completed image prunes.", [({}, runs)])
    _metric(
        out,
        "binsight_image_prune_skipped_total",
        "counter",
        "Prune rounds left to another server holding the prune lock (PostgreSQL).",
        [({}, skipped)],
    )
    _metric(out, "binsight_image_prune_errors_total", "counter", "Failed image prunes.", [({}, errors)])
    _metric(
        out,
        "binsight_image_prune_last_success_timestamp_seconds",
        "gauge",
        "When the last image prune finished (NaN: none yet in this process).",
        [({}, float(last) if last is not None else float("nan"))],
    )


def render_metrics(state: AppState) -> str:
    """Every metric, as the body of one scrape: this process's registry, then the state's."""
    registry = CollectorRegistry()
    registry.register(_StateCollector(state))
    return (generate_latest(PROCESS_REGISTRY) + generate_latest(registry)).decode()


def _stored_metrics(out: list[Metric], state: AppState) -> None:
    """Gauges read from the database: devices, their health and what they stored."""
    now = now_ms()
    with state.sessions() as s:
        devices = list(s.execute(select(Device)).scalars())
        total = s.execute(select(func.coalesce(func.sum(Device.seq_count), 0))).scalar_one()
        # Bounded by retention (bins x max_unlabelled_per_bin + labelled), so counting stays cheap.
        n_images, image_bytes = s.execute(select(func.count(), func.coalesce(func.sum(Image.size), 0))).one()
    online = sum(device_health(d, now, state.config.health).online for d in devices)
    gaps = sum(missing_readings(d) for d in devices)
    _metric(out, "binsight_devices", "gauge", "Devices known to the server.", [({}, len(devices))])
    _metric(
        out,
        "binsight_devices_online",
        "gauge",
        "Devices online (not offline by last will or silence).",
        [({}, online)],
    )
    _metric(
        out,
        "binsight_seq_gaps",
        "gauge",
        "Readings numbered by devices but never stored (gaps in seq), all devices.",
        [({}, gaps)],
    )
    _fill_metrics(out, state, devices)
    _metric(out, "binsight_readings_stored", "gauge", "Readings in the database.", [({}, int(total))])
    _metric(out, "binsight_images_stored", "gauge", "Images in the database.", [({}, int(n_images))])
    _metric(
        out,
        "binsight_image_bytes_stored",
        "gauge",
        "JPEG bytes of the stored images.",
        [({}, int(image_bytes))],
    )


def _fill_metrics(out: list[Metric], state: AppState, devices: list[Device]) -> None:
    """How many bins are full and overflowing now, by their smoothed fill ([alerts] levels), as alerts."""
    alerts = state.config.alerts
    threshold = alerts.threshold if alerts.threshold is not None else state.config.forecast.threshold
    levels = [level_of(d.shown_fill, threshold, alerts.overflow_fill) for d in devices]
    _metric(
        out,
        "binsight_bins_full",
        "gauge",
        "Bins whose smoothed fill is at or above the full threshold (overflowing ones included).",
        [({}, sum(level in ("full", "overflow") for level in levels))],
    )
    _metric(
        out,
        "binsight_bins_overflowing",
        "gauge",
        "Bins whose smoothed fill is at or above [alerts] overflow_fill.",
        [({}, levels.count("overflow"))],
    )


def _ingest_metrics(out: list[Metric], ingest: Ingest) -> None:
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
        [({}, ingested)],
    )
    _metric(
        out,
        "binsight_readings_duplicate_total",
        "counter",
        "Readings received again and ignored (idempotent on bin_id, seq).",
        [({}, dups)],
    )
    _metric(
        out,
        "binsight_messages_rejected_total",
        "counter",
        "Messages rejected, by reason.",
        [({"reason": r}, rejects.get(r, 0)) for r in REJECT_REASONS],
    )
    _metric(
        out,
        "binsight_seq_jumps_total",
        "counter",
        "Readings whose seq jumped too far from their device's to count the gap as missing readings.",
        [({}, jumps)],
    )
    _writer_metrics(out, st)
    _metric(
        out,
        "binsight_ingest_queue_depth",
        "gauge",
        "Messages received, not yet committed.",
        [({}, ingest.queue_depth())],
    )
    _metric(
        out,
        "binsight_ingest_lag_seconds",
        "gauge",
        "Capture to commit, newest live reading of the last batch.",
        [({}, float(lag) if lag is not None else float("nan"))],
    )
    _metric(
        out,
        "binsight_mqtt_connected",
        "gauge",
        "1 when connected to the broker.",
        [({}, int(ingest.broker.connected.is_set()))],
    )


def _writer_metrics(out: list[Metric], st: IngestStats) -> None:
    """How the ingest writer's transactions went: committed, retried, refused, failing now."""
    with st.lock:
        batches, errors, data_errors, failing = st.batches, st.db_errors, st.data_errors, st.failures_in_a_row
    _metric(
        out,
        "binsight_ingest_batches_total",
        "counter",
        "Database transactions by ingest.",
        [({}, batches)],
    )
    _metric(
        out,
        "binsight_ingest_db_errors_total",
        "counter",
        "Failed (retried) ingest transactions.",
        [({}, errors)],
    )
    _metric(
        out,
        "binsight_ingest_data_errors_total",
        "counter",
        "Ingest transactions the database refused for their data (split; refused messages: db_refused).",
        [({}, data_errors)],
    )
    _metric(
        out,
        "binsight_ingest_failures_in_a_row",
        "gauge",
        "Failed attempts in a row at the current batch (0: committing).",
        [({}, failing)],
    )
