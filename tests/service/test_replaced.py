"""Files replaced, removed or failed at the worst moment: what is placed is what was examined, a move
removes only what it placed, and every file is findable from the ledger after a kill at any moment.

Each race is driven by a fault point (pfswatchd/faults.py): the real service, as a subprocess, holds at
exactly the moment the hostile tester of issue 12 aimed at, the test changes the disk (or kills the
service) there, and the outcome is checked in the ledger, the repository and on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from conftest import write_raw
from harness import BIN, Daemon, drop
from pfswatchd.state.ledger import Ledger


def _hold(daemon: Daemon, point: str, marker: Path, seconds: float = 4.0, **more: str) -> Daemon:
    return daemon.start(env={"PFSWATCHD_FAULT": point, "PFSWATCHD_FAULT_MARKER": str(marker),
                             "PFSWATCHD_FAULT_SECONDS": str(seconds), **more})


def _reached(marker: Path, daemon: Daemon, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert daemon.alive(), daemon.log()[-3000:]
        assert time.monotonic() < deadline, f"the fault point was never reached\n{daemon.log()[-3000:]}"
        time.sleep(0.005)


def _row(daemon: Daemon, path: Path) -> dict:
    ledger = Ledger(daemon.ledger_url)
    try:
        row = ledger.get(str(path))
    finally:
        ledger.close()
    assert row is not None, f"no ledger row for {path}"
    return row


def _stored_bytes(daemon: Daemon) -> list[bytes]:
    with Butler.from_config(str(daemon.repo), collections="PFS/raw/sps") as butler:
        refs = butler.query_datasets("raw", collections="PFS/raw/sps", limit=None, explain=False)
        return [Path(butler.getURI(ref).ospath).read_bytes() for ref in refs]


def _swap(new: Path, target: Path) -> None:
    """Rename ``new`` onto ``target`` the way a downloader finishes a file (one atomic rename)."""
    temp = target.with_name(target.name + ".part")
    temp.write_bytes(new.read_bytes())
    os.rename(temp, target)


# -- issue 12 item 1: move removes only the very file it placed ------------------------------------

def test_move_never_removes_a_file_renamed_onto_its_source_before_the_commit(tmp_path):
    """A raw is linked into the datastore and its transaction is about to commit when another file
    (same name, other bytes) is renamed onto the source: the move must leave that file, which is then
    examined as the new file it is (other bytes for a registered data ID: a conflict, quarantined
    with its bytes intact)."""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "move", "retry_initial": 0.2})
    marker = tmp_path / "held"
    _hold(daemon, "ingest.registered", marker)
    first = write_raw(tmp_path / "a", visit=901, arm="b", seed=1)
    second = write_raw(tmp_path / "b", visit=901, arm="b", seed=2)
    assert first.read_bytes() != second.read_bytes()
    source = drop(first, daemon.incoming / "night")
    _reached(marker, daemon)
    _swap(second, source)  # while the first is placed and its registry transaction is open
    status = daemon.wait_until(lambda s: s["counts"].get("quarantined", 0) == 1, 60,
                               what="the replacement examined and refused as a conflict")
    entry = next(f for f in status["files"] if f["state"] == "quarantined")
    assert entry["error_kind"] == "conflict", entry
    assert Path(entry["quarantine_path"]).read_bytes() == second.read_bytes()  # not deleted by the move
    assert _stored_bytes(daemon) == [first.read_bytes()]  # the first file is what was registered
    assert not source.exists()
    daemon.stop()


# -- issue 12 item 2: what is placed is what was examined -------------------------------------------

@pytest.mark.parametrize("transfer", ["link", "copy", "move"])
def test_a_file_replaced_after_examination_is_not_placed_but_examined_again(tmp_path, transfer):
    """The service examined a whole raw and is about to place it when a truncated copy is renamed onto
    the source: nothing is registered (the truncated bytes never reach the repository); once the whole
    file is renamed back, that is examined and ingested, and reads back."""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": transfer, "retry_initial": 0.2},
                    watch={"paths": ["incoming"], "settle_seconds": 0.5, "rescan_interval": 30.0,
                           "truncated_after": 600.0})
    marker = tmp_path / "held"
    _hold(daemon, "transfer.placing", marker)
    whole = write_raw(tmp_path / "a", visit=902, arm="r")
    data = whole.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(data[: len(data) // 2])
    source = drop(whole, daemon.incoming)
    _reached(marker, daemon)
    _swap(cut, source)
    daemon.wait_until(lambda s: any(e.get("error_kind") == "source_changed"
                                    for e in daemon.events("file_retry_scheduled")), 60,
                      what="the replaced source refused at placement")
    time.sleep(2.0)  # the truncated file is examined again meanwhile: incomplete, it waits
    assert _stored_bytes(daemon) == []
    assert _row(daemon, source)["state"] in ("pending", "ingesting")
    _swap(whole, source)
    daemon.wait_files("ingested", 1, timeout=60)
    assert _stored_bytes(daemon) == [data]
    with Butler.from_config(str(daemon.repo), collections="PFS/raw/sps") as butler:
        ref = butler.query_datasets("raw", collections="PFS/raw/sps", limit=None, explain=False)[0]
        assert butler.get(ref) is not None  # the registered file reads back
    daemon.stop()


# -- the crash bug of the last session: a kill between the registry commit and the ledger ----------

@pytest.mark.parametrize("point", ["pipeline.recording", "pipeline.recorded"])
def test_a_move_killed_between_commit_ledger_and_removal_is_completed_at_restart(tmp_path, point):
    """SIGKILL after the registry commit and before the ledger write (``recording``), or after the
    ledger write and before the source is removed (``recorded``): after a restart the row is
    ``ingested``, the dataset holds the file's bytes and the source is gone.  (Before, the source was
    removed before the ledger write, and a kill there left a row ``pending`` forever.)"""
    daemon = Daemon(tmp_path / "svc", ingest={"transfer": "move", "retry_initial": 0.2})
    marker = tmp_path / "held"
    _hold(daemon, point, marker, seconds=60)
    raw = write_raw(tmp_path / "a", visit=903, arm="b")
    data = raw.read_bytes()
    source = drop(raw, daemon.incoming)
    _reached(marker, daemon)
    assert source.exists()  # the source is removed only after the ledger write
    daemon.kill()
    daemon.start()
    daemon.wait_until(lambda s: s["counts"].get("ingested", 0) == 1 and not source.exists(), 60,
                      what="the move completed after the restart")
    row = _row(daemon, source)
    assert row["state"] == "ingested" and row["dataset_id"], row
    assert _stored_bytes(daemon) == [data]
    assert not any(p.is_file() for p in daemon.incoming.rglob("*"))
    daemon.stop()


# -- issue 12 item 9: a kill during quarantine -------------------------------------------------------

def test_a_kill_during_quarantine_leaves_every_file_findable_from_the_ledger(tmp_path):
    """Three bad files fail; the service is killed right after the first one is moved to quarantine
    (its reason and its final row not yet written).  That row already says where the file went; after
    the restart every row is ``quarantined`` at a path that holds the file, with its reason next to
    it, and ``retry`` brings all three back."""
    daemon = Daemon(tmp_path / "svc")
    marker = tmp_path / "held"
    bad = []
    for arm in "brm":
        path = write_raw(tmp_path / "bad", visit=904, arm=arm, extra_cards={"W_VISIT": 999})
        bad.append((path.name, path.read_bytes()))
    _hold(daemon, "quarantine.moved", marker, seconds=60)
    for name, data in bad:
        (daemon.incoming / (name + ".part")).write_bytes(data)
    for name, _ in bad:
        os.rename(daemon.incoming / (name + ".part"), daemon.incoming / name)
    _reached(marker, daemon)
    daemon.kill()
    # The file moved before the kill: its row already says where it went.
    moved_before = [p for p in daemon.quarantine.rglob("*.fits")]
    assert len(moved_before) == 1, moved_before
    row = _row(daemon, daemon.incoming / moved_before[0].name)
    assert row["state"] == "failed" and row["quarantine_path"] == str(moved_before[0]), row
    daemon.start()
    status = daemon.wait_until(lambda s: s["counts"].get("quarantined", 0) == 3, 60,
                               what="the three quarantines completed")
    for name, data in bad:
        row = _row(daemon, daemon.incoming / name)
        moved = Path(row["quarantine_path"])
        assert row["state"] == "quarantined" and moved.read_bytes() == data, row
        assert "name_mismatch" in moved.with_name(moved.name + ".reason").read_text()
        assert not (daemon.incoming / name).exists()
    assert status["counts"].get("pending", 0) == 0
    daemon.stop()
    result = subprocess.run([str(BIN / "pfswatchd"), "retry", "--config", str(daemon.config_path)],
                            capture_output=True, text=True, timeout=60)
    assert "3 files queued again" in result.stdout, result
    for name, data in bad:
        assert (daemon.incoming / name).read_bytes() == data


# -- issue 12 item 13: a file that vanishes before it is examined ------------------------------------

def test_a_file_deleted_before_it_is_examined_is_recorded_not_retried_forever(tmp_path):
    """A file being written (not closed yet, so it waits for the settle time) is deleted before it
    settled: its row becomes ``ignored`` with the reason, and nothing hints it again; the same file
    put back later is ingested."""
    daemon = Daemon(tmp_path / "svc", watch={"paths": ["incoming"], "settle_seconds": 3.0,
                                             "rescan_interval": 30.0})
    daemon.start()
    raw = write_raw(tmp_path / "a", visit=905, arm="b")
    data = raw.read_bytes()
    path = daemon.incoming / raw.name
    with open(path, "wb") as writer:  # still open: no close says it is finished
        writer.write(data)
        writer.flush()
        daemon.wait_until(lambda s: any(f["path"] == str(path) for f in s["files"]), 30, what="the file seen")
        os.unlink(path)
    daemon.wait_until(lambda s: any(f["path"] == str(path) and f["state"] == "ignored" for f in s["files"]), 30,
                      what="the vanished file recorded")
    row = _row(daemon, path)
    assert "before it was examined" in row["error"], row
    assert daemon.events("file_vanished")
    hinted = len([e for e in daemon.events() if e.get("path") == str(path)])
    time.sleep(3.0)
    assert len([e for e in daemon.events() if e.get("path") == str(path)]) == hinted  # not hinted again
    path.write_bytes(data)  # the same file, back
    daemon.wait_files("ingested", 1, timeout=60)
    daemon.stop(signal.SIGTERM)
