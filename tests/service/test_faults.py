"""Fault injection: the environment fails for a while; the service waits, retries, and loses nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import write_raw
from harness import Daemon, burst_files, drop, obeying_file_modes


def _hold_exclusive_lock(database: Path, seconds: float, started: threading.Event) -> None:
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    started.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


@pytest.mark.parametrize("database", ["repo/gen3.sqlite3", "state/ledger.sqlite3"])
def test_database_locked_for_a_while(tmp_path, database):
    """The registry (or the ledger) is locked by another writer: the service waits, then ingests."""
    daemon = Daemon(tmp_path / "svc")
    daemon.start()
    started = threading.Event()
    locker = threading.Thread(target=_hold_exclusive_lock, args=(daemon.base / database, 4.0, started))
    locker.start()
    started.wait(10)
    began = time.monotonic()
    drop(write_raw(tmp_path / "src", visit=500), daemon.incoming)
    status = daemon.wait_files("ingested", 1, timeout=60)
    locker.join()
    assert time.monotonic() - began >= 3.0  # it really had to wait for the lock
    assert status["counts"]["failed"] == 0 and daemon.alive()
    assert daemon.stop() == 0


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def test_disk_full_in_the_datastore_then_freed(tmp_path):
    """No space for the copies: nothing partial is left, the files wait, and go in once there is room."""
    if os.geteuid() != 0:
        raise AssertionError("this test mounts a small tmpfs and must run as root (as CI does)")
    repo = tmp_path / "svc" / "repo"
    _mount_tmpfs(repo, "64m")
    try:
        daemon = Daemon(tmp_path / "svc", ingest={"transfer": "copy", "retry_initial": 0.5, "retry_max": 1.0})
        daemon.start()  # creates the repository
        # Shrink the filesystem to what the repository uses now plus 256 KiB: 40 raws (~2 MB) do not fit.
        used = os.statvfs(repo)
        used_kib = (used.f_blocks - used.f_bfree) * used.f_frsize // 1024
        subprocess.run(["mount", "-o", f"remount,size={used_kib + 256}k", str(repo)], check=True)
        files = burst_files(tmp_path / "src", tmp_path / "templates", 40, first_visit=8000)
        for path in files:
            os.rename(path, daemon.incoming / path.name)
        status = daemon.wait_until(lambda s: any(f["error_kind"] in ("disk_full", "database_unavailable")
                                                 for f in s["files"]), 60, what="a disk-full error")
        assert status["counts"]["failed"] == 0 and status["counts"]["quarantined"] == 0
        scratch = repo / ".pfswatchd-tmp"
        assert not scratch.exists() or list(scratch.iterdir()) == []  # no partial copy left behind
        subprocess.run(["mount", "-o", "remount,size=64m", str(repo)], check=True)
        daemon.wait_files("ingested", 40, timeout=120)
        assert len(daemon.datasets()) == 40
        stored = {p.name for p in repo.rglob("*.fits")}
        assert len(stored) == 40
        assert daemon.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(repo)], check=False)


def test_permission_denied_on_a_source_then_fixed(tmp_path):
    daemon = Daemon(tmp_path / "svc", ingest={"retry_initial": 0.3, "retry_max": 0.5})
    daemon.start(prefix=obeying_file_modes())
    locked = daemon.incoming / "PFSA00060011.fits"
    write_raw(tmp_path / "src", visit=600)
    locked.write_bytes((tmp_path / "src" / "PFSA00060011.fits").read_bytes())
    locked.chmod(0o000)
    drop(write_raw(tmp_path / "src", visit=601), daemon.incoming)
    # The other file is not held up by the unreadable one.
    status = daemon.wait_until(lambda s: s["counts"]["ingested"] == 1 and any(
        f["error_kind"] == "permission_denied" for f in s["files"]), 30, what="a permission_denied error")
    entry = next(f for f in status["files"] if f["error_kind"] == "permission_denied")
    assert entry["state"] == "pending" and "Permission denied" in entry["error"]
    locked.chmod(0o644)
    daemon.wait_files("ingested", 2, timeout=30)
    assert daemon.stop() == 0


def test_disk_full_in_the_staging_folder_then_freed(tmp_path):
    """An archive that does not fit while it is extracted leaves nothing behind and is retried later."""
    if os.geteuid() != 0:
        raise AssertionError("this test mounts a small tmpfs and must run as root (as CI does)")
    import tarfile

    extracted = tmp_path / "svc" / "extracted"
    _mount_tmpfs(extracted, "200k")
    try:
        daemon = Daemon(tmp_path / "svc", archives={"extract_to": "extracted"},
                        ingest={"retry_initial": 0.5, "retry_max": 1.0})
        daemon.start()
        files = burst_files(tmp_path / "src", tmp_path / "templates", 12, first_visit=8100)  # ~600 KB
        archive = tmp_path / "big.tar"
        with tarfile.open(archive, "w") as tar:
            for path in files:
                tar.add(path, arcname=f"raw/2025-05-01/sps/{path.name}")
        os.rename(archive, daemon.incoming / archive.name)
        status = daemon.wait_until(lambda s: s["archives"] and s["archives"][0]["error_kind"] == "disk_full", 60,
                                   what="a disk_full retry")
        assert status["archives"][0]["state"] in ("pending", "extracting")
        leftovers = [p for p in extracted.rglob("*") if p.is_file()]
        assert leftovers == []  # no partial file in staging or in the published folder
        subprocess.run(["mount", "-o", "remount,size=64m", str(extracted)], check=True)
        daemon.wait_files("ingested", 12, timeout=120)
        assert daemon.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(extracted)], check=False)
