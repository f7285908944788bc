"""The monitor the service's main loop drives: visits, the hook, alerts, metrics and the endpoint.

``tick()`` is called at every turn of the main loop and returns at once unless ``monitor.interval``
has passed; then it takes one look (monitor/tracker.py), checks the alerts, pings the ledger and the
registry, and publishes a new snapshot for the HTTP thread.  Hooks are polled at every turn (a
``poll()`` per running hook).  A failure here is logged and never stops ingest.

A look costs the main loop a few hundred milliseconds when many visits changed, and it is taken on
the main loop (it reads and writes the ledger the pipeline writes).  So while the pipeline is busy
(``tick(busy=True)``: the step just done had files to look at, or hints are queued), the look waits,
for at most ``BUSY_DEFER`` intervals: a burst of a night's files is ingested first, and the
snapshot, the alerts and the visit hooks are never more than two intervals late (the endpoint calls
a snapshot stale only after three).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pfswatchd.config import Config
from pfswatchd.monitor import alerts as alert_rules
from pfswatchd.monitor.hook import HookRunner
from pfswatchd.monitor.http import Endpoint
from pfswatchd.monitor.metrics import Metrics
from pfswatchd.monitor.snapshot import RATE_SPAN, Alert, RateCounter, Snapshot
from pfswatchd.monitor.tracker import Look, VisitTracker, latest
from pfswatchd.state.ledger import Ledger

RECENT_ERRORS = 10
BUSY_DEFER = 2.0  # while the pipeline is busy, a look waits at most this many intervals


class Monitor:
    def __init__(self, config: Config, ledger: Ledger, log: Any, *, butler_metrics: Any = None,
                 ping_registry: Callable[[], None] | None = None, hints_queued: Callable[[], int] | None = None
                 ) -> None:
        self.config = config
        self.ledger = ledger
        self.log = log
        self.ping_registry = ping_registry
        self.hints_queued = hints_queued
        cfg = config.monitor
        self.tracker = VisitTracker(ledger, cfg.default_cameras, hook=bool(cfg.hook.command), log=log)
        self.hooks = HookRunner(ledger, cfg.hook.command, timeout=cfg.hook.timeout, parallel=cfg.hook.parallel,
                                repo=config.repository.root, log=log)
        self.snapshot = Snapshot(taken_at=time.time(), instance=ledger.instance)
        self.metrics = Metrics(lambda: self.snapshot, butler_metrics, self.last_turn_age)
        self.rate = RateCounter()
        self.raised: dict[str, Alert] = {}
        self.alerted: set[int] = set()
        self.endpoint: Endpoint | None = None
        self._turned = time.monotonic()
        self._next = 0.0
        # Files per state and visits complete/incomplete, as last counted by count() (see there).
        self._counted: tuple[dict[str, int], dict[str, int]] | None = None

    # -- lifecycle (main loop) -------------------------------------------------------------------

    def start(self) -> None:
        now = time.time()
        for visit in self.ledger.interrupt_abandoned_hooks(now):
            self.log.warning("visit_hook_interrupted", visit=visit,
                             reason="the service stopped while the hook ran; it is not run again")
        self.alerted = self.ledger.alerted_visits()
        self.rate.seed(self.ledger.ingested_times(now - RATE_SPAN))
        self._look(self.tracker.start())
        self._next = time.monotonic() + self.config.monitor.interval  # the first tick does not look again
        http = self.config.monitor.http
        if http.enabled:
            self.endpoint = Endpoint(http.address, http.port, metrics=self.metrics, snapshot=lambda: self.snapshot,
                                     last_turn_age=self.last_turn_age,
                                     stale_after=max(30.0, 3 * self.config.monitor.interval))
            self.endpoint.start()
            self.log.info("http_listening", address=http.address, port=self.endpoint.port,
                          url=f"http://{_host(http.address)}:{self.endpoint.port}/")

    def tick(self, busy: bool = False) -> None:
        """One turn of the main loop; ``busy``: the pipeline has work in hand (the look may wait)."""
        self._turned = time.monotonic()
        try:
            interval = self.config.monitor.interval
            catching_up = self.tracker.behind and not busy  # a restart's backlog: a slice each idle turn
            if not catching_up and (
                    self._turned < self._next or (busy and self._turned < self._next + (BUSY_DEFER - 1) * interval)):
                if self.hooks.running:
                    self.hooks.tick()
                return
            self._next = self._turned + interval
            self.hooks.tick()
            self._look(self.tracker.look())
        except Exception as exc:  # the ledger may be away: the service's loop deals with that; we report it
            self.snapshot = replace(self.snapshot, ledger_ok=False, checked_at=time.time())
            self.log.warning("monitor_failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    def close(self) -> None:
        self.hooks.close()
        if self.endpoint is not None:
            self.endpoint.close()

    def count(self) -> None:
        """Count files per state and visits complete and incomplete, for the snapshots and the STATUS line.

        The service calls this in its status thread, never on the main loop: over two million rows the
        count reads a whole index (a few tenths of a second), which a file that just arrived must not wait
        for.  The counts the snapshot shows are the last ones counted (a few seconds old at most).
        """
        try:
            self._counted = (self.ledger.counts(), self.ledger.visit_counts())
        except Exception as exc:  # the ledger may be away: the look reports that; the counts are kept
            self.log.debug("count_failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    @property
    def behind(self) -> bool:
        """A restart's backlog of visits is still being summarised (a slice at each idle turn)."""
        return self.tracker.behind

    def last_turn_age(self) -> float:
        return time.monotonic() - self._turned

    # -- the pipeline's observer -----------------------------------------------------------------

    def file_done(self, state: str, kind: str | None, error_kind: str | None, seen_seconds: float | None,
                  complete_seconds: float | None) -> None:
        self.metrics.file_done(state, kind, error_kind, seen_seconds, complete_seconds)
        if state in ("ingested", "duplicate"):
            self.rate.add(time.time())

    def examined(self, seconds: float) -> None:
        self.metrics.examined(seconds)

    def archive_done(self, outcome: str) -> None:
        self.metrics.archive_done(outcome)

    # -- the look --------------------------------------------------------------------------------

    def _look(self, look: Look) -> None:
        now = time.time()
        cfg = self.config.monitor
        for summary in look.completed:
            if summary.visit in self.alerted:
                self.alerted.discard(summary.visit)
                self.log.info("visit_incomplete_cleared", visit=summary.visit)
        found = alert_rules.evaluate(self.ledger, cfg, now)
        self._visit_alerts(now)
        self._announce(found)
        registry_ok = True
        if self.ping_registry is not None:
            try:
                self.ping_registry()
            except Exception as exc:
                registry_ok = False
                self.log.warning("registry_unavailable", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
        self.ledger.ping()
        oldest = self.ledger.oldest_unfinished()
        counts, visit_counts = self._counted or (self.snapshot.counts, self.snapshot.visit_counts)
        self.snapshot = Snapshot(
            taken_at=now, counts=counts, oldest_pending_age=None if oldest is None else now - oldest,
            hints_queued=self.hints_queued() if self.hints_queued else 0,
            visits=latest(self.ledger, cfg.page_visits, cfg.default_cameras),
            visit_counts=visit_counts, alerts=tuple(found),
            recent_errors=self.ledger.recent_errors(RECENT_ERRORS), archives_active=self.ledger.active_archives(),
            rate=self.rate.series(now), ledger_ok=True, registry_ok=registry_ok, checked_at=now,
            instance=self.ledger.instance)

    def _visit_alerts(self, now: float) -> None:
        after = self.config.monitor.visit_incomplete_after
        if not after:
            return
        late = [row for row in self.ledger.incomplete_visits(now - after, unalerted=True)
                if row["visit"] not in self.alerted]
        for row in late:
            self.log.warning("visit_incomplete", visit=row["visit"], instrument=row["instrument"],
                             missing=[m for m in (row["missing"] or "").split(",") if m],
                             reason=alert_rules.describe_visit(row), after_seconds=after)
        if late:
            self.ledger.set_alerted([row["visit"] for row in late], now)
            self.alerted.update(row["visit"] for row in late)

    def _announce(self, found: list[Alert]) -> None:
        current = {alert.name: alert for alert in found}
        for name, alert in current.items():
            if name not in self.raised:
                self.log.warning("alert_raised", alert=name, count=alert.count, message=alert.message,
                                 items=list(alert.items))
        for name in set(self.raised) - set(current):
            self.log.info("alert_cleared", alert=name)
        self.raised = current

    def status_line(self) -> str:
        """The systemd STATUS line: files per state, then the alerts raised."""
        snap = self.snapshot
        counts = self._counted[0] if self._counted is not None else snap.counts
        line = ", ".join(f"{state} {count}" for state, count in sorted(counts.items())) or "no files yet"
        if not snap.ledger_ok and snap.checked_at:
            line = "ledger unavailable"
        if snap.alerts:
            line += "; ALERT " + "; ".join(f"{a.name} {a.count}" for a in snap.alerts)
        return line


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
