"""Keeps the visits table in step with the files: what changed since the last look, summarised per visit.

Each look reads the raw and pfsConfig rows written since the previous one (an indexed range on
``updated_at``, re-reading a margin so that a row another instance committed late is not missed),
summarises the visits they belong to from all of their rows, writes the summaries that changed, and
marks the visits that are complete for the first time.  After a restart it picks up where the visits
table was last written (the visits of the files changed shortly before are summarised again, a slice
per look, so that READY never waits on them); a ledger without visit summaries is summarised once,
visit by visit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pfswatchd.files.names import parse_name
from pfswatchd.monitor.visits import PFSCONFIG, VisitSummary, group_by_visit, summarize
from pfswatchd.state.ledger import Ledger
from pfswatchd.state.visitledger import HOOK_BEFORE, HOOK_DUE, HOOK_OFF

MARGIN = 30.0  # seconds of rows read again at each look
RESTART_MARGIN = 300.0  # ... and after a restart
BATCH = 500  # visits summarised at once when a whole ledger is read
CATCH_UP = 20  # visits of a restart's backlog summarised at once: READY never waits on them, ...
CATCH_UP_SECONDS = 0.05  # ... and a look goes on with more for this long at most (a file that arrives
# meanwhile waits for that; behind 200 visits at once, files waited ~0.38 s at 2,000,000 rows: bench_scale)
HISTORY_WINDOW = 86400.0  # seconds of an upgraded ledger's files summarised at its first start


@dataclass(slots=True)
class Look:
    """What one look found."""

    summaries: dict[int, VisitSummary] = field(default_factory=dict)  # the visits touched
    completed: list[VisitSummary] = field(default_factory=list)  # complete for the first time (by this instance)

    def add(self, other: Look) -> None:
        """Take in what another look found."""
        self.summaries.update(other.summaries)
        self.completed.extend(other.completed)


class VisitTracker:
    def __init__(self, ledger: Ledger, default_cameras: Sequence[str], *, hook: bool, log: Any) -> None:
        self.ledger = ledger
        self.default = tuple(default_cameras)
        self.hook = hook
        self.log = log
        self.mark: float | None = None
        self.history_before: float | None = None
        self.backlog: list[int] = []  # visits to summarise again after a restart, newest first
        self._seen: dict[str, float] = {}  # path -> updated_at of the rows inside the margin, as last read

    @property
    def behind(self) -> bool:
        """Visits of a restart's backlog are still to be summarised (a look each turn takes some)."""
        return bool(self.backlog)

    def start(self) -> Look:
        """The first look of this process: from the last summary written, or the whole ledger."""
        self.history_before = self.ledger.history_before()
        mark = self.ledger.visits_watermark()
        began = time.time()
        if mark is not None:
            # The visits of the files changed since shortly before the last summary was written are
            # summarised again, a slice per look (CATCH_UP_SECONDS), newest first: after a burst that margin can hold
            # tens of thousands of files, and the service must not wait on them to become ready.
            self.backlog = self.ledger.changed_visit_numbers(mark - RESTART_MARGIN)
            self.mark = began - MARGIN
            return self.look()
        # Rows recorded before names gave them a visit get their name's visit (found by visit from now on).
        unnamed = {path: visit for path in self.ledger.unnamed_visit_files()
                   if (visit := parse_name(path).visit) is not None}
        if unnamed:
            self.ledger.name_visits(unnamed)
        if self.history_before is not None:
            # The first start on a ledger from before visits were tracked: the visits of the last day are
            # summarised now; older ones are history, summarised when one of their files changes.  (All of
            # a large ledger, visit by visit, could keep the service from becoming ready for minutes.)
            self.mark = began - HISTORY_WINDOW
            look = self.look()
        else:
            look = self._whole_ledger()  # a ledger that had the table from the start: no more than a crash left
        self.mark = began - MARGIN
        return look

    def look(self) -> Look:
        assert self.mark is not None, "start() first"
        began, started = time.time(), time.monotonic()
        rows = self.ledger.changed_files(self.mark)
        # The margin's rows were summarised by the previous look: only a row new or written again since
        # (another updated_at) makes its visit be summarised again.  And the mark follows the clock, not
        # the newest row: it once stayed MARGIN before the last row written, so a service idle after a
        # burst read and summarised the burst's last 30 s of files (18,000 rows at 600 files/s, 1,500
        # visits) at every look, all day: 30% of a CPU and 19 MiB allocated and freed every 5 s
        # (bench_scale, 200,000 files).  A row another instance commits late is still read if it
        # commits within MARGIN of its updated_at (the instances' clocks agree within seconds: NTP).
        fresh = [row for row in rows if self._seen.get(row["path"]) != row["updated_at"]]
        self.mark = max(self.mark, began - MARGIN)
        self._seen = {row["path"]: row["updated_at"] for row in rows if row["updated_at"] > self.mark}
        numbers = set(group_by_visit(fresh).keys())
        look = self._summarise(numbers | self._backlog_slice())
        while self.backlog and time.monotonic() - started < CATCH_UP_SECONDS:
            look.add(self._summarise(self._backlog_slice()))
        return look

    def _backlog_slice(self) -> set[int]:
        """The next CATCH_UP visits of a restart's backlog (newest first), taken off it."""
        taken = set(self.backlog[:CATCH_UP])
        del self.backlog[:CATCH_UP]
        return taken

    def _whole_ledger(self) -> Look:
        numbers = self.ledger.all_visit_numbers()
        total = Look()
        for start in range(0, len(numbers), BATCH):
            total.add(self._summarise(numbers[start : start + BATCH]))
        if numbers:
            self.log.info("visits_summarised", visits=len(numbers), complete=sum(
                1 for s in total.summaries.values() if s.complete))
        return total

    def _summarise(self, numbers: Iterable[int]) -> Look:
        wanted = sorted(set(numbers))
        look = Look()
        if not wanted:
            return look
        rows = group_by_visit(self.ledger.visit_files(wanted))
        records = self.ledger.visit_records(wanted)
        changed = []
        for visit in wanted:
            summary = summarize(visit, rows.get(visit, []), records.get(visit), self.default)
            look.summaries[visit] = summary
            if _differs(summary, records.get(visit)):
                changed.append(_row(summary))
        now = time.time()
        self.ledger.save_visits(changed, now)
        open_visits = [look.summaries[v] for v in wanted if not (records.get(v) or {}).get("complete_at")]
        history = [s.visit for s in open_visits if self._history(rows.get(s.visit, []))]
        fresh = [s for s in open_visits if s.complete and s.visit not in history]
        if history:
            self.ledger.mark_complete(history, HOOK_BEFORE, now)
        if fresh:
            won = set(self.ledger.mark_complete([s.visit for s in fresh], HOOK_DUE if self.hook else HOOK_OFF, now))
            for summary in fresh:
                if summary.visit in won:
                    look.completed.append(summary)
                    self.log.info("visit_complete", visit=summary.visit, instrument=summary.instrument,
                                  data_id={"instrument": summary.instrument, "visit": summary.visit},
                                  cameras=list(summary.expected), expected_from=summary.expected_from,
                                  seconds=round(now - summary.first_seen_at, 3))
        return look

    def _history(self, rows: Sequence[Mapping[str, Any]]) -> bool:
        """A visit whose files all last changed before the ledger tracked visits (an upgraded ledger): it is
        history, done as it is, with no hook and no incomplete alert (its pfsConfig's cameras were never
        recorded, so it would be measured against the default set).  Its grid still shows every camera."""
        if self.history_before is None or not rows:
            return False
        return max(float(row["updated_at"]) for row in rows) < self.history_before


