"""/metrics: the service's counters and histograms, and gauges read from the latest snapshot.

Counters and histograms count what this process did since it started (Prometheus' ``rate()`` and
``increase()`` handle restarts); gauges say what the ledger holds (files per state, visits, alerts).
The butler's own time comes from daf_butler's ``ButlerMetrics`` of the service's butler.
Everything lives in a registry of its own, not prometheus-client's global one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pfswatchd.monitor.snapshot import ALERTS, Snapshot
from pfswatchd.state.ledgerdb import ArchiveState, FileState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, float("inf"))
_DONE = {FileState.INGESTED.value, FileState.DUPLICATE.value}


class Metrics:
    """The pipeline's observer (file_done, examined, archive_done) and the /metrics page."""

    def __init__(self, snapshot: Callable[[], Snapshot], butler_metrics: Any = None,
                 last_turn_age: Callable[[], float] | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the page and say nothing an operator needs
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.files = Counter("pfswatchd_files", "Files that reached a final state in this process, by state and "
                             "file kind (ingested, duplicate, ignored, failed, quarantined)", ["state", "kind"],
                             registry=r)
        self.failures = Counter("pfswatchd_file_failures", "Files that failed permanently, by error kind",
                                ["error_kind"], registry=r)
        self.retries = Counter("pfswatchd_file_retries", "Transient failures scheduled for a retry, by error kind",
                               ["error_kind"], registry=r)
        self.archives = Counter("pfswatchd_archives", "Archive outcomes: published, operator (STARS2 bundle left "
                                "to the operator), failed, quarantined, retry", ["outcome"], registry=r)
        self.ingest_latency = Histogram("pfswatchd_ingest_latency_seconds", "From a file being whole and "
                                        "classified to its outcome recorded in the ledger", registry=r,
                                        buckets=LATENCY_BUCKETS)
        self.seen_latency = Histogram("pfswatchd_seen_to_done_seconds", "From a file first seen to its outcome "
                                      "recorded in the ledger", registry=r, buckets=LATENCY_BUCKETS)
        self.examine_latency = Histogram("pfswatchd_examine_latency_seconds", "From a file settled to its "
                                         "headers read and classified (examiner workers)", registry=r,
                                         buckets=LATENCY_BUCKETS)
        r.register(_SnapshotCollector(snapshot, butler_metrics, last_turn_age))
        self._children: dict[tuple[str, ...], Any] = {}

    # -- the observer (main loop) ----------------------------------------------------------------

    def file_done(self, state: str, kind: str | None, error_kind: str | None, seen_seconds: float | None,
                  complete_seconds: float | None) -> None:
        if state == FileState.PENDING.value:
            if error_kind:
                self._child(self.retries, error_kind).inc()
            return
        if state == FileState.WAITING.value:
            return
        self._child(self.files, state, kind or "unknown").inc()
        if state in (FileState.FAILED.value, FileState.QUARANTINED.value):
            self._child(self.failures, error_kind or "unknown").inc()
        if state in _DONE:
            if complete_seconds is not None:
                self.ingest_latency.observe(complete_seconds)
            if seen_seconds is not None:
                self.seen_latency.observe(seen_seconds)

    def examined(self, seconds: float) -> None:
        self.examine_latency.observe(seconds)

    def archive_done(self, outcome: str) -> None:
        self._child(self.archives, outcome).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the page (HTTP thread) ------------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], butler_metrics: Any,
                 last_turn_age: Callable[[], float] | None) -> None:
        self.snapshot = snapshot
        self.butler_metrics = butler_metrics
        self.last_turn_age = last_turn_age

    def describe(self) -> list[Metric]:
        return []  # families are created at each collect; nothing to check for duplicates

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        by_state = GaugeMetricFamily("pfswatchd_ledger_files", "Files in the ledger per state", labels=["state"])
        for state in FileState:
            by_state.add_metric([state.value], snap.counts.get(state.value, 0))
        yield by_state
        waiting = sum(snap.counts.get(name, 0) for name in (FileState.PENDING.value, FileState.INGESTING.value))
        yield GaugeMetricFamily("pfswatchd_queue_depth", "Files seen and not yet ingested or failed (pending or "
                                "being ingested)", value=waiting)
        yield GaugeMetricFamily("pfswatchd_hints_queued", "File events waiting for the main loop",
                                value=snap.hints_queued)
        yield GaugeMetricFamily("pfswatchd_oldest_pending_age_seconds", "Age of the oldest file not yet in a final "
                                "state (0 when there is none)", value=snap.oldest_pending_age or 0.0)
        visits = GaugeMetricFamily("pfswatchd_visits", "Visits the ledger knows, complete or not", labels=["state"])
        for done in ("complete", "incomplete"):
            visits.add_metric([done], snap.visit_counts.get(done, 0))
        yield visits
        active = {alert.name: alert for alert in snap.alerts}
        raised = GaugeMetricFamily("pfswatchd_alert", "1 while the alert is raised", labels=["alert"])
        items = GaugeMetricFamily("pfswatchd_alert_items", "How many things the alert is about", labels=["alert"])
        for name in ALERTS:
            raised.add_metric([name], 1 if name in active else 0)
            items.add_metric([name], active[name].count if name in active else 0)
        yield raised
        yield items
        archives = GaugeMetricFamily("pfswatchd_archives_in_progress", "Archives seen and not yet extracted")
        archives.add_metric([], sum(1 for a in snap.archives_active if a.get("state") in (
            ArchiveState.PENDING.value, ArchiveState.EXTRACTING.value)))
        yield archives
        yield GaugeMetricFamily("pfswatchd_snapshot_age_seconds", "Seconds since the main loop last published "
                                "what this page shows", value=max(0.0, time.time() - snap.taken_at))
        if self.last_turn_age is not None:
            yield GaugeMetricFamily("pfswatchd_main_loop_age_seconds", "Seconds since the main loop last turned",
                                    value=self.last_turn_age())
        yield GaugeMetricFamily("pfswatchd_ready", "1 when the ledger and the registry answered at the last check",
                                value=1 if snap.ledger_ok and snap.registry_ok else 0)
        m = self.butler_metrics
        if m is not None:
            seconds = CounterMetricFamily("pfswatchd_butler_seconds", "Wall-clock time the butler spent, from "
                                          "daf_butler's ButlerMetrics", labels=["operation"])
            count = CounterMetricFamily("pfswatchd_butler_datasets", "Datasets the butler handled, from "
                                        "daf_butler's ButlerMetrics", labels=["operation"])
            for operation in ("ingest", "get", "put"):
                seconds.add_metric([operation], float(getattr(m, f"time_in_{operation}", 0.0)))
                count.add_metric([operation], float(getattr(m, f"n_{operation}", 0)))
            yield seconds
            yield count

