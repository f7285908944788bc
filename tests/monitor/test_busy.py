"""The monitor's look waits while the pipeline is busy, for at most BUSY_DEFER intervals."""

from __future__ import annotations

import time
from pathlib import Path

import structlog

from pfswatchd.config import parse
from pfswatchd.monitor.monitor import BUSY_DEFER, Monitor
from pfswatchd.state.ledger import Ledger


def _monitor(tmp_path: Path, interval: float) -> Monitor:
    config = parse({"repository": {"root": "repo"}, "watch": {"paths": ["in"]}, "state": {"path": "state"},
                    "monitor": {"interval": interval}}, base=tmp_path, source=None)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", instance="test")
    ledger.create()
    monitor = Monitor(config, ledger, structlog.get_logger())
    monitor.start()
    return monitor


def test_a_busy_pipeline_delays_the_look_by_at_most_the_deferral(tmp_path):
    interval = 1.0
    monitor = _monitor(tmp_path, interval)
    monitor.tick()
    first = monitor.snapshot.checked_at
    assert first is not None
    time.sleep(interval * 1.2)
    monitor.tick(busy=True)  # an interval has passed, but a burst is being ingested: no look yet
    assert monitor.snapshot.checked_at == first
    time.sleep(interval * BUSY_DEFER)
    monitor.tick(busy=True)  # BUSY_DEFER intervals late: it looks, busy or not
    assert monitor.snapshot.checked_at > first


def test_an_idle_pipeline_looks_every_interval(tmp_path):
    interval = 1.0
    monitor = _monitor(tmp_path, interval)
    monitor.tick()
    first = monitor.snapshot.checked_at
    time.sleep(interval * 1.2)
    monitor.tick(busy=False)
    assert monitor.snapshot.checked_at > first
