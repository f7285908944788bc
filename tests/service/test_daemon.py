"""The service as systemd runs it: a real `pfswatchd run` subprocess on temporary folders."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from conftest import write_config, write_raw
from harness import BIN, Daemon, burst_files, drop, obeying_file_modes


@pytest.fixture()
def daemon(tmp_path):
    return Daemon(tmp_path / "svc")


def _files_by_state(status):
    return Counter(f["state"] for f in status["files"])


def test_files_renamed_in_are_ingested_and_readable(daemon, tmp_path):
    daemon.start()
    ccd = write_raw(tmp_path / "src", visit=300, arm="r", spectrograph=2)
    nir = write_raw(tmp_path / "src", visit=300, arm="n", spectrograph=2)
    drop(ccd, daemon.incoming / "raw" / "sps")
    drop(nir, daemon.incoming / "raw" / "ramps")
    daemon.wait_files("ingested", 2, timeout=30)
    status = daemon.status()
    assert status["counts"]["ingested"] == 2 and status["counts"]["failed"] == 0
    entry = next(f for f in status["files"] if f["path"].endswith(ccd.name))
    assert entry["kind"] == "raw_ccd" and entry["data_id"] == {"instrument": "PFS", "arm": "r", "spectrograph": 2,
                                                               "visit": 300}
    assert entry["dataset_id"] and entry["error_kind"] is None and entry["error"] is None
    refs = {(r.dataId["arm"], r.dataId["spectrograph"]): str(r.id) for r in daemon.datasets()}
    assert refs[("r", 2)] == entry["dataset_id"]
    from lsst.daf.butler import Butler

    with Butler.from_config(str(daemon.repo), collections="PFS/raw/sps") as butler:
        image = butler.get("raw.image", instrument="PFS", visit=300, arm="n", spectrograph=2)
    assert image.array.shape == (64, 64)
    event = daemon.events("file_ingested")[0]
    assert {"path", "data_id", "dataset_id", "seen_to_done_ms"} <= set(event)
    assert daemon.stop() == 0


def test_slow_writer_is_never_ingested_before_complete(daemon, tmp_path):
    """A file written in chunks, closed and reopened between them, is ingested only when whole."""
    daemon.settings["watch"]["settle_seconds"] = 0.3
    daemon.write_config()
    daemon.start()
    source = write_raw(tmp_path / "src", visit=301, arm="b")
    data = source.read_bytes()
    target = daemon.incoming / source.name
    chunk = 2048
    seen_early = []
    for start in range(0, len(data), chunk):
        with open(target, "ab") as stream:  # open, append, close: a close event after every chunk
            stream.write(data[start : start + chunk])
        time.sleep(0.05)
        if start + chunk < len(data):
            states = {f["state"] for f in daemon.quick_status()["files"]} if (daemon.base / "state").exists() else set()
            seen_early.extend(s for s in states if s in ("ingested", "failed", "quarantined"))
    daemon.wait_files("ingested", 1, timeout=30)
    assert seen_early == []
    [ref] = daemon.datasets()
    from lsst.daf.butler import Butler

    with Butler.from_config(str(daemon.repo)) as butler:
        assert Path(butler.getURI(ref).ospath).read_bytes() == data
    assert daemon.quick_status()["counts"]["failed"] == 0


def test_mtime_in_the_past_does_not_fool_the_settle_check(daemon, tmp_path):
    """A writer that keeps the file open and sets an old mtime (like tar) is not ingested half-written."""
    daemon.settings["watch"]["settle_seconds"] = 1.0
    daemon.write_config()
    daemon.start()
    source = write_raw(tmp_path / "src", visit=302, arm="b")
    data = source.read_bytes()
    target = daemon.incoming / source.name
    with open(target, "wb") as stream:
        for start in range(0, len(data), 4096):
            stream.write(data[start : start + 4096])
            stream.flush()
            os.utime(target, (1_000_000_000, 1_000_000_000))  # 2001
            time.sleep(0.15)
            assert daemon.quick_status()["counts"].get("ingested", 0) == 0
    daemon.wait_files("ingested", 1, timeout=30)
    assert daemon.quick_status()["counts"]["failed"] == 0


def test_files_present_before_start(daemon, tmp_path):
    for arm in "brn":
        drop(write_raw(tmp_path / "src", visit=303, arm=arm), daemon.incoming / "early")
    drop(write_config(tmp_path / "src", visit=303), daemon.incoming / "early")
    daemon.start()
    status = daemon.wait_files("ingested", 4, timeout=60)
    assert status["counts"]["ingested"] == 4
    assert len(daemon.datasets("pfsConfig")) == 1


def test_burst_of_500_in_batches(daemon, tmp_path):
    files = burst_files(tmp_path / "src", tmp_path / "templates", 500)
    daemon.start()
    for path in files:
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_files("ingested", 500, timeout=120)
    assert len(daemon.datasets()) == 500
    batches = [e["files"] for e in daemon.events("batch_ingested")]
    assert sum(batches) == 500 and max(batches) > 1, batches  # group commit, not one transaction per file


def test_pfsconfig_before_its_raws_waits_then_ingests(daemon, tmp_path):
    daemon.start()
    drop(write_config(tmp_path / "src", visit=304), daemon.incoming)
    status = daemon.wait_files("waiting", 1, timeout=30)
    waiting = next(f for f in status["files"] if f["state"] == "waiting")
    assert "visit 304" in waiting["error"]
    drop(write_raw(tmp_path / "src", visit=304), daemon.incoming)
    daemon.wait_files("ingested", 2, timeout=30)
    assert len(daemon.datasets("pfsConfig")) == 1


def test_waiting_pfsconfig_is_rechecked_when_its_raws_come_another_way(tmp_path):
    """A pfsConfig waits; its visit's raw is ingested into the repository by a one-shot command (no
    event in the service): the periodic re-check of waiting files finds the raw there and ingests it."""
    daemon = Daemon(tmp_path / "svc", watch={"rescan_interval": 3600.0}, ingest={"waiting_recheck": 0.5})
    daemon.start()
    drop(write_config(tmp_path / "src", visit=307), daemon.incoming)
    daemon.wait_files("waiting", 1, timeout=60)
    raw = write_raw(tmp_path / "elsewhere", visit=307)
    result = subprocess.run([str(BIN / "pfswatchd"), "ingest-raws", str(daemon.repo), str(raw),
                             "--transfer", "copy"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    status = daemon.wait_files("ingested", 1, timeout=60)
    assert status["counts"].get("waiting", 0) == 0
    assert len(daemon.datasets("pfsConfig")) == 1


def test_same_file_dropped_twice_is_a_duplicate(daemon, tmp_path):
    daemon.start()
    raw = write_raw(tmp_path / "src", visit=305)
    drop(raw, daemon.incoming / "first")
    daemon.wait_files("ingested", 1, timeout=30)
    drop(raw, daemon.incoming / "again")
    status = daemon.wait_files("duplicate", 1, timeout=30)
    duplicate = next(f for f in status["files"] if f["state"] == "duplicate")
    original = next(f for f in status["files"] if f["state"] == "ingested")
    assert duplicate["dataset_id"] == original["dataset_id"]
    assert len(daemon.datasets()) == 1


def test_bad_file_quarantined_while_good_ones_flow(daemon, tmp_path):
    daemon.start()
    bad = write_raw(tmp_path / "src", visit=306, arm="b", extra_cards={"W_VISIT": 999})
    drop(bad, daemon.incoming / "sub")
    for arm in "rn":
        drop(write_raw(tmp_path / "src", visit=307, arm=arm), daemon.incoming / "sub")
    status = daemon.wait_until(lambda s: s["counts"]["ingested"] == 2 and s["counts"]["quarantined"] == 1, 30)
    entry = next(f for f in status["files"] if f["state"] == "quarantined")
    assert entry["error_kind"] == "name_mismatch" and "W_VISIT 999" in entry["error"]
    moved = Path(entry["quarantine_path"])
    assert moved == daemon.quarantine / "sub" / bad.name and moved.exists()
    assert "name_mismatch" in moved.with_name(moved.name + ".reason").read_text()
    assert not (daemon.incoming / "sub" / bad.name).exists()
    assert any(e["error_kind"] == "name_mismatch" for e in daemon.events("file_quarantined"))
    # The operator fixes nothing and retries: it fails again, with the same reason.
    result = subprocess.run([str(BIN / "pfswatchd"), "retry", "--config", str(daemon.config_path)],
                            capture_output=True, text=True)
    assert "1 files queued again" in result.stdout
    daemon.wait_until(lambda s: s["counts"]["quarantined"] == 1 and s["counts"]["pending"] == 0
                      and any(f["attempts"] >= 1 for f in s["files"] if f["state"] == "quarantined"), 30)


def test_sigterm_during_a_burst_then_restart(daemon, tmp_path):
    files = burst_files(tmp_path / "src", tmp_path / "templates", 300, first_visit=2000)
    daemon.start()
    for path in files:
        os.rename(path, daemon.incoming / path.name)
    time.sleep(0.3)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "service_stopped" in daemon.log()
    daemon.start()
    daemon.wait_files("ingested", 300, timeout=120)
    assert len(daemon.datasets()) == 300
    assert daemon.status()["counts"]["duplicate"] == 0


def test_sigkill_during_a_burst_then_restart_exactly_once(daemon, tmp_path):
    files = burst_files(tmp_path / "src", tmp_path / "templates", 400, first_visit=3000)
    daemon.start()
    for path in files:
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_until(lambda s: s["counts"]["ingested"] > 0, 60, what="first files ingested")
    daemon.kill()
    daemon.start()
    status = daemon.wait_files("ingested", 400, timeout=120)
    refs = daemon.datasets()
    assert len(refs) == 400 and len({r.id for r in refs}) == 400
    assert status["counts"]["failed"] == 0 and status["counts"]["duplicate"] == 0
    assert all(f["dataset_id"] for f in status["files"])


def test_fail_fast_stops_the_service(daemon, tmp_path):
    daemon.settings["ingest"]["fail_fast"] = True
    daemon.write_config()
    daemon.start()
    drop(write_raw(tmp_path / "src", visit=308, drop_cards=["W_PFDSGN"]), daemon.incoming)
    assert daemon.process.wait(timeout=30) == 1
    assert daemon.events("service_stopped_fail_fast")
    assert daemon.status()["counts"]["quarantined"] == 1


@pytest.mark.parametrize("fail_fast", [False, True])
def test_a_file_that_stops_growing_incomplete_is_truncated_once(daemon, tmp_path, fail_fast):
    """A cut file waits truncated_after seconds without a change, then fails once as truncated."""
    daemon.settings["watch"]["truncated_after"] = 1.0
    daemon.settings["ingest"]["fail_fast"] = fail_fast
    daemon.write_config()
    daemon.start()
    whole = write_raw(tmp_path / "src", visit=312, arm="b").read_bytes()
    cut = tmp_path / "cut" / "PFSA00031211.fits"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) // 2])
    drop(cut, daemon.incoming)
    if fail_fast:
        assert daemon.process.wait(timeout=30) == 1
        status = daemon.status()
    else:
        status = daemon.wait_until(lambda s: s["counts"]["quarantined"] == 1, 30)
    [entry] = status["files"]
    assert entry["error_kind"] == "truncated" and "stopped growing" in entry["error"], entry
    assert len(daemon.events("file_quarantined")) == 1


def test_temporary_names_wait_until_renamed(daemon, tmp_path):
    daemon.start()
    raw = write_raw(tmp_path / "src", visit=309)
    for name in (raw.name + ".part", "." + raw.name + ".aBc123", raw.name + ".tmp"):
        (daemon.incoming / name).write_bytes(raw.read_bytes())
    time.sleep(1.5)
    assert daemon.quick_status()["files"] == []
    os.rename(daemon.incoming / (raw.name + ".part"), daemon.incoming / raw.name)
    daemon.wait_files("ingested", 1, timeout=30)


def test_systemd_notify_ready_status_and_watchdog(daemon, tmp_path):
    daemon.start(env={"WATCHDOG_USEC": "400000"})
    drop(write_raw(tmp_path / "src", visit=310), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=30)
    daemon.wait_notify("WATCHDOG=1", timeout=10)
    status = daemon.wait_notify("STATUS=ingested 1", timeout=15)
    assert "STATUS=" in status
    assert daemon.stop() == 0


def test_sighup_reloads_the_configuration(daemon, tmp_path):
    daemon.start()
    second = daemon.base / "second"
    second.mkdir()
    daemon.settings["watch"]["paths"] = ["incoming", "second"]
    daemon.write_config()
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_notify("RELOADING=1", timeout=15)
    drop(write_raw(tmp_path / "src", visit=311), second)
    daemon.wait_files("ingested", 1, timeout=30)
    assert daemon.events("config_reloaded")
    daemon.settings["watch"]["paths"] = "not a list"
    daemon.write_config()
    daemon.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while not daemon.events("reload_failed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "watch.paths" in daemon.events("reload_failed")[0]["reason"]
    assert daemon.alive()


def test_polling_mode(daemon, tmp_path):
    daemon.settings["watch"].update(mode="polling", poll_interval=0.2, settle_seconds=0.3)
    daemon.write_config()
    daemon.start()
    drop(write_raw(tmp_path / "src", visit=312), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=30)


def test_watched_folder_removed_and_recreated(daemon, tmp_path):
    daemon.settings["watch"]["rescan_interval"] = 1.0
    daemon.write_config()
    daemon.start()
    drop(write_raw(tmp_path / "src", visit=313), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=30)
    import shutil

    shutil.rmtree(daemon.incoming)
    time.sleep(1.5)
    daemon.incoming.mkdir()
    time.sleep(1.5)
    drop(write_raw(tmp_path / "src", visit=314), daemon.incoming)
    daemon.wait_files("ingested", 2, timeout=30)


def test_pending_file_shows_in_status_with_its_age(daemon, tmp_path):
    daemon.start()
    raw = write_raw(tmp_path / "src", visit=315)
    (daemon.incoming / raw.name).write_bytes(raw.read_bytes()[:4000])  # incomplete, stays pending
    status = daemon.wait_files("pending", 1, timeout=30)
    assert status["oldest_pending"]["path"].endswith(raw.name)
    result = subprocess.run([str(BIN / "pfswatchd"), "status", "--config", str(daemon.config_path)],
                            capture_output=True, text=True)
    assert "oldest pending" in result.stdout and raw.name in result.stdout


def test_concurrent_writers_in_threads(daemon, tmp_path):
    """Several writers at once (as several downloads): every file ingested once."""
    files = burst_files(tmp_path / "src", tmp_path / "templates", 60, first_visit=4000)
    daemon.start()

    def copy(paths):
        for path in paths:
            drop(path, daemon.incoming / "parallel")

    threads = [threading.Thread(target=copy, args=(files[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    daemon.wait_files("ingested", 60, timeout=60)
    assert len(daemon.datasets()) == 60


def test_files_renamed_into_a_just_created_folder_do_not_wait_to_settle(daemon, tmp_path):
    """mkdir, then rename a finished file into it at once (a new night's folder): the rename usually
    lands before the folder's watch exists, so the file has no event of its own; the walk of the new
    folder must count as 'writer done'.  With a settle time of 60 s, a file that had to settle would
    miss the 20 s below (before the fix about 12 in 20 such renames did; ten folders make it certain)."""
    daemon.settings["watch"]["settle_seconds"] = 60.0
    daemon.write_config()
    daemon.start()
    sources = [write_raw(tmp_path / "src", visit=330 + i) for i in range(10)]
    for i, source in enumerate(sources):
        night = daemon.incoming / "raw" / f"2025-05-{i + 1:02d}"
        night.mkdir(parents=True)
        os.rename(source, night / source.name)
    daemon.wait_files("ingested", 10, timeout=20)
    assert daemon.quick_status()["counts"]["failed"] == 0


def test_a_preallocated_file_in_a_just_created_folder_waits_until_it_is_filled(daemon, tmp_path):
    """A downloader that makes a new folder, writes a frame's headers, sets the final size (ftruncate)
    and fills in the data later (issue 12's preallocating writer) has a structurally whole file in a
    folder just created: it must not take the new-folder shortcut meant for files renamed in whole.
    The service is held (fault point) just before it walks the new folder, so the walk surely finds
    both that file and a finished one renamed in beside it; when the finished one is ingested, the
    preallocated one must still be pending, and once filled and closed it is ingested."""
    from pfswatchd.files.fitsheader import scan

    daemon.settings["watch"]["settle_seconds"] = 30.0
    daemon.write_config()
    marker = tmp_path / "walk-held"
    daemon.start(env={"PFSWATCHD_FAULT": "pipeline.new_folder", "PFSWATCHD_FAULT_MARKER": str(marker),
                      "PFSWATCHD_FAULT_SECONDS": "3"})
    whole, partial = write_raw(tmp_path / "src", visit=345, arm="b"), write_raw(tmp_path / "src", visit=345, arm="r")
    data = partial.read_bytes()
    hdus = scan(partial).hdus
    night = daemon.incoming / "raw" / "2025-06-01"
    night.mkdir(parents=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the service never reached the walk of the new folder"
        time.sleep(0.01)
    target = night / partial.name
    with open(target, "wb") as out:
        for hdu in hdus:  # every header in place, the data still holes
            out.seek(hdu.header_offset)
            out.write(data[hdu.header_offset:hdu.data_offset])
        out.truncate(len(data))
        out.flush()
        os.rename(whole, night / whole.name)
        assert scan(target).complete  # structure alone would take it for whole
        daemon.wait_until(lambda s: any(f["path"].endswith(whole.name) and f["state"] == "ingested"
                                        for f in s["files"]), timeout=60, what="the finished file ingested")
        states = {f["path"]: f["state"] for f in daemon.quick_status()["files"]}
        assert states.get(str(target)) == "pending", states
        for hdu in hdus:
            out.seek(hdu.data_offset)
            out.write(data[hdu.data_offset:hdu.end])
    daemon.wait_files("ingested", 2, timeout=20)  # its close says it is done: well before the 30 s settle
    assert target.read_bytes() == data
    assert daemon.quick_status()["counts"]["quarantined"] == 0


def test_ctrl_c_in_a_terminal_stops_cleanly(daemon, tmp_path):
    """SIGINT to the whole process group (examiner workers too) used to print their KeyboardInterrupt
    tracebacks; the service must stop with 0, and quietly."""
    daemon.settings["ingest"]["examine_workers"] = 2
    daemon.write_config()
    daemon.start(new_session=True)
    drop(write_raw(tmp_path / "src", visit=320), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=60)
    assert daemon.interrupt(timeout=40) == 0
    log = daemon.log()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    assert [e["exit_code"] for e in daemon.events("service_stopped")] == [0]


def test_ctrl_c_while_the_examiner_starts_stops_cleanly(daemon, tmp_path):
    """A Ctrl-C while the examiner's fork server imports its modules killed it, and the service died with
    'internal error: EOFError'; it must take the interrupt itself and stop with 0."""
    daemon.settings["ingest"]["examine_workers"] = 2
    daemon.write_config()
    marker = tmp_path / "preloading"
    daemon.start(new_session=True, wait_ready=False,
                 env={"PFSWATCHD_FAULT": "forkserver.preload", "PFSWATCHD_FAULT_MARKER": str(marker),
                      "PFSWATCHD_FAULT_SECONDS": "2"})
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert daemon.alive() and time.monotonic() < deadline, daemon.log()
        time.sleep(0.02)
    assert daemon.interrupt(timeout=60) == 0, daemon.log()
    log = daemon.log()
    assert "Traceback" not in log and "EOFError" not in log, log[-3000:]


def test_a_second_instance_on_the_same_ledger_is_told(daemon, tmp_path):
    first = daemon.start()
    assert first.events("another_instance_running") == []
    second = Daemon(tmp_path / "svc")  # the same folder, configuration and ledger
    second.log_path = tmp_path / "second.log"
    second.start()
    [event] = second.events("another_instance_running")
    assert event["pids"] == [first.process.pid] and event["ledger"].endswith("ledger.sqlite3")
    assert event["level"] == "warning"
    drop(write_raw(tmp_path / "src", visit=321), daemon.incoming)
    daemon.wait_files("ingested", 1, timeout=60)  # they still share the work
    assert second.stop() == 0 and first.stop() == 0


def test_a_burst_is_one_summary_line_on_a_terminal(daemon, tmp_path):
    """The console log (a terminal) summarises a burst; JSON logs keep one event per file."""
    daemon.settings["log"]["format"] = "console"
    daemon.write_config()
    files = burst_files(tmp_path / "src", tmp_path / "templates", 60)
    daemon.start()
    for path in files:
        os.rename(path, daemon.incoming / path.name)
    daemon.wait_files("ingested", 60, timeout=120)
    deadline = time.monotonic() + 30
    while "files_done" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = daemon.log().splitlines()
    assert not [line for line in lines if "file_ingested" in line or "batch_ingested" in line], lines[-5:]
    done = [line for line in lines if "files_done" in line]
    counted = sum(int(m) for line in done for m in re.findall(r"\bingested=(\d+)", line))
    assert counted == 60 and len(done) <= 3, done
    assert daemon.stop() == 0


def test_an_unreadable_folder_is_recorded_and_retried(tmp_path):
    daemon = Daemon(tmp_path / "svc", ingest={"retry_initial": 0.3, "retry_max": 0.5})
    locked = daemon.incoming / "night"
    write_raw(locked, visit=322)
    locked.chmod(0o000)
    try:
        daemon.start(prefix=obeying_file_modes())
        status = daemon.wait_until(lambda s: any(f["kind"] == "folder" for f in s["files"]), 30,
                                   what="the unreadable folder recorded")
        [row] = [f for f in status["files"] if f["kind"] == "folder"]
        assert row["path"] == str(locked) and row["state"] == "pending"
        assert row["error_kind"] == "permission_denied" and "cannot read the folder" in row["error"]
        assert daemon.events("folder_unreadable")
    finally:
        locked.chmod(0o755)
    status = daemon.wait_files("ingested", 1, timeout=30)  # retried: now it can be read
    daemon.wait_until(lambda s: not any(f["kind"] == "folder" for f in s["files"]), 30, what="folder forgotten")
    assert daemon.stop() == 0


def test_a_shutdown_that_hangs_ends_after_the_stop_timeout(daemon, tmp_path):
    """Stopping never hangs: with the shutdown held (fault point service.stopping, as a worker stuck on
    a dead NFS mount would hold it), the process still ends, with status 1, after STOP_TIMEOUT."""
    from pfswatchd.service.daemon import STOP_TIMEOUT

    daemon.start(env={"PFSWATCHD_FAULT": "service.stopping", "PFSWATCHD_FAULT_SECONDS": "600"})
    began = time.monotonic()
    assert daemon.stop(timeout=STOP_TIMEOUT + 30) == 1
    assert STOP_TIMEOUT - 1 <= time.monotonic() - began < STOP_TIMEOUT + 30
    [event] = daemon.events("service_stop_timed_out")
    assert event["seconds"] == STOP_TIMEOUT


def test_a_preallocated_file_left_open_is_not_ingested_during_its_pause(daemon, tmp_path):
    """A downloader (aria2c, axel) writes a frame's headers, sets the final size (ftruncate), keeps the
    file open and pauses for longer than ``settle_seconds`` before it fills the data: structurally the
    file is whole and quiet, but its data were never written (a hole), so it must wait; once filled it
    is ingested with every byte, still without a close (the quiet time then decides)."""
    from pfswatchd.files.fitsheader import scan

    daemon.settings["watch"]["settle_seconds"] = 0.5
    daemon.write_config()
    daemon.start()
    raw = write_raw(tmp_path / "src", visit=346, arm="b")
    data = raw.read_bytes()
    hdus = scan(raw).hdus
    target = daemon.incoming / raw.name
    with open(target, "wb") as out:
        for hdu in hdus:
            out.seek(hdu.header_offset)
            out.write(data[hdu.header_offset:hdu.data_offset])
        out.truncate(len(data))
        out.flush()
        assert scan(target).complete
        daemon.wait_until(lambda s: any(f["path"] == str(target) for f in s["files"]), 30, what="the file seen")
        time.sleep(4.0)  # eight settle times
        row = next(f for f in daemon.quick_status()["files"] if f["path"] == str(target))
        assert row["state"] == "pending", row
        for hdu in hdus:
            out.seek(hdu.data_offset)
            out.write(data[hdu.data_offset:hdu.end])
        out.flush()
        daemon.wait_files("ingested", 1, timeout=30)
    [ref] = daemon.datasets()
    with Butler.from_config(str(daemon.repo)) as butler:
        assert Path(butler.getURI(ref).ospath).read_bytes() == data
