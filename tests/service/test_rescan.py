"""The rescan: what a pass hints (only what the ledger does not have as it is now), its slices (nothing
lost, memory bounded), and a service whose READY, new files and watchdog pings never wait for a pass."""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import write_raw
from harness import Daemon, drop
from pfswatchd import logconfig
from pfswatchd.service.rescan import BACKLOG, HOLD_ENV, Rescanner, scan_folder
from pfswatchd.state.ledger import FileState, Ledger, Result, Seen


def _record(ledger: Ledger, path: Path, state: FileState, *, size: int | None = None) -> None:
    st = path.stat()
    ledger.upsert_seen([Seen(str(path), "raw_ccd", st.st_size if size is None else size, st.st_mtime_ns,
                             st.st_ino)])
    if state is not FileState.PENDING:
        assert ledger.claim([str(path)]) == {str(path)}
        ledger.record([Result(str(path), state)])


def _tree(root: Path) -> dict[str, Path]:
    files = {}
    for name in ("done.fits", "changed.fits", "pending.fits", "new.fits", "night/deep/new2.fits",
                 "night/done2.fits", "download.fits.part", ".staging/hidden.fits"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        files[name] = path
    (root / "link.fits").symlink_to(files["night/done2.fits"])
    files["link.fits"] = root / "link.fits"
    return files


def _run_pass(rescanner: Rescanner) -> list[str]:
    rescanner.start_pass()
    found: list[str] = []
    deadline = time.monotonic() + 60
    while (rescanner.busy or rescanner.passes == 0) and time.monotonic() < deadline:
        found.extend(path for path, _ in rescanner.take())
        time.sleep(0.01)
    assert rescanner.passes == 1 and not rescanner.busy
    return found


def test_a_pass_hints_only_what_the_ledger_does_not_have_as_it_is(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    ledger = Ledger(url)
    ledger.create()
    files = _tree(tmp_path / "in")
    _record(ledger, files["done.fits"], FileState.INGESTED)
    _record(ledger, files["night/done2.fits"], FileState.IGNORED)
    _record(ledger, files["changed.fits"], FileState.INGESTED, size=5)  # recorded smaller than it is now
    _record(ledger, files["pending.fits"], FileState.PENDING)
    expected = {str(files[name]) for name in ("changed.fits", "pending.fits", "new.fits", "night/deep/new2.fits",
                                                 "link.fits")}
    # The real worker process, as the service runs it.
    rescanner = Rescanner((tmp_path / "in", tmp_path / "missing"), url, recursive=True, log=logconfig.get())
    try:
        found = _run_pass(rescanner)
    finally:
        rescanner.close()
    assert sorted(found) == sorted(expected)
    flat = scan_folder(str(tmp_path / "in"), url, recursive=False)
    assert flat.folders == [] and flat.files == 5
    ledger.close()


def test_slices_lose_nothing_and_the_backlog_stays_bounded(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger(url).create()
    expected = set()
    for night in range(12):
        folder = tmp_path / "in" / f"night{night:02d}"
        folder.mkdir(parents=True)
        for i in range(150):
            (folder / f"f{i:04d}.fits").write_bytes(b"")
            expected.add(str(folder / f"f{i:04d}.fits"))
    rescanner = Rescanner((tmp_path / "in",), url, recursive=True, log=logconfig.get(), slice_size=10,
                          in_process=True)
    try:
        rescanner.start_pass()
        deadline = time.monotonic() + 30
        while len(rescanner._found) < BACKLOG * 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the driver has had time to queue more, had it not waited
        assert BACKLOG * 10 <= len(rescanner._found) < BACKLOG * 10 + 150
        assert rescanner.busy and rescanner.passes == 0
        taken: list[str] = []
        while rescanner.busy or rescanner.passes == 0:
            chunk = rescanner.take()
            assert len(chunk) <= 10
            taken.extend(path for path, _ in chunk)
            time.sleep(0.001)
    finally:
        rescanner.close()
    assert len(taken) == len(expected) and set(taken) == expected  # each once, none lost


def test_ready_new_files_and_watchdog_do_not_wait_for_a_rescan(tmp_path):
    """A pass held after its first folder (the test hook): READY comes, a new file is ingested, the
    watchdog is pinged; files only the pass can find (there before the start) come once it goes on."""
    daemon = Daemon(tmp_path / "svc")
    before = [write_raw(daemon.incoming / "old" / "night", visit=320, arm=arm) for arm in "br"]
    hold = tmp_path / "hold"
    hold.write_text("")
    daemon.start(env={HOLD_ENV: str(hold), "WATCHDOG_USEC": "400000"})
    dropped = drop(write_raw(tmp_path / "src", visit=321), daemon.incoming)
    status = daemon.wait_files("ingested", 1, timeout=30)
    assert [f["path"] for f in status["files"] if f["state"] == "ingested"] == [str(dropped)]
    pings = sum("WATCHDOG=1" in m for m in daemon.messages)
    daemon.wait_notify("WATCHDOG=1", timeout=10)
    time.sleep(1.0)
    for _ in range(20):
        daemon.poll_notify()
    assert sum("WATCHDOG=1" in m for m in daemon.messages) >= pings + 2
    assert daemon.events("rescan_done") == [] and status["counts"]["pending"] == 0
    os.unlink(hold)
    daemon.wait_files("ingested", 3, timeout=60)
    assert {f["path"] for f in daemon.quick_status()["files"]} == {str(dropped), *map(str, before)}
    assert len(daemon.events("rescan_done")) == 1
    assert daemon.stop() == 0


def test_a_pass_under_way_ends_when_the_service_stops(tmp_path, monkeypatch):
    """close() in the middle of a pass (held after its first folder): the pass stops there rather than
    scan the rest, the driver thread ends, and no worker pool is started after close (one that was
    outlived the service's exit, which then waited for it until the stop timeout: exit status 1)."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    Ledger(url).create()
    for night in range(200):
        (tmp_path / "in" / f"night{night:03d}").mkdir(parents=True)
    hold = tmp_path / "hold"
    hold.touch()
    monkeypatch.setenv(HOLD_ENV, str(hold))
    rescanner = Rescanner((tmp_path / "in",), url, recursive=True, log=logconfig.get())
    rescanner.start_pass()
    deadline = time.monotonic() + 60
    while rescanner._pool is None and time.monotonic() < deadline:  # the real worker, started by the pass
        time.sleep(0.01)
    assert rescanner._pool is not None and rescanner.busy
    rescanner.close()
    assert not rescanner._thread.is_alive()
    time.sleep(0.3)
    assert rescanner._pool is None and rescanner.passes == 0