def _row(summary: VisitSummary) -> dict[str, Any]:
    return {"visit": summary.visit, "instrument": summary.instrument, "first_seen_at": summary.first_seen_at,
            "cameras": {**{name: [cell.state, cell.reason] for name, cell in summary.cameras.items()},
                        PFSCONFIG: [summary.pfsconfig.state, summary.pfsconfig.reason]},
            "pfsconfig": summary.pfsconfig.state if summary.pfsconfig.state != "missing" else None,
            "missing": summary.missing, "complete": summary.complete}


def _differs(summary: VisitSummary, record: Mapping[str, Any] | None) -> bool:
    if record is None:
        return True
    row = _row(summary)
    stored = json.loads(record["cameras"]) if record.get("cameras") else None
    return (stored != row["cameras"] or record.get("pfsconfig") != row["pfsconfig"]
            or (record.get("missing") or "") != ",".join(row["missing"]) or bool(record.get("complete"))
            != row["complete"] or record.get("instrument") != row["instrument"])



def latest(ledger: Ledger, limit: int, default: Sequence[str]) -> list[VisitSummary]:
    """The ``limit`` newest visits (highest numbers first), summarised from their files now."""
    numbers = ledger.latest_visit_numbers(limit)
    rows = group_by_visit(ledger.visit_files(numbers))
    records = ledger.visit_records(numbers)
    return [summarize(visit, rows.get(visit, []), records.get(visit), default) for visit in numbers]
