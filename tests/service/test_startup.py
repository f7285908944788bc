"""What the service's start waits for, and what it does not: the examiner's workers, the rescan's priority."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import write_raw
from harness import Daemon, burst_files, drop
from pfswatchd.service.examiner import EARLY
from pfswatchd.service.rescan import NICE


def _wait_events(daemon: Daemon, name: str, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while not (found := daemon.events(name)):
        assert daemon.alive() and time.monotonic() < deadline, f"no {name} event: {daemon.log()[-3000:]}"
        time.sleep(0.1)
    return found


def test_ready_and_the_first_files_do_not_wait_for_the_examiner_workers(tmp_path):
    """The examiner's fork server held in its imports (fault point forkserver.preload, 30 s): READY comes,
    a file and a burst larger than EARLY are ingested (examined in the main thread, the rest held for the
    workers); the workers come up later and examine what follows."""
    daemon = Daemon(tmp_path / "svc")
    daemon.settings["ingest"]["examine_workers"] = 2
    daemon.write_config()
    marker = tmp_path / "preloading"
    daemon.start(wait_ready=False, env={"PFSWATCHD_FAULT": "forkserver.preload",
                                        "PFSWATCHD_FAULT_MARKER": str(marker), "PFSWATCHD_FAULT_SECONDS": "30"})
    daemon.wait_notify("READY=1", timeout=90)
    # The fork server is a new interpreter: on a loaded machine READY can come before it reaches its
    # imports at all (READY not waiting for it is the point), so its pause is waited for, not assumed.
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and daemon.alive(), f"the fork server never paused: {daemon.log()[-3000:]}"
        time.sleep(0.05)
    assert time.time() - marker.stat().st_mtime < 20 and daemon.events("examiner_started") == []  # still held
    first = drop(write_raw(tmp_path / "src", visit=330), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=20)
    assert time.time() - marker.stat().st_mtime < 28 and daemon.events("examiner_started") == [], daemon.log()[-3000:]
    burst = burst_files(tmp_path / "burst", tmp_path / "templates", EARLY + 20, first_visit=331)
    for path in burst:
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_files("ingested", 1 + len(burst), timeout=120)
    [started] = _wait_events(daemon, "examiner_started", timeout=60)
    assert started["workers"] == 2
    ingested = daemon.events("file_ingested")
    assert ingested[0]["path"] == str(first)
    late = drop(write_raw(tmp_path / "src2", visit=340), daemon.incoming)
    daemon.wait_files("ingested", 2 + len(burst), timeout=30)
    assert str(late) in {f["path"] for f in daemon.quick_status()["files"] if f["state"] == "ingested"}
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, wanted = [], [pid]
    while wanted:
        parent = wanted.pop()
        children = [child for child, p in parents.items() if p == parent]
        found += children
        wanted += children
    return found


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_rescan_worker_runs_niced_and_the_examiners_do_not(tmp_path):
    """On two busy cores a rescan pass must not take the core a new file needs: its worker runs NICE steps
    below the service, the examiner's workers at the service's priority."""
    daemon = Daemon(tmp_path / "svc")
    daemon.settings["ingest"]["examine_workers"] = 2
    daemon.write_config()
    daemon.start()
    drop(write_raw(tmp_path / "src", visit=350), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=60)
    _wait_events(daemon, "rescan_done", timeout=60)
    _wait_events(daemon, "examiner_started", timeout=60)
    base = _nice(daemon.process.pid)
    nices = sorted(_nice(pid) for pid in _descendants(daemon.process.pid))
    # The fork server, the resource tracker and two examiner workers at the service's priority; one rescan worker.
    assert nices.count(min(19, base + NICE)) == 1 and nices.count(base) >= 3, nices
    assert daemon.stop() == 0
