"""What the main loop publishes for the HTTP thread: one frozen value, replaced whole at each look.

The HTTP thread reads only the latest snapshot (and a few plain numbers such as the time of the last
loop turn), never the ledger or the registry, so a scrape cannot slow ingest or see half an update.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pfswatchd.monitor.visits import VisitSummary

RATE_BUCKET = 600.0  # seconds per bar of the ingest-rate plot
RATE_SPAN = 6 * 3600.0  # hours shown


@dataclass(frozen=True, slots=True)
class Alert:
    name: str  # visits_incomplete | pfsconfig_waiting | files_pending | archives_stuck
    count: int
    message: str  # one line
    items: tuple[str, ...] = ()  # the oldest few: paths, or "visit 123: r2 (failed: ...)"


ALERTS = ("visits_incomplete", "pfsconfig_waiting", "files_pending", "archives_stuck")


@dataclass(frozen=True, slots=True)
class Snapshot:
    taken_at: float  # wall clock
    counts: Mapping[str, int] = field(default_factory=dict)  # files per state
    oldest_pending_age: float | None = None
    hints_queued: int = 0
    visits: Sequence[VisitSummary] = ()  # newest first, for the page
    visit_counts: Mapping[str, int] = field(default_factory=dict)  # complete, incomplete
    alerts: Sequence[Alert] = ()
    recent_errors: Sequence[Mapping[str, Any]] = ()
    archives_active: Sequence[Mapping[str, Any]] = ()
    rate: Sequence[tuple[float, int]] = ()  # (bucket start, files ingested)
    ledger_ok: bool = False
    registry_ok: bool = False
    checked_at: float = 0.0  # when the ledger and registry last answered (or failed to)
    instance: str = ""


class RateCounter:
    """Files ingested per RATE_BUCKET over the last RATE_SPAN, fed as they are recorded."""

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [start, count]

    def seed(self, times: Sequence[float]) -> None:
        for moment in sorted(times):
            self.add(moment)

    def add(self, moment: float, count: int = 1) -> None:
        start = moment - moment % RATE_BUCKET
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1] += count
        elif not self._buckets or self._buckets[-1][0] < start:
            self._buckets.append([start, count])
        else:  # an older moment (seeding out of order): find its bucket
            for bucket in self._buckets:
                if bucket[0] == start:
                    bucket[1] += count
                    break

    def series(self, now: float | None = None) -> list[tuple[float, int]]:
        """Every bucket of the span, oldest first, zero where nothing was ingested."""
        now = time.time() if now is None else now
        last = now - now % RATE_BUCKET
        first = last - RATE_SPAN + RATE_BUCKET
        while self._buckets and self._buckets[0][0] < first:
            self._buckets.popleft()
        found = {start: int(count) for start, count in self._buckets}
        steps = int(RATE_SPAN // RATE_BUCKET)
        return [(first + i * RATE_BUCKET, found.get(first + i * RATE_BUCKET, 0)) for i in range(steps)]
