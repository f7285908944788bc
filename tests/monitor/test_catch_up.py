"""After a restart, the visits of the files changed shortly before are summarised again a slice per look."""

from __future__ import annotations

import time

import structlog

from pfswatchd.monitor import tracker as tracker_module
from pfswatchd.monitor.tracker import CATCH_UP, VisitTracker
from pfswatchd.state.ledger import FileState, Ledger, Result, Seen

CAMERAS = ("b1", "r1")


def _ledger_with_visits(tmp_path, visits: int) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", instance="test")
    ledger.create()
    now = time.time() - 120  # ingested two minutes ago: before the margin a look reads again, inside a restart's
    paths = {f"/in/PFSA{visit:06d}11.fits": visit for visit in range(1000, 1000 + visits)}
    ledger.upsert_seen([Seen(path, "raw_ccd", 100, 1, i, visit=visit) for i, (path, visit) in enumerate(paths.items())],
                       now)
    ledger.record([Result(path=path, state=FileState.INGESTED, kind="raw_ccd", instrument="PFS", visit=visit,
                          data_id={"arm": "b", "spectrograph": 1}) for path, visit in paths.items()], now)
    return ledger


def test_a_restart_summarises_its_backlog_a_slice_per_look_newest_first(tmp_path, monkeypatch):
    monkeypatch.setattr(tracker_module, "CATCH_UP_SECONDS", 0.0)  # one slice per look
    visits = 2 * CATCH_UP + 7
    ledger = _ledger_with_visits(tmp_path, visits)
    first = VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger())
    assert len(first.start().summaries) == visits  # a ledger that had the table from the start: all at once
    assert not first.behind

    restarted = VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger())
    look = restarted.start()  # the files changed within RESTART_MARGIN of the last summary: a backlog
    assert len(look.summaries) == CATCH_UP and restarted.behind
    assert min(look.summaries) == 1000 + visits - CATCH_UP  # the newest visits first
    seen = set(look.summaries)
    while restarted.behind:
        seen |= set(restarted.look().summaries)
    assert seen == set(range(1000, 1000 + visits))  # every visit of the backlog, each summarised again
    assert restarted.look().summaries == {}  # and then only what changes


def test_without_a_backlog_a_restart_looks_only_at_what_changed(tmp_path, monkeypatch):
    ledger = _ledger_with_visits(tmp_path, 5)
    VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger()).start()
    monkeypatch.setattr(tracker_module, "RESTART_MARGIN", -3600.0)  # nothing changed near the last summary
    restarted = VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger())
    assert restarted.start().summaries == {} and not restarted.behind


def test_an_idle_service_summarises_nothing_again_and_stops_reading_the_margin(tmp_path, monkeypatch):
    """The mark once stayed MARGIN before the newest row: idle after a burst, every look read and
    summarised the burst's last MARGIN seconds of files again, all day."""
    ledger = _ledger_with_visits(tmp_path, 3)
    tracker = VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger())
    tracker.start()
    now = time.time()
    paths = {f"/in/PFSA{visit:06d}12.fits": visit for visit in (2000, 2001)}
    ledger.upsert_seen([Seen(path, "raw_ccd", 100, 1, 50 + i, visit=visit) for i, (path, visit) in
                        enumerate(paths.items())], now)
    ledger.record([Result(path=path, state=FileState.INGESTED, kind="raw_ccd", instrument="PFS", visit=visit,
                          data_id={"arm": "b", "spectrograph": 1}) for path, visit in paths.items()], now)
    assert set(tracker.look().summaries) == {2000, 2001}  # just written: summarised
    read = []
    changed_files = ledger.changed_files
    monkeypatch.setattr(ledger, "changed_files", lambda since: read.append(r := changed_files(since)) or r)
    assert tracker.look().summaries == {}  # inside the margin, read again, but not summarised again
    assert len(read[-1]) == 2
    ledger.record([Result(path="/in/PFSA00200012.fits", state=FileState.FAILED, kind="raw_ccd", instrument="PFS",
                          visit=2000, error_kind="bad_header", error="cut")], time.time())
    assert set(tracker.look().summaries) == {2000}  # a row written again: its visit, and only it
    monkeypatch.setattr(tracker_module.time, "time", lambda: now + tracker_module.MARGIN + 5)
    assert tracker.look().summaries == {}
    assert tracker.look().summaries == {} and read[-1] == []  # past the margin: the rows are not read again


def test_a_look_at_a_backlog_stops_after_its_time_slice(tmp_path, monkeypatch):
    """A look goes on with more of the backlog only for CATCH_UP_SECONDS: a file that arrives meanwhile
    waits for that, not for the whole backlog (200 visits at once took 0.38 s at 2,000,000 rows)."""
    visits = 10 * CATCH_UP
    ledger = _ledger_with_visits(tmp_path, visits)
    VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger()).start()
    restarted = VisitTracker(ledger, CAMERAS, hook=False, log=structlog.get_logger())
    slow = restarted._summarise

    def slower(numbers):
        time.sleep(0.02)  # a slice as slow as on a large ledger
        return slow(numbers)

    monkeypatch.setattr(restarted, "_summarise", slower)
    monkeypatch.setattr(tracker_module, "CATCH_UP_SECONDS", 0.05)
    began = time.monotonic()
    look = restarted.start()
    assert time.monotonic() - began < 0.05 + 2 * 0.02 + 0.05  # the slice, the one under way, the reads
    assert CATCH_UP < len(look.summaries) <= 4 * CATCH_UP and restarted.behind
    seen = set(look.summaries)
    while restarted.behind:
        seen |= set(restarted.look().summaries)
    assert seen == set(range(1000, 1000 + visits))
