"""Deep and long paths, and a watcher thread that dies: limits are enforced with a reason, the service
never goes deaf (issue 12, item 7).  Real service as a subprocess."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import write_raw
from harness import Daemon, drop

DEEP = 1100  # levels: os.walk recursion killed watchdog's inotify thread at this depth


@pytest.fixture()
def deep_trees():
    """Trees too deep or too long for absolute paths are made with dir fds, and removed here with
    ``rm -rf`` (shutil.rmtree recurses and fails at ~1,000 levels), before pytest's tmp cleanup."""
    made: list[Path] = []

    def make(top: Path, names: list[str], file: Path | None = None) -> list[str]:
        """Folders ``top/names[0]/names[1]/...``; ``file``'s bytes written at the bottom; returns the path
        parts below ``top``."""
        top.mkdir(parents=True, exist_ok=True)
        made.append(top)
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for name in names:
                os.mkdir(name, dir_fd=fd)
                below = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = below
            if file is not None:
                out = os.open(file.name + ".part", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(out, file.read_bytes())
                os.close(out)
                os.rename(file.name + ".part", file.name, src_dir_fd=fd, dst_dir_fd=fd)
        finally:
            os.close(fd)
        return names

    yield make
    for top in made:
        subprocess.run(["rm", "-rf", str(top)], check=True)
        assert not top.exists()


def _folder_rows(daemon: Daemon) -> list[dict]:
    return [f for f in daemon.quick_status()["files"] if f["kind"] == "folder"]


def _alive_and_ingesting(daemon: Daemon, tmp_path: Path, visit: int, ingested: int) -> None:
    drop(write_raw(tmp_path / "src", visit=visit), daemon.incoming)
    daemon.wait_files("ingested", ingested, timeout=60)
    assert daemon.alive()


def test_a_tree_1100_levels_deep_is_recorded_and_the_service_keeps_watching(tmp_path, deep_trees):
    """A folder 1,100 levels deep under the drop folder: watchdog's thread survives it (no watcher_died),
    rescans do not crash, the folder one level deeper than watch.max_depth is recorded with path_limit
    (status and log), files dropped afterwards are ingested, and a restart works and records nothing twice."""
    daemon = Daemon(tmp_path / "svc", watch={"rescan_interval": 2.0, "max_depth": 64})
    daemon.start()
    shallow = write_raw(tmp_path / "files", visit=1300)
    deep_trees(daemon.incoming / "deep", ["d"] * DEEP, write_raw(tmp_path / "bottom", visit=1301))
    deep_trees(daemon.incoming / "shallow", ["s"] * 10, shallow)
    expected = str(daemon.incoming / "deep" / os.sep.join(["d"] * 64))  # 65 levels below incoming
    status = daemon.wait_until(lambda s: any(f["kind"] == "folder" for f in s["files"]), 60,
                               what="the deep folder recorded")
    [row] = [f for f in status["files"] if f["kind"] == "folder"]
    assert (row["path"], row["error_kind"], row["state"]) == (expected, "path_limit", "pending")
    assert "watch.max_depth = 64" in row["error"]
    assert {e["path"] for e in daemon.events("folder_unreadable")} == {expected}  # and its retries (backoff)
    passes = len(daemon.events("rescan_done"))
    deadline = time.monotonic() + 60
    while len(daemon.events("rescan_done")) < passes + 2:  # two more passes over the deep tree
        assert time.monotonic() < deadline and daemon.alive(), daemon.log()[-3000:]
        time.sleep(0.2)
    _alive_and_ingesting(daemon, tmp_path, 1302, 2)  # shallow's file and this one
    log = daemon.log()
    assert not daemon.events("watcher_died") and "RecursionError" not in log and "Traceback" not in log
    assert daemon.stop() == 0
    daemon.start()
    _alive_and_ingesting(daemon, tmp_path, 1303, 3)
    assert len(_folder_rows(daemon)) == 1
    assert 1301 not in {r.dataId["visit"] for r in daemon.datasets()}
    assert "cannot join thread" not in daemon.log()
    assert daemon.stop() == 0


def test_a_path_longer_than_path_max_is_recorded_and_never_stalls(tmp_path, deep_trees):
    """Folders whose path passes PATH_MAX (4096 bytes): the folder holding the name that would be too long
    is recorded once with path_limit, the watchdog pings go on, other files are ingested, and a restart works."""
    daemon = Daemon(tmp_path / "svc", watch={"rescan_interval": 2.0})
    names = [f"{i:03d}" + "x" * 196 for i in range(25)]  # 25 x 200 bytes: past 4096 at level ~20
    deep_trees(daemon.incoming / "long", names, write_raw(tmp_path / "bottom", visit=1311))
    daemon.start(env={"WATCHDOG_USEC": "500000", "WATCHDOG_PID": ""})
    reading = threading.Event()
    reading.set()

    def read_notifications() -> None:  # as systemd does: a full socket would block the service's pings
        while reading.is_set():
            daemon.poll_notify()

    reader = threading.Thread(target=read_notifications, daemon=True)
    reader.start()
    try:
        status = daemon.wait_until(lambda s: any(f["kind"] == "folder" for f in s["files"]), 60,
                                   what="the long path recorded")
        [row] = [f for f in status["files"] if f["kind"] == "folder"]
        assert row["error_kind"] == "path_limit" and "4095 bytes" in row["error"], row
        assert len(os.fsencode(row["path"])) < 4096
        passes = len(daemon.events("rescan_done"))
        deadline = time.monotonic() + 60
        while len(daemon.events("rescan_done")) < passes + 2:  # two more passes over the long tree
            assert time.monotonic() < deadline and daemon.alive(), daemon.log()[-3000:]
            time.sleep(0.2)
        pings = sum("WATCHDOG=1" in m for m in list(daemon.messages))
        _alive_and_ingesting(daemon, tmp_path, 1312, 1)
        time.sleep(2)
        assert sum("WATCHDOG=1" in m for m in list(daemon.messages)) > pings + 1
    finally:
        reading.clear()
        reader.join()
    assert len(_folder_rows(daemon)) == 1 and "Traceback" not in daemon.log()
    assert daemon.stop() == 0
    daemon.start()
    _alive_and_ingesting(daemon, tmp_path, 1313, 2)
    assert len(_folder_rows(daemon)) == 1
    assert daemon.stop() == 0


def test_a_watcher_thread_that_dies_is_restarted(tmp_path):
    """The watchdog observer thread dies on its first event (fault point watch.event): the service notices,
    logs watcher_died, starts a new watcher, and files dropped afterwards are ingested from their events
    (the periodic rescan is an hour away)."""
    daemon = Daemon(tmp_path / "svc", watch={"rescan_interval": 3600.0})
    marker = tmp_path / "died"
    daemon.start(env={"PFSWATCHD_FAULT": "watch.event", "PFSWATCHD_FAULT_MARKER": str(marker)})
    drop(write_raw(tmp_path / "src", visit=1320), daemon.incoming)  # the event that kills the thread
    deadline = time.monotonic() + 30
    while not daemon.events("watcher_restarted"):
        assert time.monotonic() < deadline, daemon.log()[-3000:]
        time.sleep(0.1)
    [died] = daemon.events("watcher_died")
    assert "has died" in died["reason"]
    daemon.wait_files("ingested", 1, timeout=60)  # found by the rescan that follows a restart
    passes = len(daemon.events("rescan_done"))
    drop(write_raw(tmp_path / "src", visit=1321), daemon.incoming)
    daemon.wait_files("ingested", 2, timeout=30)
    assert len(daemon.events("rescan_done")) == passes  # by its event: the new watcher hears
    assert daemon.alive() and daemon.stop() == 0
