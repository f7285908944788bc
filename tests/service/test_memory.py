"""What the running service keeps in memory does not grow with the files it ingests."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from harness import Daemon, burst_files

REGISTRY_CACHE = re.compile(r"engine \S*gen3\.sqlite3: (\d+) compiled statements cached, (\d+) of them of temporary")


def _report(daemon: Daemon, trace: Path, number: int, timeout: float = 60) -> str:
    """Ask the service for its memory report (SIGUSR2) and return report ``number``."""
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGUSR2)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        reports = trace.read_text().split("=== report ")[1:] if trace.exists() else []
        if len(reports) >= number:
            return reports[number - 1]
        time.sleep(0.2)
    raise AssertionError(f"no memory report {number} within {timeout}s\n{daemon.log()[-3000:]}")


def test_the_registry_caches_no_statement_of_a_temporary_table_over_many_batches(tmp_path):
    """Every batch inserts through a temporary table of a new name; SQLAlchemy kept each of its
    statements compiled, 500 of them, so the service grew with every batch until ~45,000 files."""
    daemon = Daemon(tmp_path / "svc")
    trace = tmp_path / "memtrace.txt"
    files = burst_files(tmp_path / "src", tmp_path / "templates", 120)
    daemon.start(env={"PFSWATCHD_MEMTRACE": str(trace)})
    counts = []
    for number, half in enumerate((files[:60], files[60:]), start=1):
        for path in half:  # a few at a time: many batches, each with its own temporary table
            os.rename(path, daemon.incoming / path.name)
            time.sleep(0.05)
        daemon.wait_files("ingested", 60 * number, timeout=180)
        found = REGISTRY_CACHE.search(_report(daemon, trace, number))
        assert found is not None, trace.read_text()
        counts.append((int(found[1]), int(found[2])))
    batches = daemon.events("batch_ingested")
    assert len(batches) >= 10, [b["files"] for b in batches]  # 30+ statements of temporary tables were compiled
    assert [temporary for _, temporary in counts] == [0, 0], counts
    assert 0 < counts[1][0] <= 450, counts  # statements used again are cached, at most 1.5 x its size
    assert daemon.stop() == 0
